"""`local_stack`: the whole local stack, brought up once per test session by `python -m harness up` (the real command,
in a subprocess, as a user runs it) in a temporary state directory, and taken down by `python -m harness down`.

Tests check each stage against the databases and buckets themselves: use `local_stack.client("s3")`,
`local_stack.output("...")`, `local_stack.state()` and `local_stack.run("seed", "--scale", "1")`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli.stack import env_exports
from harness.emulator import services
from harness.emulator import state as st

ROOT = Path(__file__).resolve().parents[2]
UP_TIMEOUT_S = 900
OUTPUT_TAIL_LINES = 60


@dataclass(frozen=True)
class LocalStack:
    state_dir: Path
    services: services.RunningServices

    @property
    def env(self) -> dict[str, str]:
        """What `eval "$(python -m harness env)"` would export, plus RECSYS_LOCAL_DIR for harness subcommands."""
        return {**dict(env_exports(self.state(), self.state_dir)), st.ENV_VAR: str(self.state_dir)}

    def state(self) -> st.State:
        return st.load_state(self.state_dir)

    def output(self, name: str) -> Any:
        outputs = self.state().get("outputs") or {}
        if name not in outputs:
            raise KeyError(f"no stack output {name!r}; outputs are: {', '.join(sorted(outputs))}")
        return outputs[name]["value"]

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.services.moto.endpoint_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def run(self, *args: str, timeout: float = UP_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`python -m harness <args>` against this stack; on failure the test fails with the command's output."""
        result = run_harness(self.state_dir, *args, timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"`python -m harness {' '.join(args)}` exited {result.returncode}:\n{tail(result)}",
                        pytrace=False)
        return result


def run_harness(state_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, st.ENV_VAR: str(state_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def tail(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stdout + result.stderr).splitlines()
    return "\n".join(lines[-OUTPUT_TAIL_LINES:])


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("local-stack")
    up = run_harness(state_dir, "up", timeout=UP_TIMEOUT_S)
    try:
        if up.returncode != 0:
            pytest.fail(f"`python -m harness up` failed (exit {up.returncode}):\n{tail(up)}", pytrace=False)
        state = st.load_state(state_dir)
        if not state.get("outputs"):
            pytest.fail("`python -m harness up` started the services but deployed nothing: the engine "
                        "(harness/emulator/engine.py) is not available or returned no outputs:\n"
                        f"{tail(up)}", pytrace=False)
        yield LocalStack(state_dir=state_dir, services=services.RunningServices.from_dict(state["services"]))
    finally:
        down = run_harness(state_dir, "down", timeout=120)
        if down.returncode != 0:
            print(f"`python -m harness down` failed (exit {down.returncode}):\n{tail(down)}", file=sys.stderr)
