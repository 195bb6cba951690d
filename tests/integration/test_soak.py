"""The soak: steady load through the whole local stack with faults, reconciled session by session.

The one-minute soak is the real command against the `local_stack` (stops and restarts its PostgreSQL, kills the
transformation worker mid-batch, pauses the control plane); it must lose nothing and double nothing. The reconciliation
and the fault plan it relies on are pure and are also checked here on their own, so a reconciliation that cannot see a
loss or a duplicate fails these tests rather than passing every soak.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.workflows import soak

ROOT = Path(__file__).resolve().parents[2]


def run_harness(state_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECSYS_LOCAL_DIR": str(state_dir), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def tail(result: subprocess.CompletedProcess[str], lines: int = 60) -> str:
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def session(session_id: str, **extra: Any) -> dict[str, Any]:
    return {"session_id": session_id, "customer_number": 103, "city": "Nantes", "country": "France",
            "credit_limit": 21000, "browse_history": [{"product_code": "S10_1678", "quantity": "2",
                                                       "in_shopping_cart": False}], **extra}


def delivered_object(*sessions: dict[str, Any]) -> bytes:
    return b"".join(json.dumps({**s, "recommended_items": [{"id": "S10_1949", "score": 0.8}]}).encode() + b"\n"
                    for s in sessions)


def error_object(*sessions: dict[str, Any]) -> bytes:
    return b"".join(json.dumps({"attemptsMade": 3, "errorCode": "Lambda.FunctionError", "errorMessage": "db down",
                                "rawData": base64.b64encode(json.dumps(s).encode()).decode()}).encode() + b"\n"
                    for s in sessions)


# ---- reconciliation (pure) ------------------------------------------------------------------------------------------

def test_every_session_delivered_or_in_the_error_output_once_reconciles() -> None:
    found = (soak.records_in_object(delivered_object(session("a"), session("b")), "delivered")
             + soak.records_in_object(error_object(session("c")), "error"))

    result = soak.reconcile(["a", "b", "c"], found)

    assert result.ok
    assert (result.sent, result.delivered, result.failed) == (3, 2, 1)


def test_a_session_found_nowhere_is_reported_lost_by_its_id() -> None:
    found = soak.records_in_object(delivered_object(session("a")), "delivered")

    result = soak.reconcile(["a", "lost-one"], found)

    assert not result.ok
    assert result.missing == ("lost-one",)
    assert "lost-one" in result.problems()[0]


def test_a_session_both_delivered_and_failed_is_a_duplicate_not_a_success() -> None:
    found = (soak.records_in_object(delivered_object(session("a")), "delivered")
             + soak.records_in_object(error_object(session("a")), "error"))

    result = soak.reconcile(["a"], found)

    assert not result.ok
    assert result.duplicated == {"a": 2}
    assert result.delivered == 0 and result.failed == 0


def test_after_a_redrive_a_failed_then_delivered_session_is_redriven_and_a_double_delivery_still_fails() -> None:
    found = (soak.records_in_object(delivered_object(session("a"), session("b"), session("d"), session("d")),
                                    "delivered")
             + soak.records_in_object(error_object(session("a"), session("c"), session("c")), "error"))

    result = soak.reconcile(["a", "b", "c", "d"], found, redrive_ran=True)

    # a: failed, redriven, delivered once. b: delivered. c: failed twice (redriven, failed again), never delivered:
    # still in the error output, not lost. d: delivered twice: the pipeline doubled it, a redrive never excuses that.
    assert (result.delivered, result.redriven, result.failed) == (2, 1, 1)
    assert result.duplicated == {"d": 2} and not result.missing
    assert not result.ok
    assert soak.reconcile(["a", "b", "c"], found, redrive_ran=True).ok


def test_records_of_other_producers_are_ignored_and_unreadable_ones_fail() -> None:
    found = soak.records_in_object(delivered_object(session("a"), session("from-the-demo")), "delivered")
    assert soak.reconcile(["a"], found).ok
    assert soak.reconcile(["a"], found).foreign == 1

    broken = soak.records_in_object(b'{"attemptsMade": 1, "rawData": "not base64!"}\n', "error")
    assert not soak.reconcile(["a"], found + broken).ok


def test_a_delivered_record_without_recommendations_fails_the_soak() -> None:
    found = soak.records_in_object(json.dumps(session("a")).encode() + b"\n", "delivered")

    assert soak.reconcile(["a"], found).without_recommendations == ("a",)


def test_records_written_back_to_back_without_newlines_are_all_read() -> None:
    body = delivered_object(session("a"), session("b")).replace(b"\n", b"")

    assert [r.session_id for r in soak.records_in_object(body, "delivered")] == ["a", "b"]


# ---- the fault plan (pure) ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("minutes", "outage_s"), [(0.5, 3.0), (1, 15.0), (3, 60.0)])
def test_faults_are_planned_one_at_a_time_every_kind_at_least_once_inside_the_run(minutes: float,
                                                                                  outage_s: float) -> None:
    duration = minutes * 60

    plan = soak.plan_faults(duration, random.Random(11), outage_s=outage_s)

    assert {f.kind for f in plan} == set(soak.FAULT_KINDS)
    # Every kind once per started minute, except the long database outage: once per run.
    assert len(plan) == (len(soak.FAULT_KINDS) - 1) * max(1, int(minutes + 0.999)) + 1
    assert [f.duration_s for f in plan if f.kind == "db_outage"] == [outage_s]
    for fault, following in zip(plan, plan[1:], strict=False):
        assert fault.at_s + fault.duration_s <= fault.window_end_s <= following.at_s
    assert plan[0].at_s >= soak.QUIET_EDGE_S and plan[-1].window_end_s <= duration - soak.QUIET_EDGE_S + 0.01


def test_a_run_too_short_for_its_faults_is_refused_with_what_to_change() -> None:
    with pytest.raises(soak.SoakError, match="need at least .* s of production.*raise --minutes"):
        soak.plan_faults(60, random.Random(1), outage_s=60)

    only = soak.plan_faults(60, random.Random(1), kinds=("db_outage",), outage_s=40)
    assert [(f.kind, f.duration_s) for f in only] == [("db_outage", 40.0)]


def test_the_fault_moments_are_random_but_repeatable_with_a_seed() -> None:
    assert soak.plan_faults(60, random.Random(1)) == soak.plan_faults(60, random.Random(1))
    assert soak.plan_faults(60, random.Random(1)) != soak.plan_faults(60, random.Random(2))


def test_a_soak_refuses_an_unsteady_rate_and_a_bad_duration_with_what_to_pass(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "soak", "--rate", "max", timeout=60)
    assert result.returncode == 2
    assert "steady rate" in result.stderr and "20/s" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_harness(tmp_path, "soak", "--minutes", "0", timeout=60)
    assert result.returncode == 2 and "--minutes must be more than 0" in result.stderr


def test_a_soak_without_a_stack_says_to_bring_it_up(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "soak", "--minutes", "0.1", timeout=60)

    assert result.returncode == 2
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
