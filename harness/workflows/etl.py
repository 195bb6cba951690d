"""Run the deployed Glue job on this machine: the hop the AWS emulator does not perform.

moto stores the Glue job (script location, default arguments, connection) and accepts `StartJobRun`, but runs nothing
and reports every run SUCCEEDED. The harness does what Glue would do with the run:

1. `GetJob`, `StartJobRun`, `GetJobRun`: the run's arguments are exactly the job's default arguments (as the program
   set them) merged with the run's, as Glue merges them;
2. fetches the script from the scripts bucket (what was deployed, not the working tree's file);
3. resolves the job's Glue connection (`JDBC_CONNECTION_URL`, `SECRET_ID`) into the local-mode JDBC arguments;
4. runs the script with local Spark in a child process (MariaDB Connector/J on the classpath, `AWS_ENDPOINT_URL` set
   so its boto3 calls reach the emulator), turning its `stage ...` log lines into progress;
5. records the run's end state (`SUCCEEDED`, `FAILED` with the error, or `TIMEOUT`) under `<state dir>/etl/runs/`,
   because moto's own record cannot say it failed.

The script stages in `<state dir>/etl/staging/` and publishes to the data lake bucket in the emulator itself; the Spark
driver's log goes to `<state dir>/logs/etl-<run id>.log`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness.emulator import state as st
from harness.emulator.services import pid_alive

JobRunState = Literal["SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED"]
REGION = "us-east-1"
# moto accepts any credentials; these say plainly that they are not real ones.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
MARIADB_JDBC_JAR = Path("/usr/share/java/mariadb-java-client.jar")
MARIADB_JDBC_DRIVER = "org.mariadb.jdbc.Driver"
# Local Spark is sized for a laptop shared with the rest of the stack: two cores, a small driver, few shuffle tasks.
LOCAL_SPARK_CONF = {
    "spark.master": "local[2]",
    "spark.driver.memory": "1g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
}
STAGE_LINE = re.compile(r" ratings_etl stage (?P<stage>\w+): (?P<detail>.*)$")
SUMMARY_LINE = re.compile(r" ratings_etl summary (?P<json>\{.*\})$")
STOPPED_LINE = re.compile(r" ratings_etl ratings ETL stopped: (?P<message>.*)$")
EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception)(?::|$).*")
USAGE_ERROR_LINE = re.compile(r"^\S+\.py: error: .*")  # argparse: a missing or malformed job argument


class EtlError(RuntimeError):
    """A user-facing problem running the ETL locally: printed as one message, no traceback."""


@dataclass(frozen=True)
class JobDefinition:
    name: str
    script_location: str
    connections: tuple[str, ...]
    timeout_minutes: int


@dataclass(frozen=True)
class SourceConnection:
    jdbc_url: str
    secret_id: str | None
    user: str | None
    password: str | None = field(repr=False)


@dataclass
class JobRunRecord:
    """What `aws glue get-job-run` would show for the run, plus the local run's summary and log."""

    Id: str
    JobName: str
    JobRunState: str
    StartedOn: str
    Arguments: dict[str, str]
    CompletedOn: str | None = None
    ExecutionTime: int = 0
    ErrorMessage: str | None = None
    Summary: dict[str, Any] | None = None
    LogPath: str | None = None
    HarnessPid: int | None = None  # the process that runs it; a RUNNING record whose process is gone never finished

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------------------
# pure parts


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[len("s3://") :]:
        raise EtlError(f"the job's script location {uri!r} is not an s3://bucket/key URI; redeploy with "
                       "`python -m harness up`")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def job_definition(get_job_response: Mapping[str, Any]) -> JobDefinition:
    job = get_job_response["Job"]
    return JobDefinition(
        name=job["Name"],
        script_location=job["Command"]["ScriptLocation"],
        connections=tuple(job.get("Connections", {}).get("Connections", [])),
        timeout_minutes=int(job.get("Timeout") or 2880),  # Glue's default timeout is 48 hours
    )


def source_connection(get_connection_response: Mapping[str, Any]) -> SourceConnection:
    """The JDBC URL and credentials of a Glue JDBC connection: a `SECRET_ID`, or `USERNAME`/`PASSWORD` properties."""
    connection = get_connection_response["Connection"]
    props = connection.get("ConnectionProperties", {})
    url = props.get("JDBC_CONNECTION_URL")
    if not url:
        raise EtlError(f"Glue connection {connection.get('Name')!r} has no JDBC_CONNECTION_URL; redeploy with "
                       "`python -m harness up`")
    if not props.get("SECRET_ID") and not props.get("PASSWORD"):
        raise EtlError(f"Glue connection {connection.get('Name')!r} has neither SECRET_ID nor USERNAME/PASSWORD: "
                       "the job could not log in to the source database")
    return SourceConnection(url, props.get("SECRET_ID") or None, props.get("USERNAME"), props.get("PASSWORD"))


def local_arguments(run_arguments: Mapping[str, str], job_name: str, run_id: str, source: SourceConnection,
                    local_output: Path) -> list[str]:
    """The script's argv after its path: Glue's own (`--JOB_NAME`, `--JOB_RUN_ID`), the run's, then local mode's.

    The password is never on the command line (other users can read it in `ps`): the script reads it from the secret,
    or, for a connection with a plaintext PASSWORD property, from the environment (`child_environment`).
    """
    argv = ["--JOB_NAME", job_name, "--JOB_RUN_ID", run_id]
    for name, value in sorted(run_arguments.items()):
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


def error_message(stdout_lines: Sequence[str], log_text: str, returncode: int) -> str:
    """The one line a user needs: the script's own stop message, else the last exception line of the driver log."""
    for line in reversed(stdout_lines):
        if match := STOPPED_LINE.search(line):
            return match["message"]
    for line in reversed(log_text.splitlines()):
        if USAGE_ERROR_LINE.match(line.strip()):
            return f"bad job arguments: {line.strip()}"
        if EXCEPTION_LINE.match(line.strip()):
            return line.strip()[:2000]
    return f"the job script exited with status {returncode}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------------------------------
# the run


@dataclass(frozen=True)
class AwsEndpoint:
    endpoint_url: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def child_environment(endpoint: AwsEndpoint, source: SourceConnection) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYSPARK_", "SPARK_"))}
    env.update(DUMMY_CREDENTIALS)
    env.update({
        "AWS_ENDPOINT_URL": endpoint.endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "PYSPARK_SUBMIT_ARGS": spark_submit_args(MARIADB_JDBC_JAR, LOCAL_SPARK_CONF),
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    })
    if source.password is not None and not source.secret_id:
        env["RATINGS_ETL_JDBC_PASSWORD"] = source.password
    return env


def runs_dir(state_dir: Path) -> Path:
    return state_dir / "etl" / "runs"


def save_record(state_dir: Path, record: JobRunRecord) -> Path:
    directory = runs_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record.Id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.as_dict(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def reconcile(record: JobRunRecord) -> JobRunRecord:
    """A run still RUNNING on disk whose harness process is gone was killed before it could record its end."""
    if record.JobRunState == "RUNNING" and record.HarnessPid is not None and not pid_alive(record.HarnessPid):
        record.JobRunState = "FAILED"
        record.ErrorMessage = (f"the harness process (pid {record.HarnessPid}) that ran this job exited without "
                               f"recording an end state (killed?); see {record.LogPath}")
    return record


def _read_record(path: Path) -> JobRunRecord:
    return reconcile(JobRunRecord(**json.loads(path.read_text())))


def load_record(state_dir: Path, run_id: str | None = None) -> JobRunRecord:
    """A recorded run by id or unique id prefix (`etl runs` shows short ids); the latest when `run_id` is None."""
    directory = runs_dir(state_dir)
    paths = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime) if directory.is_dir() else []
    if run_id is None:
        if not paths:
            raise EtlError(f"no ETL run recorded in {directory}; run `python -m harness etl run`")
        return _read_record(paths[-1])
    matches = [p for p in paths if p.stem == run_id] or [p for p in paths if p.stem.startswith(run_id)]
    if not matches:
        raise EtlError(f"no ETL run {run_id!r} recorded in {directory} (`python -m harness etl runs` lists them)")
    if len(matches) > 1:
        raise EtlError(f"{run_id!r} matches {len(matches)} runs; give more of the id")
    return _read_record(matches[0])


def list_records(state_dir: Path) -> list[JobRunRecord]:
    directory = runs_dir(state_dir)
    paths = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime) if directory.is_dir() else []
    return [_read_record(p) for p in paths]


@contextlib.contextmanager
def single_run(state_dir: Path) -> Iterator[None]:
    """One local run at a time per stack (the job's MaxConcurrentRuns is 1, as on Glue)."""
    lock_path = state_dir / "etl" / "run.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EtlError(f"another ETL run of this stack is in progress (lock {lock_path}); wait for it to "
                           "finish") from None
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


ProgressCallback = Callable[[str, str], None]


def run_job(endpoint: AwsEndpoint, job_name: str, state_dir: Path, *, on_stage: ProgressCallback | None = None,
            arguments: Mapping[str, str] | None = None) -> JobRunRecord:
    """Start `job_name` through the emulator's Glue API and execute it locally; returns the recorded end state.

    Never raises for a failed job run (that is a FAILED record, as on Glue); raises EtlError when the run cannot be
    started at all (no job, no script, no connection).
    """
    if not MARIADB_JDBC_JAR.is_file():
        raise EtlError(f"MariaDB Connector/J is missing ({MARIADB_JDBC_JAR}); run `make bootstrap` "
                       "(apt-get install libmariadb-java)")
    glue, s3 = endpoint.client("glue"), endpoint.client("s3")
    try:
        job = job_definition(glue.get_job(JobName=job_name))
    except glue.exceptions.EntityNotFoundException:
        raise EtlError(f"Glue job {job_name!r} does not exist in the local stack; run `python -m harness up`") from None
    if not job.connections:
        raise EtlError(f"Glue job {job_name!r} has no connection: it cannot reach the source database")
    source = source_connection(glue.get_connection(Name=job.connections[0], HidePassword=False))
    script_bucket, script_key = parse_s3_uri(job.script_location)
    work = state_dir / "etl"
    script_path = work / "scripts" / Path(script_key).name
    script_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        s3.download_file(script_bucket, script_key, str(script_path))
    except Exception as err:  # botocore raises ClientError for a missing key, others for a missing bucket
        raise EtlError(f"cannot fetch the job's script {job.script_location}: {err}; redeploy with "
                       "`python -m harness up`") from None

    with single_run(state_dir):
        run_id = glue.start_job_run(JobName=job_name, Arguments=dict(arguments or {}))["JobRunId"]
        run_arguments = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"].get("Arguments", {})
        log_path = st.logs_dir(state_dir) / f"etl-{run_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        record = JobRunRecord(Id=run_id, JobName=job_name, JobRunState="RUNNING", StartedOn=_now(),
                              Arguments=dict(run_arguments), LogPath=str(log_path), HarnessPid=os.getpid())
        save_record(state_dir, record)
        argv = [sys.executable, str(script_path),
                *local_arguments(run_arguments, job_name, run_id, source, work / "staging")]
        spark_work = work / "spark"
        spark_work.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            state, error, summary = _execute(argv, child_environment(endpoint, source), spark_work, log_path,
                                             job.timeout_minutes * 60, on_stage)
        except KeyboardInterrupt:
            # The child is already killed (_execute's finally); the record must not say RUNNING forever.
            record.JobRunState, record.ErrorMessage = "STOPPED", "stopped by the user (Ctrl-C)"
            record.CompletedOn, record.ExecutionTime = _now(), int(time.monotonic() - started)
            save_record(state_dir, record)
            raise
        record.JobRunState = state
        record.ErrorMessage = error
        record.Summary = summary
        record.CompletedOn = _now()
        record.ExecutionTime = int(time.monotonic() - started)
        save_record(state_dir, record)
    return record


def _execute(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout_s: float,
             on_stage: ProgressCallback | None) -> tuple[JobRunState, str | None, dict[str, Any] | None]:
    stdout_lines: list[str] = []
    summary: dict[str, Any] | None = None
    with open(log_path, "w") as log:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                                   start_new_session=True)
        expired = threading.Event()

        def kill_on_timeout() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout_s, kill_on_timeout)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip("\n")
                stdout_lines.append(line)
                log.write(line + "\n")
                log.flush()
                if (match := STAGE_LINE.search(line)) and on_stage is not None:
                    on_stage(match["stage"], match["detail"])
                elif match := SUMMARY_LINE.search(line):
                    summary = json.loads(match["json"])
            returncode = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
    if expired.is_set():
        return "TIMEOUT", f"the job ran longer than its timeout ({timeout_s / 60:.0f} minutes)", None
    if returncode == 0 and summary is not None:
        return "SUCCEEDED", None, summary
    return "FAILED", error_message(stdout_lines, log_path.read_text(errors="replace"), returncode), None


# ---------------------------------------------------------------------------------------------------------------------
# the local stack


def stack_endpoint(state_dir: Path) -> tuple[AwsEndpoint, str]:
    """The emulator's endpoint and the deployed job's name, from state.json."""
    state = st.load_state(state_dir)
    try:
        moto = state["services"]["moto"]
        endpoint = AwsEndpoint(f"http://{moto['host']}:{moto['port']}")
        job_name = state["outputs"]["glue_job_name"]["value"]
    except (KeyError, TypeError) as missing:
        raise EtlError(f"no deployed local stack in {state_dir} (state.json lacks {missing}); run "
                       "`python -m harness up` (and `python -m harness seed`) first") from None
    return endpoint, str(job_name)


def run_etl(state_dir: Path, *, on_stage: ProgressCallback | None = None) -> dict[str, Any]:
    """Run the stack's Glue job locally; the summary for the demo: rows, partitions, prefix, counts, run_id.

    Raises EtlError with the run's error message when the run did not succeed.
    """
    endpoint, job_name = stack_endpoint(state_dir)
    record = run_job(endpoint, job_name, state_dir, on_stage=on_stage)
    if record.JobRunState != "SUCCEEDED" or record.Summary is None:
        raise EtlError(f"ETL run {record.Id} {record.JobRunState}: {record.ErrorMessage} (log: {record.LogPath})")
    return {**record.Summary, "run_id": record.Id, "execution_time_s": record.ExecutionTime}
