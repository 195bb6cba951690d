"""The soak: steady load through the whole local stack with faults, reconciled session by session.

The one-minute soak is the real command against the `local_stack` (stops and restarts its PostgreSQL, kills the
transformation worker mid-batch, pauses the control plane); it must lose nothing and double nothing. The reconciliation
and the fault plan it relies on are pure and checked on their own (tests/unit/test_soak_*.py), so a reconciliation that
cannot see a loss or a duplicate fails those tests rather than passing every soak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.workflows import soak

ROOT = Path(__file__).resolve().parents[2]


def run_harness(state_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECSYS_LOCAL_DIR": str(state_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def test_a_soak_refuses_an_unsteady_rate_and_a_bad_duration_with_what_to_pass(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "soak", "--rate", "max", timeout=60)
    assert result.returncode == 2
    assert "steady rate" in result.stderr and "20/s" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_harness(tmp_path, "soak", "--minutes", "0", timeout=60)
    assert result.returncode == 2 and "--minutes must be more than 0" in result.stderr


def test_a_soak_without_a_stack_says_to_bring_it_up(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "soak", "--minutes", "0.1", timeout=60)

    assert result.returncode == 1
    assert "harness up" in result.stderr and "Traceback" not in result.stderr


# ---- the soak itself, through the local stack -----------------------------------------------------------------------

def test_a_one_minute_soak_with_faults_loses_and_doubles_nothing(local_stack: Any) -> None:
    result = run_harness(local_stack.state_dir, "soak", "--minutes", "1", "--rate", "20/s", "--faults", "--prepare",
                         "--seed", "7", timeout=1500)

    assert result.returncode == 0, tail(result)
    report = json.loads((local_stack.state_dir / soak.REPORT_FILE).read_text())
    reconciliation = report["reconciliation"]
    assert reconciliation["sent"] >= 1100  # 20/s for 60 s, every event accepted by Kinesis
    assert reconciliation["delivered"] + reconciliation["failed"] == reconciliation["sent"]
    assert reconciliation["missing"] == 0
    # Only a kill between an object's write and its checkpoint can double a record (at least once), never more.
    assert reconciliation["duplicated"] == report["at_least_once_duplicates"]
    assert {f["kind"] for f in report["faults"] if f["injected"]} == set(soak.FAULT_KINDS)
    # The 15 s database outage outlasts the processor's retries: batches failed into the error output, and the
    # stack's redrive function brought every one of them back, delivered exactly once.
    assert report["redrive"]["sent"] > 0
    assert reconciliation["redriven"] == report["redrive"]["sent"]
    assert reconciliation["failed"] == report["stranded_after_redrive"] == 0
    # The stack is whole again afterwards: the restarted PostgreSQL serves the vector database on its old port.
    status = run_harness(local_stack.state_dir, "status", "--json", timeout=60)
    assert status.returncode == 0, tail(status)
