"""The local stack's state directory: `.local/` next to the repository, or `$RECSYS_LOCAL_DIR`.

Layout: `state.json` (stack name, services, source, resources, outputs, daemon), `logs/`, `data/` (service data
directories). `state.json` holds passwords, so it is written 0600, and always atomically (write a temp file in the same
directory, fsync, rename) under an exclusive lock, because the CLI, the engine and the daemon all update it.

Sections and who writes them:
- `stack`, `services`, `source`, `outputs`: `harness up` (`harness/cli/stack.py`)
- `resources`: the engine (URN -> id, inputs, outputs)
- `daemon`: the daemon (pid, endpoints)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
ENV_VAR = "RECSYS_LOCAL_DIR"

State = dict[str, Any]


class StateError(RuntimeError):
    """state.json cannot be read; the message says which file and what to do."""


def local_dir(explicit: Path | None = None) -> Path:
    """The state directory: the explicit one, else `$RECSYS_LOCAL_DIR`, else `<repo>/.local`."""
    if explicit is not None:
        return explicit.resolve()
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return REPO_ROOT / ".local"


def logs_dir(state_dir: Path) -> Path:
    return state_dir / "logs"


def data_dir(state_dir: Path) -> Path:
    return state_dir / "data"


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> State:
    """The recorded state, or `{}` when nothing has been recorded yet."""
    path = state_path(state_dir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        state = json.loads(text)
    except json.JSONDecodeError as err:
        raise StateError(f"{path} is not valid JSON ({err}); stop what runs with `python -m harness down` "
                         f"and remove {path} if it persists") from err
    if not isinstance(state, dict):
        raise StateError(f"{path} does not hold a JSON object; remove it and run `python -m harness up` again")
    return state


def save_state(state_dir: Path, state: State) -> None:
    """Replace state.json atomically: readers see the old file or the new one, never half of one."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=state_dir)
    try:
        with os.fdopen(fd, "w") as tmp:
            os.fchmod(tmp.fileno(), 0o600)
            json.dump(state, tmp, indent=2, sort_keys=True, default=str)
            tmp.write("\n")
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, state_path(state_dir))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def locked(state_dir: Path, name: str = LOCK_FILE) -> Iterator[None]:
    """An exclusive lock (blocks while another process holds it): `state.lock` guards state.json's read-modify-write;
    other names guard longer operations (`up.lock`: one `up` at a time). Not re-entrant: never nest the same name."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / name, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def update_state(state_dir: Path, change: Callable[[State], None]) -> State:
    """Read state.json, apply `change` to it in place, write it back, all under the lock; returns the new state."""
    with locked(state_dir):
        state = load_state(state_dir)
        change(state)
        save_state(state_dir, state)
        return state
