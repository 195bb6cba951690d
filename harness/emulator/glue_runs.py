"""Glue job runs behind Glue's own API: `StartJobRun` executes the deployed script on local Spark.

moto stores Glue jobs, connections and triggers but runs nothing, and its `GetJobRun` says SUCCEEDED for every run.
The control plane answers the four job-run operations itself with this service (requests with
`X-Amz-Target: AWSGlue.<operation>`, AWS JSON 1.1), and forwards every other Glue call to moto:

- `StartJobRun` reads the job from moto (`GetJob`), refuses a job that does not exist (EntityNotFoundException) or one
  already at its `MaxConcurrentRuns` (ConcurrentRunsExceededException), returns the run id at once and executes the
  run in the background (`harness.emulator.glue_spark`: the connection, the script from S3, local Spark);
- `GetJobRun` / `GetJobRuns` report the run as Glue does: RUNNING, then SUCCEEDED, FAILED with the script's own error,
  TIMEOUT or STOPPED; StartedOn, LastModifiedOn, CompletedOn, ExecutionTime, Arguments (the run's own, as passed to
  StartJobRun or by the trigger), Attempt, TriggerName;
- `BatchStopJobRun` kills a running run's process group: STOPPING, then STOPPED.

Runs are files under `<state>/daemon/glue/runs/`, read on every call, so a restarted control plane still answers. A
run whose executing process died (the control plane was killed or restarted) is FAILED with a message that says so,
never RUNNING forever, and its orphaned Spark process is killed. The script's output is in CloudWatch Logs in the
emulator (`/aws-glue/jobs/output`, `/aws-glue/jobs/error`, stream = run id) and in `<state>/logs/glue-<run id>.log`.

Not implemented (the program uses none of it): retries (`MaxRetries`; the program sets 0), `PredecessorRuns` (always
empty), job bookmarks, workflows, execution classes, `JobRunQueuingEnabled` (a run beyond MaxConcurrentRuns is refused,
as Glue does without queuing).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.emulator import glue_spark as spark
from harness.emulator.endpoints import ACCESS_KEY_ID, SECRET_ACCESS_KEY

OPERATIONS = frozenset({"StartJobRun", "GetJobRun", "GetJobRuns", "BatchStopJobRun"})
ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
MAX_JOB_NAME = 255
MAX_RESULTS = 200  # GetJobRuns' MaxResults range is 1-200
MAX_STOP_IDS = 25  # BatchStopJobRun takes at most 25 run ids
TIMEOUT_UNIT_S = 60.0  # a run's Timeout is in minutes (tests shorten the minute)
# Instances of the service alive in this process: a record owned by this pid but by a closed instance is orphaned.
_LIVE_INSTANCES: set[str] = set()


class GlueApiError(Exception):
    """An error Glue's API returns: HTTP status, the AWS JSON 1.1 `__type`, and the message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": str(self)}


def invalid(message: str) -> GlueApiError:
    return GlueApiError("InvalidInputException", message)


# ---------------------------------------------------------------------------------------------------------------------
# request validation (pure)


def job_name_of(body: Mapping[str, Any]) -> str:
    name = body.get("JobName")
    if not isinstance(name, str) or not name:
        raise invalid("JobName is required: the name of the job definition to run")
    if len(name) > MAX_JOB_NAME:
        raise invalid(f"JobName is longer than {MAX_JOB_NAME} characters")
    return name


def arguments_of(body: Mapping[str, Any]) -> dict[str, str]:
    arguments = body.get("Arguments")
    if arguments is None:
        return {}
    if not isinstance(arguments, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in arguments.items()):
        raise invalid("Arguments must be a map of strings to strings, such as {\"--target_path\": \"s3://...\"}")
    return dict(arguments)


def timeout_of(body: Mapping[str, Any], job_timeout: int) -> int:
    timeout = body.get("Timeout")
    if timeout is None:
        return job_timeout
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise invalid(f"Timeout must be a positive number of minutes, not {timeout!r}")
    return timeout


def page_of(body: Mapping[str, Any]) -> tuple[int, int]:
    """(offset, page size) from GetJobRuns' NextToken and MaxResults."""
    size = body.get("MaxResults", MAX_RESULTS)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_RESULTS:
        raise invalid(f"MaxResults must be between 1 and {MAX_RESULTS}, not {size!r}")
    token = body.get("NextToken")
    if token is None:
        return 0, size
    try:
        offset = int(base64.urlsafe_b64decode(str(token).encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("NextToken is not a token this API returned") from None
    if offset < 0:
        raise invalid("NextToken is not a token this API returned")
    return offset, size


def next_token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def new_run_id() -> str:
    return "jr_" + secrets.token_hex(32)


def api_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """The run as Glue's JobRun shape: the record without the service's own bookkeeping (keys starting with `_`)."""
    return {key: value for key, value in record.items() if not key.startswith("_") and value is not None}


# ---------------------------------------------------------------------------------------------------------------------
# the service


class GlueRunService:
    """Glue's job-run API over moto's job definitions; runs execute on local Spark. Thread-safe."""

    def __init__(self, state_dir: Path, moto_url: str, region: str) -> None:
        self.state_dir = state_dir
        self.moto_url = moto_url
        self.region = region
        self.root = state_dir / "daemon" / "glue"
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self._instance = uuid.uuid4().hex
        self._pid_ticks = spark.process_start_ticks(os.getpid())
        _LIVE_INSTANCES.add(self._instance)
        self._lock = threading.RLock()
        self._controls: dict[str, spark.RunControl] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._clients: dict[str, Any] = {}
        self._closed = False
        for record in self._all_records():  # reconcile runs a previous control plane left behind
            self._reconciled(record)

    # -- the API ------------------------------------------------------------------------------------------------------

    def call(self, operation: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """One Glue API call: (HTTP status, JSON body) exactly as Glue answers, errors in AWS JSON 1.1's shape."""
        handlers = {"StartJobRun": self._start_job_run, "GetJobRun": self._get_job_run,
                    "GetJobRuns": self._get_job_runs, "BatchStopJobRun": self._batch_stop_job_run}
        handler = handlers.get(operation)
        if handler is None:
            return 400, GlueApiError("UnknownOperationException", f"{operation} is not a job-run operation").body()
        if not isinstance(body, Mapping):
            return 400, invalid("the request body must be a JSON object").body()
        try:
            return 200, handler(body)
        except GlueApiError as err:
            return err.status, err.body()

    def start_job_run(self, job_name: str, arguments: Mapping[str, str] | None = None, *,
                      trigger_name: str | None = None) -> str:
        """Start a run as `StartJobRun` does (a schedule passes its trigger's name); the run id. Raises GlueApiError."""
        body: dict[str, Any] = {"JobName": job_name, "Arguments": dict(arguments or {})}
        return str(self._start(body, trigger_name=trigger_name)["JobRunId"])

    def wait_for(self, job_name: str, run_id: str, timeout_s: float = 4 * 3600.0) -> dict[str, Any]:
        """The run (GetJobRun's JobRun) once it ended: for callers in this process without an HTTP endpoint (the
        batch benchmark). Raises GlueApiError for an unknown run, TimeoutError past `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            status, body = self.call("GetJobRun", {"JobName": job_name, "RunId": run_id})
            if status != 200:
                raise GlueApiError(body["__type"], body["message"], status)
            if body["JobRun"]["JobRunState"] not in ACTIVE_STATES:
                return dict(body["JobRun"])
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Glue job run {run_id} still {body['JobRun']['JobRunState']} after {timeout_s} s")
            time.sleep(0.2)

    def close(self) -> None:
        """Stop executing: running runs are killed and end FAILED saying the control plane stopped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            controls = dict(self._controls)
            threads = list(self._threads.values())
        for control in controls.values():
            control.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        _LIVE_INSTANCES.discard(self._instance)
        for client in self._clients.values():
            client.close()

    # -- operations ---------------------------------------------------------------------------------------------------

    def _start_job_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._start(body, trigger_name=None)

    def _start(self, body: Mapping[str, Any], *, trigger_name: str | None) -> dict[str, Any]:
        name = job_name_of(body)
        arguments = arguments_of(body)
        job = self._job(name)
        timeout = timeout_of(body, job.timeout_minutes)
        previous = body.get("JobRunId")
        if previous is not None and not isinstance(previous, str):
            raise invalid("JobRunId must be the id of a previous run of this job")
        with self._lock, self._file_lock():
            if self._closed:
                raise GlueApiError("InternalServiceException", "the local Glue service is shutting down", 500)
            active = [r for r in self._all_records() if r["JobName"] == name and r["JobRunState"] in ACTIVE_STATES]
            if len(active) >= job.max_concurrent_runs:
                raise GlueApiError("ConcurrentRunsExceededException",
                                   f"Concurrent runs exceeded for {name}: {len(active)} of at most "
                                   f"{job.max_concurrent_runs} running ({active[0]['Id']})")
            now = time.time()
            run_id = new_run_id()
            record: dict[str, Any] = {
                "Id": run_id, "Attempt": 0, "PreviousRunId": previous, "TriggerName": trigger_name, "JobName": name,
                "StartedOn": now, "LastModifiedOn": now, "CompletedOn": None, "JobRunState": "RUNNING",
                "Arguments": arguments, "ErrorMessage": None, "PredecessorRuns": [], "ExecutionTime": 0,
                "Timeout": timeout, "MaxCapacity": job.max_capacity, "WorkerType": job.worker_type,
                "NumberOfWorkers": job.number_of_workers, "LogGroupName": spark.LOG_GROUP,
                "GlueVersion": job.glue_version,
                "_executor": {"pid": os.getpid(), "start": self._pid_ticks, "instance": self._instance},
                "_child": None,
                "_log_file": str(self.state_dir / "logs" / f"glue-{run_id}.log"),
            }
            self._save(record)
            control = spark.RunControl()
            thread = threading.Thread(target=self._execute, args=(record, job, control), name=f"glue-{run_id[:11]}",
                                      daemon=True)
            self._controls[run_id] = control
            self._threads[run_id] = thread
        thread.start()
        return {"JobRunId": run_id}

    def _get_job_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = job_name_of(body)
        run_id = body.get("RunId")
        if not isinstance(run_id, str) or not run_id:
            raise invalid("RunId is required: the id StartJobRun returned")
        record = self._load(run_id)
        if record is None or record["JobName"] != name:
            self._job(name)  # a missing job is named as such
            raise GlueApiError("EntityNotFoundException", f"Job run {run_id} not found.")
        return {"JobRun": api_view(record)}

    def _get_job_runs(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = job_name_of(body)
        offset, size = page_of(body)
        runs = [r for r in self._all_records() if r["JobName"] == name]
        if not runs:
            self._job(name)
        runs.sort(key=lambda r: (r["StartedOn"], r["Id"]), reverse=True)  # newest first, as Glue lists them
        page = runs[offset:offset + size]
        response: dict[str, Any] = {"JobRuns": [api_view(r) for r in page]}
        if offset + size < len(runs):
            response["NextToken"] = next_token(offset + size)
        return response

    def _batch_stop_job_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = job_name_of(body)
        run_ids = body.get("JobRunIds")
        if (not isinstance(run_ids, list) or not run_ids or len(run_ids) > MAX_STOP_IDS
                or not all(isinstance(i, str) and i for i in run_ids)):
            raise invalid(f"JobRunIds must list 1 to {MAX_STOP_IDS} run ids")
        succeeded: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        for run_id in run_ids:
            with self._lock:
                record = self._load(run_id)
                if record is None or record["JobName"] != name:
                    errors.append(_stop_error(name, run_id, "EntityNotFoundException", f"Job run {run_id} not found."))
                    continue
                if record["JobRunState"] not in ACTIVE_STATES:
                    errors.append(_stop_error(name, run_id, "InvalidInputException",
                                              f"Job run {run_id} is already {record['JobRunState']}"))
                    continue
                if record["JobRunState"] != "STOPPING":
                    self._update(record, JobRunState="STOPPING")
                control = self._controls.get(run_id)
            if control is not None:
                control.stop.set()
            succeeded.append({"JobName": name, "JobRunId": run_id})
        return {"SuccessfulSubmissions": succeeded, "Errors": errors}

    # -- execution ----------------------------------------------------------------------------------------------------

    def _execute(self, record: dict[str, Any], job: spark.JobDefinition, control: spark.RunControl) -> None:
        run_id = record["Id"]
        log_path = Path(record["_log_file"])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log_path, "w", encoding="utf-8") as log_file:
                logs = spark.RunLogs(self._client("logs"), run_id, log_file)
                try:
                    argv, env = self._prepare(record, job)
                except spark.RunSetupError as err:
                    logs.write(spark.ERROR_LOG_GROUP, f"[harness] the run could not start: {err}")
                    logs.flush()
                    outcome = spark.Outcome("FAILED", str(err))
                else:
                    work = self.root / "spark"
                    work.mkdir(parents=True, exist_ok=True)
                    outcome = spark.execute(argv, env, work, logs, record["Timeout"] * TIMEOUT_UNIT_S, control,
                                            on_child=lambda pid, ticks: self._child_started(run_id, pid, ticks))
        except Exception as err:  # noqa: BLE001 - whatever broke, the run must not stay RUNNING
            outcome = spark.Outcome("FAILED", f"the local Glue executor failed: {type(err).__name__}: {err}")
        if outcome.state == "TIMEOUT":
            outcome = spark.Outcome("TIMEOUT", f"the run exceeded its timeout of {record['Timeout']} minutes and was "
                                               "stopped")
        if control.stop.is_set() and outcome.state == "STOPPED" and self._closed:
            outcome = spark.Outcome("FAILED", "the local control plane stopped while this run was executing "
                                              "(`harness down` or a restart); start the run again")
        with self._lock:
            current = self._load(run_id) or record
            if current["JobRunState"] in ACTIVE_STATES:
                self._finish(current, outcome.state, outcome.error)
            self._controls.pop(run_id, None)
            self._threads.pop(run_id, None)

    def _prepare(self, record: Mapping[str, Any], job: spark.JobDefinition) -> tuple[list[str], dict[str, str]]:
        """The child's argv and environment: the connection resolved, the deployed script fetched from S3."""
        if not spark.MARIADB_JDBC_JAR.is_file():
            raise spark.RunSetupError(f"MariaDB Connector/J is missing ({spark.MARIADB_JDBC_JAR}); run `make "
                                      "bootstrap` (apt-get install libmariadb-java)")
        if not job.connections:
            raise spark.RunSetupError(f"Glue job {job.name!r} has no connection: it cannot reach the source database")
        glue = self._client("glue")
        try:
            connection = glue.get_connection(Name=job.connections[0], HidePassword=False)
        except Exception as err:  # noqa: BLE001 - botocore's ClientError for a missing connection, others
            raise spark.RunSetupError(f"cannot read the job's connection {job.connections[0]!r}: {err}") from None
        source = spark.source_connection(connection)
        bucket, key = spark.parse_s3_uri(job.script_location)
        script = self.root / "scripts" / record["Id"] / Path(key).name
        script.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._client("s3").download_file(bucket, key, str(script))
        except Exception as err:  # noqa: BLE001 - a missing key or bucket
            raise spark.RunSetupError(f"cannot fetch the job's script {job.script_location}: {err}") from None
        arguments = spark.effective_arguments(job, record["Arguments"])
        staging = self.root / "staging"
        argv = [sys.executable, str(script),
                *spark.local_arguments(arguments, job.name, record["Id"], source, staging)]
        return argv, spark.child_environment(self.moto_url, self.region, source)

    def _child_started(self, run_id: str, pid: int, ticks: int | None) -> None:
        with self._lock:
            record = self._load(run_id)
            if record is not None:
                record["_child"] = {"pid": pid, "start": ticks}
                self._save(record)

    def _finish(self, record: dict[str, Any], state: str, error: str | None) -> None:
        now = time.time()
        self._update(record, JobRunState=state, ErrorMessage=error, CompletedOn=now,
                     ExecutionTime=int(round(now - float(record["StartedOn"]))))

    def _update(self, record: dict[str, Any], **changes: Any) -> None:
        record.update(changes, LastModifiedOn=time.time())
        self._save(record)

    # -- records ------------------------------------------------------------------------------------------------------

    def _reconciled(self, record: dict[str, Any]) -> dict[str, Any]:
        """A run still active on disk whose executing process is gone ended when that process died: FAILED."""
        if record["JobRunState"] not in ACTIVE_STATES or self._executor_alive(record.get("_executor") or {}):
            return record
        with self._lock:
            executor = record.get("_executor") or {}
            child = record.get("_child") or {}
            killed = bool(child) and spark.kill_group(int(child["pid"]), child.get("start"))
            self._finish(record, "FAILED",
                         f"the local control plane (pid {executor.get('pid')}) that executed this run exited before "
                         f"the run ended (killed or restarted){'; its Spark process was stopped' if killed else ''}; "
                         f"start the run again (log: {record.get('_log_file')})")
        return record

    def _executor_alive(self, executor: Mapping[str, Any]) -> bool:
        pid = executor.get("pid")
        if pid == os.getpid():
            return executor.get("instance") in _LIVE_INSTANCES
        start = executor.get("start")
        return isinstance(pid, int) and start is not None and spark.process_start_ticks(pid) == start

    def _path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def _load(self, run_id: str) -> dict[str, Any] | None:
        if "/" in run_id or run_id.startswith("."):
            return None
        try:
            record: dict[str, Any] = json.loads(self._path(run_id).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return self._reconciled(record)

    def _all_records(self) -> list[dict[str, Any]]:
        records = []
        for path in self.runs_dir.glob("jr_*.json"):
            record = self._load(path.stem)
            if record is not None:
                records.append(record)
        return records

    def _save(self, record: Mapping[str, Any]) -> None:
        path = self._path(str(record["Id"]))
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        # Two services on one state dir (a control plane restarting while the old one exits) count runs together.
        with open(self.root / "start.lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    # -- moto ---------------------------------------------------------------------------------------------------------

    def _job(self, name: str) -> spark.JobDefinition:
        glue = self._client("glue")
        try:
            return spark.job_definition(glue.get_job(JobName=name))
        except glue.exceptions.EntityNotFoundException:
            raise GlueApiError("EntityNotFoundException", f"Job {name} not found.") from None

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                import boto3

                self._clients[service] = boto3.client(
                    service, endpoint_url=self.moto_url, region_name=self.region, aws_access_key_id=ACCESS_KEY_ID,
                    aws_secret_access_key=SECRET_ACCESS_KEY)
            return self._clients[service]


def _stop_error(job_name: str, run_id: str, code: str, message: str) -> dict[str, Any]:
    return {"JobName": job_name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}
