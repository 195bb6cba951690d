"""The control plane as a process: started in the background by the engine during `harness up`, stopped by
`harness down`, found through its info file, called through `ControlPlaneClient`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.emulator import state as st
from harness.emulator.control_plane.files import (
    ControlPlaneError,
    control_plane_dir,
    info_path,
    log_path,
    read_json,
    write_json_atomic,
)
from harness.emulator.control_plane.http_handler import HOST
from harness.emulator.services import _terminate, pid_alive

if TYPE_CHECKING:
    from harness.emulator.services import RunningServices

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
REPO_ROOT = Path(__file__).resolve().parents[3]
# state.json's section for the control plane keeps its first name, "daemon": a stack started by an earlier harness is
# still found (and `harness env` still reads its endpoint) after the harness is upgraded under it.
STATE_SECTION = "daemon"


@dataclass(frozen=True)
class ControlPlaneInfo:
    pid: int
    port: int

    @property
    def url(self) -> str:
        """The gateway: every AWS API of the local stack (`AWS_ENDPOINT_URL`)."""
        return f"http://{HOST}:{self.port}"


def read_info(state_dir: Path) -> ControlPlaneInfo | None:
    """The running control plane of this state dir, or None when there is none (or its process is gone)."""
    data = read_json(info_path(state_dir))
    if "pid" not in data or "port" not in data:
        return None
    info = ControlPlaneInfo(pid=int(data["pid"]), port=int(data["port"]))
    return info if pid_alive(info.pid) else None


def write_info(state_dir: Path, info: ControlPlaneInfo, moto_url: str, region: str) -> None:
    """Called by the control plane itself once it listens: its info file and its section of state.json."""
    write_json_atomic(info_path(state_dir), {"pid": info.pid, "port": info.port, "url": info.url,
                                             "moto_url": moto_url, "region": region})
    _record_in_state(state_dir, {"pid": info.pid, "port": info.port, "endpoint_url": info.url,
                                 # the same address under its earlier name, for readers of an earlier harness
                                 "lambda_endpoint": info.url,
                                 "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def start(state_dir: Path, services: RunningServices, *, region: str = "us-east-1",
          timeout_s: float = START_TIMEOUT_S) -> ControlPlaneInfo:
    """Start the control plane in the background (idempotent: a running one for this state dir is returned as is)."""
    state_dir = state_dir.resolve()
    running = read_info(state_dir)
    recorded = read_json(info_path(state_dir))
    if running is not None and recorded.get("moto_url") == services.moto.endpoint_url \
            and recorded.get("region") == region:
        return running
    if running is not None:
        # moto was restarted (new port, empty state) or the region changed: a control plane bound to the old one
        # would serve functions that no longer exist, and its stream checkpoints point into streams that are gone.
        stop_process(state_dir)
    if recorded.get("moto_url") not in (None, services.moto.endpoint_url):
        shutil.rmtree(control_plane_dir(state_dir) / "firehose", ignore_errors=True)
    info_path(state_dir).unlink(missing_ok=True)
    # The same port as before when it is free: clients keep the gateway's address as their AWS_ENDPOINT_URL.
    port = int(recorded.get("port") or 0)
    log = log_path(state_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.emulator.control_plane", "--state-dir", str(state_dir),
             "--moto-url", services.moto.endpoint_url, "--region", region, "--port", str(port)],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ControlPlaneError(f"the local control plane exited (status {process.returncode}) while starting; "
                                    f"last lines of {log}:\n{_tail(log)}")
        info = read_info(state_dir)
        if info is not None and info.pid == process.pid and _healthy(info):
            return info
        time.sleep(0.1)
    process.kill()
    raise ControlPlaneError(f"the local control plane did not answer within {timeout_s:.0f} s; last lines of {log}:\n"
                            f"{_tail(log)}")


def stop_process(state_dir: Path, pid: int | None = None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop the control plane (its workers, URL servers and runners stop with it). Idempotent."""
    info = read_info(state_dir.resolve())
    target = pid if pid is not None else (info.pid if info else None)
    if target is not None:
        _terminate(target, timeout=timeout_s)
    info_path(state_dir).unlink(missing_ok=True)
    _record_in_state(state_dir, None)


def stop(state_dir: Path) -> None:
    """What `harness down` calls before the services stop (and `up` when moto died): the control plane, then the
    local servers that stand for RDS instances (their data goes too, as `down` removes the databases' data), then the
    control plane's own state."""
    stop_process(state_dir)
    from harness.emulator.materializers.databases import stop_instances

    stop_instances(state_dir.resolve(), remove_data=True)
    forget_state(state_dir)


def forget_state(state_dir: Path) -> None:
    """Delete what the control plane keeps across its own restarts: the delivery runners' checkpoints and counters
    and the Function URLs' ports. They describe streams and functions that live in moto's memory and end with it; a
    checkpoint that outlived its stream made the next stream's first records vanish, and counters that outlived it
    counted another stack's records."""
    shutil.rmtree(control_plane_dir(state_dir.resolve()), ignore_errors=True)


def _record_in_state(state_dir: Path, section: dict[str, Any] | None) -> None:
    """state.json's control-plane section: what `harness env` exports as AWS_ENDPOINT_URL; removed when it stops."""

    def change(current: dict[str, Any]) -> None:
        if section is None:
            current.pop(STATE_SECTION, None)
        else:
            current[STATE_SECTION] = section

    if section is None and not st.state_path(state_dir).exists():
        return
    st.update_state(state_dir, change)


def _healthy(info: ControlPlaneInfo) -> bool:
    try:
        with urllib.request.urlopen(f"{info.url}/_harness/status", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(log not readable: {exc})"


class ControlPlaneClient:
    """What the engine and `harness status` call on a running control plane."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ControlPlaneError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from exc
        except urllib.error.URLError as exc:
            raise ControlPlaneError(f"the local control plane at {self.url} is not reachable ({exc.reason}): "
                                    "start the stack with `harness up`") from exc

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_harness/status")
        return result

    def refresh(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_harness/refresh", {})
        return result

    def crash_runner(self, delivery_stream: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_harness/runner-crash", {"delivery_stream": delivery_stream})
        return result

    def register_function_url(self, function_name: str) -> str:
        return str(self._call("POST", "/_harness/function-urls", {"function_name": function_name})["url"])


def status(state_dir: Path) -> dict[str, int | str]:
    """Flat counters for `harness status`: the control plane, its functions and its delivery runners."""
    info = read_info(state_dir.resolve())
    if info is None:
        return {"control_plane": "stopped"}
    try:
        detail = ControlPlaneClient(info.url).status()
    except ControlPlaneError as exc:
        return {"control_plane": f"not answering (pid {info.pid}): {exc}"}
    flat: dict[str, int | str] = {"control_plane": "running", "control_plane_pid": info.pid, "endpoint": info.url}
    for name, function in detail["functions"].items():
        flat[f"lambda {name}"] = (f"{function['invocations']} invocations, {function['errors']} errors, "
                                  f"{function['timeouts']} timeouts, worker "
                                  f"{function['worker_pid'] or 'not started'}")
    for name, url in detail["function_urls"].items():
        flat[f"function url {name}"] = url["url"]
    for name, stream in detail["delivery_streams"].items():
        for counter in ("events_read", "records_delivered", "records_failed", "objects_written"):
            value = stream.get(counter)
            flat[f"firehose {name} {counter}"] = int(value) if isinstance(value, int) else str(value)
        if stream.get("error"):
            flat[f"firehose {name} error"] = str(stream["error"])
    return flat
