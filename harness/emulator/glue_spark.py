"""One Glue job run executed on local Spark: what AWS Glue does with a run once it has started it.

`harness.emulator.glue_runs.GlueRunService` owns the runs (the API, their state, persistence); this module turns one
run into a child process and reports how it ended:

1. the job's Glue connection (`JDBC_CONNECTION_URL`, `SECRET_ID`) becomes the script's local-mode JDBC arguments
   (`--jdbc_url`, `--jdbc_secret_id`; a plaintext connection password only in the child's environment, never on a
   command line other users can read in `ps`);
2. the run's arguments are the job's default arguments, overridden by the run's, then the job's non-overridable ones,
   as Glue merges them, plus `--JOB_NAME` and `--JOB_RUN_ID` as Glue adds them;
3. the deployed script (fetched from S3 by the caller) runs with local Spark (`local[2]`, a 1 GB driver, MariaDB
   Connector/J on the classpath) and `AWS_ENDPOINT_URL` at the emulator, so its own boto3 calls (the secret, the
   publish to S3, the Data Catalog) reach it;
4. its stdout goes to CloudWatch Logs `/aws-glue/jobs/output`, its stderr (Spark's own log included) to
   `/aws-glue/jobs/error`, one stream per run named by the run id, and both to a local driver log file;
5. the end: exit status 0 is SUCCEEDED; otherwise FAILED with the script's own one-line reason; TIMEOUT when it ran
   past the run's timeout; STOPPED when stopped. The whole process group is killed (the JVM included).
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from harness.emulator.endpoints import CREDENTIALS_ENV

MARIADB_JDBC_JAR = Path("/usr/share/java/mariadb-java-client.jar")
MARIADB_JDBC_DRIVER = "org.mariadb.jdbc.Driver"
DEFAULT_TIMEOUT_MINUTES = 2880  # Glue's default job timeout: 48 hours
# Local Spark is sized for a laptop shared with the rest of the stack: two cores, a small driver, few shuffle tasks.
LOCAL_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "1g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
}
# Where Glue sends a run's output: stdout to .../output, stderr to .../error, in a stream named by the run id.
LOG_GROUP = "/aws-glue/jobs"
OUTPUT_LOG_GROUP = f"{LOG_GROUP}/output"
ERROR_LOG_GROUP = f"{LOG_GROUP}/error"
# The ratings ETL's own stop line (it logs the reason and exits 1 in local mode; on Glue it raises).
STOPPED_LINE = re.compile(r" ratings_etl ratings ETL stopped: (?P<message>.*)$")
EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception)(?::|$).*")
USAGE_ERROR_LINE = re.compile(r"^\S+\.py: error: .*")  # argparse: a missing or malformed job argument
ERROR_TAIL_LINES = 400  # stderr lines kept in memory to find the error (the whole log is in the file and CloudWatch)
MAX_ERROR_MESSAGE = 2000

EndState = Literal["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"]


class RunSetupError(RuntimeError):
    """The run cannot be executed (no connection, no script, no JDBC driver): it ends FAILED with this message."""


@dataclass(frozen=True)
class JobDefinition:
    """What a run needs from `GetJob`."""

    name: str
    script_location: str
    connections: tuple[str, ...]
    timeout_minutes: int
    default_arguments: Mapping[str, str] = field(default_factory=dict)
    non_overridable_arguments: Mapping[str, str] = field(default_factory=dict)
    max_concurrent_runs: int = 1
    glue_version: str | None = None
    worker_type: str | None = None
    number_of_workers: int | None = None
    max_capacity: float | None = None


@dataclass(frozen=True)
class SourceConnection:
    jdbc_url: str
    secret_id: str | None
    user: str | None
    password: str | None = field(repr=False)


@dataclass(frozen=True)
class Outcome:
    state: EndState
    error: str | None = None


# ---------------------------------------------------------------------------------------------------------------------
# pure parts


def job_definition(get_job_response: Mapping[str, Any]) -> JobDefinition:
    job = get_job_response["Job"]
    return JobDefinition(
        name=job["Name"],
        script_location=job.get("Command", {}).get("ScriptLocation", ""),
        connections=tuple(job.get("Connections", {}).get("Connections", [])),
        timeout_minutes=int(job.get("Timeout") or DEFAULT_TIMEOUT_MINUTES),
        default_arguments=dict(job.get("DefaultArguments") or {}),
        non_overridable_arguments=dict(job.get("NonOverridableArguments") or {}),
        max_concurrent_runs=int((job.get("ExecutionProperty") or {}).get("MaxConcurrentRuns") or 1),
        glue_version=job.get("GlueVersion"),
        worker_type=job.get("WorkerType"),
        number_of_workers=job.get("NumberOfWorkers"),
        max_capacity=job.get("MaxCapacity"),
    )


def effective_arguments(job: JobDefinition, run_arguments: Mapping[str, str]) -> dict[str, str]:
    """The arguments the script sees, as Glue merges them: defaults, overridden by the run's, then non-overridable."""
    return {**job.default_arguments, **run_arguments, **job.non_overridable_arguments}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[len("s3://"):] or uri.endswith("/"):
        raise RunSetupError(f"the job's script location {uri!r} is not an s3://bucket/key URI; redeploy the job")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def source_connection(get_connection_response: Mapping[str, Any]) -> SourceConnection:
    """The JDBC URL and credentials of a Glue JDBC connection: a `SECRET_ID`, or `USERNAME`/`PASSWORD` properties."""
    connection = get_connection_response["Connection"]
    props = connection.get("ConnectionProperties", {})
    url = props.get("JDBC_CONNECTION_URL")
    if not url:
        raise RunSetupError(f"Glue connection {connection.get('Name')!r} has no JDBC_CONNECTION_URL; redeploy the "
                            "stack (`harness up`)")
    if not props.get("SECRET_ID") and not props.get("PASSWORD"):
        raise RunSetupError(f"Glue connection {connection.get('Name')!r} has neither SECRET_ID nor USERNAME/PASSWORD: "
                            "the job could not log in to the source database")
    return SourceConnection(url, props.get("SECRET_ID") or None, props.get("USERNAME"), props.get("PASSWORD"))


def local_arguments(arguments: Mapping[str, str], job_name: str, run_id: str, source: SourceConnection,
                    local_output: Path) -> list[str]:
    """The script's argv after its path: Glue's own (`--JOB_NAME`, `--JOB_RUN_ID`), the run's, then local mode's.

    The password is never on the command line: the script reads it from the secret, or, for a connection with a
    plaintext PASSWORD property, from the environment (`child_environment`).
    """
    argv = ["--JOB_NAME", job_name, "--JOB_RUN_ID", run_id]
    for name, value in sorted(arguments.items()):
        if name in ("--JOB_NAME", "--JOB_RUN_ID"):
            continue
        argv += [name, value]
    argv += ["--jdbc_url", source.jdbc_url, "--jdbc_driver", MARIADB_JDBC_DRIVER, "--local_output", str(local_output)]
    if source.secret_id:
        argv += ["--jdbc_secret_id", source.secret_id]
    if source.user:
        argv += ["--jdbc_user", source.user]
    return argv


def spark_submit_args(jar: Path, conf: Mapping[str, str]) -> str:
    parts = ["--jars", str(jar)]
    for key, value in conf.items():
        if key == "spark.master":
            parts += ["--master", value]
        elif key == "spark.driver.memory":
            parts += ["--driver-memory", value]
        else:
            parts += ["--conf", f"{key}={value}"]
    return " ".join([*parts, "pyspark-shell"])


def child_environment(moto_url: str, region: str, source: SourceConnection,
                      base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The script's environment: this process's minus any AWS/Spark settings, plus the emulator's endpoint."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith(("AWS_", "PYSPARK_", "SPARK_"))}
    env.update(CREDENTIALS_ENV)
    env.update({
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "PYSPARK_SUBMIT_ARGS": spark_submit_args(MARIADB_JDBC_JAR, LOCAL_SPARK_CONF),
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    })
    if source.password is not None and not source.secret_id:
        env["RATINGS_ETL_JDBC_PASSWORD"] = source.password
    return env


def error_message(stdout_lines: Sequence[str], stderr_lines: Sequence[str], returncode: int) -> str:
    """The one line a user needs: the script's own stop message, else its argument error, else the last exception
    line it printed, else its exit status."""
    for line in reversed(stdout_lines):
        if match := STOPPED_LINE.search(line):
            return match["message"][:MAX_ERROR_MESSAGE]
    for line in reversed([*stdout_lines, *stderr_lines]):
        if USAGE_ERROR_LINE.match(line.strip()):
            return f"bad job arguments: {line.strip()}"[:MAX_ERROR_MESSAGE]
    for line in reversed(stderr_lines):
        if EXCEPTION_LINE.match(line.strip()):
            return line.strip()[:MAX_ERROR_MESSAGE]
    if returncode < 0:
        return f"the job script was killed by signal {-returncode}"
    return f"the job script exited with status {returncode}"


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc): with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # exited, not yet reaped: not running
            return None
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def kill_group(pid: int, start_ticks: int | None) -> bool:
    """Kill the process group `pid` leads, if `pid` is still the process that was started (not a reused pid)."""
    if start_ticks is None or process_start_ticks(pid) != start_ticks:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# ---------------------------------------------------------------------------------------------------------------------
# the run's logs: CloudWatch Logs in the emulator, and a local file


class RunLogs:
    """The run's output as Glue publishes it: one stream named by the run id in each of the two log groups.

    Lines are buffered and sent at most every `FLUSH_S` (PutLogEvents takes up to 10,000 events, 1 MB). A failure to
    reach CloudWatch Logs never fails the run: the line is still in the local driver log, and the first failure is
    reported there."""

    FLUSH_S = 1.0
    MAX_BATCH = 1000
    MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch's limit per event, minus its per-event overhead

    def __init__(self, logs_client: Any, run_id: str, log_file: IO[str]) -> None:
        self._logs = logs_client
        self._run_id = run_id
        self._file = log_file
        self._lock = threading.Lock()
        self._pending: dict[str, list[dict[str, Any]]] = {OUTPUT_LOG_GROUP: [], ERROR_LOG_GROUP: []}
        self._last_flush = time.monotonic()
        self._failed = False
        for group in (OUTPUT_LOG_GROUP, ERROR_LOG_GROUP):
            self._call("create_log_group", logGroupName=group)
            self._call("create_log_stream", logGroupName=group, logStreamName=run_id)

    def write(self, group: str, line: str) -> None:
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            message = line.encode()[: self.MAX_EVENT_BYTES].decode(errors="ignore") or " "
            self._pending[group].append({"timestamp": int(time.time() * 1000), "message": message})
            if (len(self._pending[group]) >= self.MAX_BATCH
                    or time.monotonic() - self._last_flush >= self.FLUSH_S):
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        for group, events in self._pending.items():
            if events:
                self._call("put_log_events", logGroupName=group, logStreamName=self._run_id, logEvents=events)
                self._pending[group] = []

    def _call(self, operation: str, **kwargs: Any) -> None:
        try:
            getattr(self._logs, operation)(**kwargs)
        except Exception as err:  # noqa: BLE001 - any failure: already exists, emulator gone; never fails the run
            if type(err).__name__ == "ResourceAlreadyExistsException" or "AlreadyExists" in str(err):
                return
            if not self._failed:
                self._failed = True
                self._file.write(f"[harness] CloudWatch Logs {operation} failed ({err}); the log continues here only\n")


# ---------------------------------------------------------------------------------------------------------------------
# the child process


@dataclass
class RunControl:
    """How the service steers a running execution: `stop` asks it to end (STOPPED); `child` is (pid, start ticks)
    once the process exists, for the service to record and to kill if its own process dies."""

    stop: threading.Event = field(default_factory=threading.Event)
    child: tuple[int, int | None] | None = None


def execute(argv: Sequence[str], env: Mapping[str, str], cwd: Path, logs: RunLogs, timeout_s: float,
            control: RunControl, on_child: Callable[[int, int | None], None] | None = None) -> Outcome:
    """Run the script to its end; the outcome as Glue reports it. Never raises for the script's own failure."""
    stdout_lines: collections.deque[str] = collections.deque(maxlen=ERROR_TAIL_LINES)
    stderr_lines: collections.deque[str] = collections.deque(maxlen=ERROR_TAIL_LINES)
    process = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    control.child = (process.pid, process_start_ticks(process.pid))
    if on_child is not None:
        on_child(*control.child)

    def pump(stream: IO[str] | None, group: str, tail: collections.deque[str]) -> None:
        assert stream is not None
        for raw in stream:
            line = raw.rstrip("\n")
            tail.append(line)
            logs.write(group, line)

    readers = [threading.Thread(target=pump, args=(process.stdout, OUTPUT_LOG_GROUP, stdout_lines), daemon=True),
               threading.Thread(target=pump, args=(process.stderr, ERROR_LOG_GROUP, stderr_lines), daemon=True)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout_s
    ended: EndState | None = None
    try:
        while process.poll() is None:
            if control.stop.wait(0.2):
                ended = "STOPPED"
            elif time.monotonic() >= deadline:
                ended = "TIMEOUT"
            if ended is not None:
                _kill(process)
                break
        returncode = process.wait()
    finally:
        if process.poll() is None:
            _kill(process)
            process.wait()
        for reader in readers:
            reader.join(timeout=10)
        logs.flush()
    if ended == "STOPPED":
        return Outcome("STOPPED")
    if ended == "TIMEOUT":
        return Outcome("TIMEOUT")
    if returncode == 0:
        return Outcome("SUCCEEDED")
    return Outcome("FAILED", error_message(list(stdout_lines), list(stderr_lines), returncode))


def _kill(process: subprocess.Popen[str]) -> None:
    # The script's session: the python driver and the JVM pyspark started under it.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
