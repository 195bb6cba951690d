"""The ETL workflow (`harness.workflows.etl`) speaks only Glue's and CloudWatch Logs' APIs: it starts the stack's job,
follows the run's output for progress, and returns the run's real end, or fails with its real error. Stub clients stand
in for AWS (the same calls reach the local stack's gateway or AWS itself)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.workflows import etl
from harness.workflows.handle import StackHandle

STARTED = datetime(2026, 12, 4, 18, 0, 0, tzinfo=UTC)
SUMMARY = '{"rows": 2423, "partitions": 98, "prefix": "s3://lake/ratings-ml-training/", "counts": {}}'


class EntityNotFoundException(Exception):
    pass


class ConcurrentRunsExceededException(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.response = {"Error": {"Code": "ConcurrentRunsExceededException", "Message": message}}


class StubGlue:
    """GetJobRun answers the states in order, then the last one for good."""

    class exceptions:  # noqa: N801 - botocore's attribute name
        EntityNotFoundException = EntityNotFoundException
        ConcurrentRunsExceededException = ConcurrentRunsExceededException

    def __init__(self, states: list[str], error: str | None = None, runs: list[dict[str, Any]] | None = None) -> None:
        self.states = states
        self.error = error
        self.runs = runs or []
        self.started: list[dict[str, Any]] = []
        self.stopped: list[list[str]] = []
        self.refuse: Exception | None = None

    def start_job_run(self, JobName: str, Arguments: dict[str, str]) -> dict[str, str]:  # noqa: N803
        if self.refuse:
            raise self.refuse
        self.started.append({"JobName": JobName, "Arguments": Arguments})
        return {"JobRunId": "jr_1"}

    def get_job_run(self, JobName: str, RunId: str) -> dict[str, Any]:  # noqa: N803
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        run: dict[str, Any] = {"Id": RunId, "JobName": JobName, "JobRunState": state, "StartedOn": STARTED,
                               "ExecutionTime": 0, "LogGroupName": "/aws-glue/jobs"}
        if state not in etl.ACTIVE_STATES:
            run.update(CompletedOn=STARTED.replace(minute=1), ExecutionTime=61)
            if self.error:
                run["ErrorMessage"] = self.error
        return {"JobRun": run}

    def batch_stop_job_run(self, JobName: str, JobRunIds: list[str]) -> dict[str, Any]:  # noqa: N803
        self.stopped.append(JobRunIds)
        return {"SuccessfulSubmissions": [], "Errors": []}

    def get_job_runs(self, JobName: str, MaxResults: int, NextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        start, size = int(NextToken or 0), min(2, MaxResults)  # pages of two at most
        page: dict[str, Any] = {"JobRuns": self.runs[start:start + size]}
        if start + size < len(self.runs):
            page["NextToken"] = str(start + size)
        return page


class StubLogs:
    """The run's output stream gains one batch of lines per GetLogEvents call that has something new."""

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = batches
        self.served = 0

    def describe_log_streams(self, logGroupName: str, logStreamNamePrefix: str) -> dict[str, Any]:  # noqa: N803
        assert logGroupName == "/aws-glue/jobs/output"
        return {"logStreams": [{"logStreamName": logStreamNamePrefix}]}

    def get_log_events(self, logGroupName: str, logStreamName: str, startFromHead: bool,  # noqa: N803
                       nextToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        position = int(nextToken or 0)
        if position < len(self.batches):
            return {"events": [{"message": m} for m in self.batches[position]], "nextForwardToken": str(position + 1)}
        return {"events": [], "nextForwardToken": nextToken or "0"}


class StubHandle(StackHandle):
    def __init__(self, glue: StubGlue, logs: StubLogs) -> None:
        super().__init__(name="test", outputs={"glue_job_name": "etl-job"})
        self.stubs = {"glue": glue, "logs": logs}

    def client(self, service: str, *, read_timeout: float | None = None) -> Any:
        return self.stubs[service]


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(etl.time, "sleep", lambda _s: None)
    yield


def test_a_run_is_followed_through_its_log_and_its_summary_and_timings_returned() -> None:
    glue = StubGlue(["RUNNING", "RUNNING", "SUCCEEDED"])
    logs = StubLogs([["2026 INFO ratings_etl stage read: reading customers, products, ratings"],
                     ["2026 INFO ratings_etl stage transform: joining", "spark noise"],
                     ["2026 INFO ratings_etl stage done: run finished", f"2026 INFO ratings_etl summary {SUMMARY}"]])
    stages: list[tuple[str, str]] = []

    result = etl.run_etl(StubHandle(glue, logs), arguments={"--x": "1"},
                         on_stage=lambda stage, detail: stages.append((stage, detail)))

    assert glue.started == [{"JobName": "etl-job", "Arguments": {"--x": "1"}}]
    assert stages == [("read", "reading customers, products, ratings"), ("transform", "joining"),
                      ("done", "run finished")]
    assert result == {"rows": 2423, "partitions": 98, "prefix": "s3://lake/ratings-ml-training/", "counts": {},
                      "run_id": "jr_1", "state": "SUCCEEDED", "started_on": "2026-12-04T18:00:00+00:00",
                      "completed_on": "2026-12-04T18:01:00+00:00", "execution_time_s": 61}


def test_a_failed_run_is_an_error_with_the_runs_own_message() -> None:
    glue = StubGlue(["RUNNING", "FAILED"], error="cannot read source table 'customers': Access denied")

    with pytest.raises(etl.EtlError) as raised:
        etl.run_etl(StubHandle(glue, StubLogs([])))

    assert str(raised.value) == "Glue job run jr_1 FAILED: cannot read source table 'customers': Access denied"
    assert raised.value.run is not None and raised.value.run["JobRunState"] == "FAILED"


def test_a_timeout_and_a_stop_are_errors_too() -> None:
    with pytest.raises(etl.EtlError, match="^Glue job run jr_1 TIMEOUT: over time$"):
        etl.run_etl(StubHandle(StubGlue(["TIMEOUT"], error="over time"), StubLogs([])))
    with pytest.raises(etl.EtlError, match="^Glue job run jr_1 STOPPED: stopped before it finished$"):
        etl.run_etl(StubHandle(StubGlue(["STOPPED"]), StubLogs([])))


def test_a_success_whose_summary_never_reaches_the_log_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(etl, "LOG_SETTLE_S", 0.0)

    with pytest.raises(etl.EtlError, match="SUCCEEDED but its `ratings_etl summary` line is not in CloudWatch Logs"):
        etl.run_etl(StubHandle(StubGlue(["SUCCEEDED"]), StubLogs([["stage lines only"]])))


def test_a_run_still_going_at_the_deadline_is_an_error_and_keeps_running() -> None:
    glue = StubGlue(["RUNNING"])

    with pytest.raises(etl.EtlError, match="jr_1 is still RUNNING after 0 s; it goes on"):
        etl.run_etl(StubHandle(glue, StubLogs([])), timeout_s=0)

    assert glue.stopped == []


def test_ctrl_c_stops_the_run() -> None:
    glue = StubGlue(["RUNNING"])

    def interrupt(stage: str, detail: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        etl.run_etl(StubHandle(glue, StubLogs([["x ratings_etl stage read: r"]])), on_stage=interrupt)

    assert glue.stopped == [["jr_1"]]


def test_a_job_the_stack_lacks_or_already_running_is_a_one_line_error() -> None:
    glue = StubGlue(["RUNNING"])
    glue.refuse = EntityNotFoundException("Job etl-job not found.")
    with pytest.raises(etl.EtlError, match="^the stack test has no Glue job etl-job: deploy"):
        etl.run_etl(StubHandle(glue, StubLogs([])))

    glue.refuse = ConcurrentRunsExceededException("Concurrent runs exceeded for etl-job")
    with pytest.raises(etl.EtlError, match=r"^Glue job etl-job is already running \(Concurrent runs exceeded"):
        etl.run_etl(StubHandle(glue, StubLogs([])))


def test_a_run_is_found_by_a_unique_prefix_across_pages_and_an_ambiguous_prefix_is_refused() -> None:
    runs = [{"Id": f"jr_{name}", "JobRunState": "SUCCEEDED"} for name in ("abc1", "abc2", "def", "xyz")]
    handle = StubHandle(StubGlue(["RUNNING"], runs=runs), StubLogs([]))

    assert etl.get_run(handle)["Id"] == "jr_abc1"  # the newest: GetJobRuns lists newest first
    assert etl.get_run(handle, "jr_x")["Id"] == "jr_xyz"  # on the second page
    assert etl.get_run(handle, "jr_def")["Id"] == "jr_def"
    with pytest.raises(etl.EtlError, match="'jr_abc' matches 2 runs of etl-job; give more of the id"):
        etl.get_run(handle, "jr_abc")
    with pytest.raises(etl.EtlError, match="has no run 'jr_q'"):
        etl.get_run(handle, "jr_q")
    assert [r["Id"] for r in etl.job_runs(handle, limit=3)[1]] == ["jr_abc1", "jr_abc2", "jr_def"]
    whole = StubHandle(StubGlue(["RUNNING"], runs=[{"Id": "jr_ab1"}, {"Id": "jr_ab"}]), StubLogs([]))
    assert etl.get_run(whole, "jr_ab")["Id"] == "jr_ab"  # a whole id is never ambiguous


def test_a_job_run_prints_as_json_with_iso_times() -> None:
    assert etl.run_record({"Id": "jr_1", "StartedOn": STARTED, "Arguments": {"--a": "b"}}) == {
        "Id": "jr_1", "StartedOn": "2026-12-04T18:00:00+00:00", "Arguments": {"--a": "b"}}
    assert etl.output_log_group({"LogGroupName": "/custom/"}) == "/custom/output"
    assert etl.output_log_group({}) == "/aws-glue/jobs/output"
