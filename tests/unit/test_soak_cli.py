"""`harness soak`: arguments checked before any work (exit 2, one line), faults only on the local stack, confirmation
on a real account, the workflow called with the handle, the report written and printed as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app as cli
from harness.cli import target
from harness.workflows import soak as soaking


def report(**overrides: Any) -> soaking.SoakReport:
    values: dict[str, Any] = {
        "started_at": "2026-12-04T18:00:00+00:00", "minutes": 1.0, "rate": 10.0, "faults_enabled": False,
        "seed": 3, "production_s": 60.0, "achieved_rate": 10.0, "refused_by_kinesis": 0, "drain_s": 12.0,
        "drain_timed_out": False, "objects": {"delivered": 4, "error": 0}, "faults": [], "fault_errors": None,
        "reconciliation": soaking.reconcile([], []).as_dict(), "runner": {"records_read": 600}, "ok": True,
        "stack": "dev"}
    return soaking.SoakReport(**{**values, **overrides})


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """`run_soak` recorded instead of run; the environment of a user pointed at a real account."""
    recorded: list[dict[str, Any]] = []

    def run_soak(handle: Any, **kwargs: Any) -> soaking.SoakReport:
        recorded.append({"stack": handle.name, "emulated": handle.emulated, **kwargs})
        return report(ok=kwargs["seed"] != 13)

    monkeypatch.setattr(soaking, "run_soak", run_soak)
    monkeypatch.setattr(target, "describe_account", lambda handle: "account 123456789012 (eu-west-1)")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECSYS_LOCAL_DIR", str(tmp_path / "state"))
    return recorded


def run(tmp_path: Path, *args: str, deployed: bool = True) -> Any:
    outputs = tmp_path / "dev.json"
    outputs.write_text(json.dumps({"kinesis_stream_name": "s"}))
    cli._register_commands()
    return CliRunner().invoke(cli.app, ["soak", *(["--outputs", str(outputs)] if deployed else []), *args],
                              env={"COLUMNS": "80"})


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "max"], "--rate must be a steady rate in events per second, e.g. 20/s (got 'max'): a soak measures "
                        "what the stack sustains, `max` would only measure how fast Kinesis accepts"),
    (["--minutes", "0"], "--minutes must be more than 0 and at most 1440 (a day), got 0"),
    (["--fault", "daemon_kill"], "unknown fault kind daemon_kill: choose from postgres_restart, worker_kill, "
                                 "runner_pause, runner_kill, control_plane_kill, db_outage"),
    (["--outage-seconds", "0"], "--outage-seconds must be from 1 to 600, got 0"),
    (["--drain-timeout", "0"], "--drain-timeout must be more than 0 seconds, got 0"),
    (["--minutes", "0.25", "--faults"], "the 6 planned fault(s) (control_plane_kill, db_outage, postgres_restart, "
                                        "runner_kill, runner_pause, worker_kill) need at least 39 s of production, "
                                        "the run has 15 s: raise --minutes, lower --outage-seconds, or choose fewer "
                                        "kinds with --fault"),
    (["--fault", "worker_kill"], "--fault/--faults need the local stack (faults are injected into the emulator's "
                                 "processes): soak a deployed stack without them"),
])
def test_bad_arguments_exit_2_with_one_line_before_any_work(calls: list[dict[str, Any]], tmp_path: Path,
                                                            args: list[str], message: str) -> None:
    result = run(tmp_path, *args, "--yes")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {message}"]
    assert calls == []


def test_a_real_account_is_not_soaked_without_yes_when_nobody_can_be_asked(calls: list[dict[str, Any]],
                                                                           tmp_path: Path) -> None:
    result = run(tmp_path, "--minutes", "1", "--rate", "10")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: `harness soak` sends 600 sessions through the stream over 1 min on stack dev on AWS account "
        "123456789012 (eu-west-1) costs money or changes data: pass --yes to go ahead (there is no terminal to ask "
        "on)"]
    assert calls == []


def test_a_deployed_stack_is_soaked_through_its_handle_and_json_is_the_report(calls: list[dict[str, Any]],
                                                                              tmp_path: Path) -> None:
    result = run(tmp_path, "--minutes", "1", "--rate", "10/s", "--seed", "3", "--json", "--yes")

    assert result.exit_code == 0, result.output
    assert [{k: call[k] for k in ("stack", "emulated", "minutes", "rate", "faults", "seed", "injector", "prepare")}
            for call in calls] == [{"stack": "dev", "emulated": False, "minutes": 1.0, "rate": 10.0, "faults": False,
                                    "seed": 3, "injector": None, "prepare": False}]
    written = tmp_path / "state" / "soak-report-dev.json"
    assert json.loads(result.stdout) == json.loads(written.read_text()) == report().as_dict()
    assert f"report written to {written}" in result.stderr


def test_a_soak_that_loses_or_doubles_exits_1(calls: list[dict[str, Any]], tmp_path: Path) -> None:
    result = run(tmp_path, "--minutes", "1", "--rate", "10", "--seed", "13", "--yes")

    assert result.exit_code == 1
    assert "FAIL" in result.stdout


def test_without_a_local_stack_the_soak_says_to_bring_it_up(calls: list[dict[str, Any]], tmp_path: Path) -> None:
    result = run(tmp_path, "--minutes", "1", "--fault", "worker_kill", deployed=False)

    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("error: the local stack is not up")
    assert "`harness up`" in result.stderr
    assert calls == []
