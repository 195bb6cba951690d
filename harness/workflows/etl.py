"""Run the stack's Glue job through Glue's API and wait for it: the same calls on the local stack and on AWS.

`run_etl` starts the job the program deployed (output `glue_job_name`) with `StartJobRun`, polls `GetJobRun` until the
run ends, and follows the run's output in CloudWatch Logs (`<LogGroupName>/output`, the streams named after the run
id) for progress: the script prints `ratings_etl stage <name>: ...` per stage and `ratings_etl summary {...}` at the
end. Locally the emulator executes the run on Spark behind the same API (`harness.emulator.glue_runs`); this module
knows nothing of that.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.workflows.handle import StackHandle

ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
POLL_S = 2.0
DEFAULT_TIMEOUT_S = 4 * 3600.0  # the job's own timeout ends it sooner (glueTimeoutMinutes, 60 by default)
# Logs can reach CloudWatch a little after the run ended (on AWS, seconds): how long to wait for the summary line.
LOG_SETTLE_S = 60.0
DEFAULT_LOG_GROUP = "/aws-glue/jobs"
STAGE_LINE = re.compile(r"\bratings_etl stage (?P<stage>\w+): (?P<detail>.*)$")
SUMMARY_LINE = re.compile(r"\bratings_etl summary (?P<json>\{.*\})$")

StageCallback = Callable[[str, str], None]


class EtlError(RuntimeError):
    """The run could not be started, did not succeed, or did not finish in time; one line. `run` is the JobRun as
    `GetJobRun` returned it, when there is one."""

    def __init__(self, message: str, run: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.run = dict(run) if run is not None else None


# ---------------------------------------------------------------------------------------------------------------------
# pure parts


@dataclass
class Progress:
    """What the run's output said so far: the stages in order and the summary."""

    stages: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    log_error: str | None = None  # why the output could not be read, if it could not

    def read(self, lines: Iterable[str], on_stage: StageCallback | None = None) -> None:
        for line in lines:
            if match := STAGE_LINE.search(line):
                self.stages.append(match["stage"])
                if on_stage is not None:
                    on_stage(match["stage"], match["detail"])
            elif match := SUMMARY_LINE.search(line):
                try:
                    self.summary = json.loads(match["json"])
                except ValueError:
                    continue


def output_log_group(run: Mapping[str, Any]) -> str:
    """Where Glue writes the run's stdout: `<LogGroupName>/output` (`/aws-glue/jobs/output` by default)."""
    return f"{str(run.get('LogGroupName') or DEFAULT_LOG_GROUP).rstrip('/')}/output"


def timestamp(value: Any) -> str | None:
    """A JobRun time (botocore gives datetimes) as ISO 8601, seconds precision."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return None if value is None else str(value)


def run_record(run: Mapping[str, Any]) -> dict[str, Any]:
    """A JobRun as JSON-ready values (datetimes as ISO 8601), as `aws glue get-job-run` prints it."""
    return {key: timestamp(value) if isinstance(value, datetime) else value for key, value in run.items()}


def error_for(run: Mapping[str, Any]) -> str:
    state = run.get("JobRunState")
    reason = run.get("ErrorMessage") or {"STOPPED": "stopped before it finished"}.get(str(state), "no error message")
    return f"Glue job run {run.get('Id')} {state}: {reason}"


# ---------------------------------------------------------------------------------------------------------------------
# the calls


class LogTail:
    """The new lines of the run's log streams since the last call (every stream whose name starts with the run id:
    `<run id>`, or on Glue 5.0 also `<run id>-driver`). A log group or stream that does not exist yet is empty."""

    def __init__(self, logs: Any, group: str, run_id: str) -> None:
        self.logs = logs
        self.group = group
        self.run_id = run_id
        self.tokens: dict[str, str | None] = {}
        self.unreadable: str | None = None

    def new_lines(self) -> list[str]:
        try:
            streams = self.logs.describe_log_streams(logGroupName=self.group, logStreamNamePrefix=self.run_id)
        except Exception as err:  # noqa: BLE001 - no group yet (ResourceNotFound), or no permission to read logs
            self.unreadable = f"{type(err).__name__}: {err}"
            return []
        lines: list[str] = []
        for stream in sorted(s["logStreamName"] for s in streams.get("logStreams", [])):
            while True:
                token = self.tokens.get(stream)
                page = self.logs.get_log_events(logGroupName=self.group, logStreamName=stream, startFromHead=True,
                                                **({"nextToken": token} if token else {}))
                lines += [event["message"] for event in page.get("events", [])]
                self.tokens[stream] = page.get("nextForwardToken")
                if not page.get("events") or page.get("nextForwardToken") == token:
                    break
        self.unreadable = None
        return lines


def start_run(handle: StackHandle, arguments: Mapping[str, str] | None = None) -> tuple[str, str]:
    """`StartJobRun` for the stack's job: (job name, run id)."""
    job = str(handle.output("glue_job_name"))
    glue = handle.client("glue")
    try:
        run_id = glue.start_job_run(JobName=job, Arguments=dict(arguments or {}))["JobRunId"]
    except glue.exceptions.EntityNotFoundException:
        raise EtlError(f"the stack {handle.name} has no Glue job {job}: deploy the program's current version "
                       "(`pulumi up`, locally `harness up`)") from None
    except glue.exceptions.ConcurrentRunsExceededException as err:
        raise EtlError(f"Glue job {job} is already running ({err.response['Error'].get('Message', '')}): wait for "
                       "that run (`harness etl runs`) or stop it (`aws glue batch-stop-job-run`)") from None
    return job, str(run_id)


def wait_for_run(handle: StackHandle, job: str, run_id: str, *, on_stage: StageCallback | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, poll_s: float = POLL_S) -> tuple[dict[str, Any], Progress]:
    """Poll `GetJobRun` until the run ends, reading its output for progress; the final JobRun and what it printed."""
    glue, logs = handle.client("glue"), handle.client("logs")
    progress = Progress()
    tail: LogTail | None = None
    deadline = time.monotonic() + timeout_s
    while True:
        run = dict(glue.get_job_run(JobName=job, RunId=run_id)["JobRun"])
        tail = tail or LogTail(logs, output_log_group(run), run_id)
        progress.read(tail.new_lines(), on_stage)
        if run.get("JobRunState") not in ACTIVE_STATES:
            break
        if time.monotonic() >= deadline:
            raise EtlError(f"Glue job run {run_id} is still {run.get('JobRunState')} after {timeout_s:.0f} s; it goes "
                           f"on: `harness etl get-run {run_id}` shows it", run)
        time.sleep(poll_s)
    if run.get("JobRunState") == "SUCCEEDED":
        settle = time.monotonic() + LOG_SETTLE_S
        while progress.summary is None and time.monotonic() < settle:
            time.sleep(poll_s)
            progress.read(tail.new_lines(), on_stage)
    progress.log_error = tail.unreadable
    return run, progress


def run_etl(handle: StackHandle, *, arguments: Mapping[str, str] | None = None,
            on_stage: StageCallback | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
            poll_s: float = POLL_S) -> dict[str, Any]:
    """Run the stack's Glue job and wait for it: the script's summary (rows, partitions, prefix, counts, objects
    published and deleted) with `run_id`, `state`, `started_on`, `completed_on`, `execution_time_s`.

    Raises EtlError with the run's own error message when the run did not succeed. Ctrl-C stops the run
    (`BatchStopJobRun`), as it stopped a local run before the job moved behind Glue's API.
    """
    job, run_id = start_run(handle, arguments)
    try:
        run, progress = wait_for_run(handle, job, run_id, on_stage=on_stage, timeout_s=timeout_s, poll_s=poll_s)
    except KeyboardInterrupt:
        handle.client("glue").batch_stop_job_run(JobName=job, JobRunIds=[run_id])
        raise
    if run.get("JobRunState") != "SUCCEEDED":
        raise EtlError(error_for(run), run)
    if progress.summary is None:
        why = f": {progress.log_error}" if progress.log_error else ""
        raise EtlError(f"Glue job run {run_id} SUCCEEDED but its `ratings_etl summary` line is not in CloudWatch Logs "
                       f"({output_log_group(run)}, streams {run_id}*{why})", run)
    return {**progress.summary, "run_id": run_id, "state": run["JobRunState"],
            "started_on": timestamp(run.get("StartedOn")), "completed_on": timestamp(run.get("CompletedOn")),
            "execution_time_s": int(run.get("ExecutionTime") or 0)}


def job_runs(handle: StackHandle, *, limit: int = 200) -> tuple[str, list[dict[str, Any]]]:
    """The stack's job and its runs, newest first (`GetJobRuns`), at most `limit`."""
    job = str(handle.output("glue_job_name"))
    glue = handle.client("glue")
    runs: list[dict[str, Any]] = []
    token: str | None = None
    try:
        while len(runs) < limit:
            page = glue.get_job_runs(JobName=job, MaxResults=min(200, limit - len(runs)),
                                     **({"NextToken": token} if token else {}))
            runs += page.get("JobRuns", [])
            token = page.get("NextToken")
            if not token:
                break
    except glue.exceptions.EntityNotFoundException:
        raise EtlError(f"the stack {handle.name} has no Glue job {job}: deploy it first") from None
    return job, runs


def get_run(handle: StackHandle, run_id: str | None = None) -> dict[str, Any]:
    """One run by id or unique id prefix (`etl runs` shows short ids); the latest when `run_id` is None."""
    job, runs = job_runs(handle)
    if run_id is None:
        if not runs:
            raise EtlError(f"Glue job {job} has no runs yet: `harness etl run` starts one")
        return runs[0]
    matches = [r for r in runs if r["Id"] == run_id] or [r for r in runs if str(r["Id"]).startswith(run_id)]
    if not matches:
        raise EtlError(f"Glue job {job} has no run {run_id!r} (`harness etl runs` lists them)")
    if len(matches) > 1:
        raise EtlError(f"{run_id!r} matches {len(matches)} runs of {job}; give more of the id")
    return matches[0]
