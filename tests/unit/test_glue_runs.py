"""Glue job runs behind Glue's API (`harness.emulator.glue_runs`): a moto server holds the job, connection and script;
the service executes the script as Glue would and reports the run's real state, timings, error and logs.

The deployed "script" here is a small Python program (no Spark) whose behaviour the run's arguments choose, so every
end state is reached in a second; tests/integration/test_etl.py runs the real Glue script on Spark through the same API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from harness.emulator import glue_runs, glue_spark
from harness.emulator.glue_runs import GlueRunService
from harness.emulator.services import MotoService

REGION = "us-east-1"
# The fake job: prints like the ratings ETL, then ends as `--mode` says; `--gate FILE` holds it until FILE exists.
FAKE_SCRIPT = textwrap.dedent('''
    import json, os, sys, time
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    if args.get("--seen"):
        with open(args["--seen"], "w") as f:
            json.dump({"argv": sys.argv[1:], "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                       "password": os.environ.get("RATINGS_ETL_JDBC_PASSWORD")}, f)
    print("2026-01-01 00:00:00,000 INFO ratings_etl stage read: reading customers", flush=True)
    print("spark says hello on stderr", file=sys.stderr, flush=True)
    gate = args.get("--gate")
    while gate and not os.path.exists(gate):
        time.sleep(0.05)
    mode = args.get("--mode", "succeed")
    if mode == "fail":
        print("2026-01-01 00:00:01,000 ERROR ratings_etl ratings ETL stopped: cannot read source table 'customers': "
              "Access denied", flush=True)
        sys.exit(1)
    if mode == "crash":
        raise ValueError("the data is not what the job expected")
    if mode == "forever":
        time.sleep(3600)
    print('2026-01-01 00:00:02,000 INFO ratings_etl summary {"rows": 3}', flush=True)
''')


@dataclass(frozen=True)
class Deployed:
    service: GlueRunService
    job: str
    glue: Any
    logs: Any
    s3: Any
    scripts: str
    state_dir: Path

    def start(self, **arguments: str) -> str:
        status, body = self.service.call("StartJobRun", {"JobName": self.job, "Arguments": arguments})
        assert status == 200, body
        return str(body["JobRunId"])

    def run(self, run_id: str) -> dict[str, Any]:
        status, body = self.service.call("GetJobRun", {"JobName": self.job, "RunId": run_id})
        assert status == 200, body
        return dict(body["JobRun"])

    def wait(self, run_id: str, until: Callable[[dict[str, Any]], bool] | None = None,
             timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.run(run_id)
            done = until(run) if until else run["JobRunState"] not in glue_runs.ACTIVE_STATES
            if done:
                return run
            assert time.monotonic() < deadline, f"run still {run['JobRunState']}"
            time.sleep(0.05)


def client(moto: MotoService, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def create_job(moto: MotoService, tmp_path: Path, **job: Any) -> tuple[str, str]:
    """A job as the program deploys it (script in a bucket, a JDBC connection by SECRET_ID, default arguments)."""
    suffix = uuid.uuid4().hex[:8]
    s3, glue = client(moto, "s3"), client(moto, "glue")
    scripts = f"scripts-{suffix}"
    s3.create_bucket(Bucket=scripts)
    s3.put_object(Bucket=scripts, Key="glue/fake_job.py", Body=FAKE_SCRIPT.encode())
    connection = f"source-{suffix}"
    glue.create_connection(ConnectionInput={"Name": connection, "ConnectionType": "JDBC", "ConnectionProperties": {
        "JDBC_CONNECTION_URL": "jdbc:mysql://127.0.0.1:3306/classicmodels", "SECRET_ID": f"secret-{suffix}"}})
    name = f"job-{suffix}"
    glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue", GlueVersion="5.0", Timeout=30,
                    Command={"Name": "glueetl", "ScriptLocation": f"s3://{scripts}/glue/fake_job.py"},
                    Connections={"Connections": [connection]},
                    DefaultArguments={"--target_path": "s3://lake/ratings-ml-training/", "--mode": "succeed"},
                    **job)
    return name, scripts


@pytest.fixture
def deployed(moto_service: MotoService, tmp_path: Path) -> Iterator[Deployed]:
    name, scripts = create_job(moto_service, tmp_path)
    service = GlueRunService(tmp_path / "state", moto_service.endpoint_url, REGION)
    yield Deployed(service, name, client(moto_service, "glue"), client(moto_service, "logs"),
                   client(moto_service, "s3"), scripts, tmp_path / "state")
    service.close()


def child_pid(deployed: Deployed, run_id: str) -> int:
    """The job process's pid, once the service recorded it."""
    path = deployed.state_dir / "daemon" / "glue" / "runs" / f"{run_id}.json"
    deadline = time.monotonic() + 30
    while not (child := json.loads(path.read_text()).get("_child")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return int(child["pid"])


def log_lines(logs: Any, group: str, run_id: str) -> list[str]:
    events = logs.get_log_events(logGroupName=group, logStreamName=run_id, startFromHead=True)["events"]
    return [e["message"] for e in events]


def test_a_run_is_running_then_succeeded_with_its_timings_and_its_own_arguments(
    deployed: Deployed, tmp_path: Path
) -> None:
    gate, seen = tmp_path / "gate", tmp_path / "seen.json"

    run_id = deployed.start(**{"--gate": str(gate), "--seen": str(seen)})
    running = deployed.wait(run_id, until=lambda run: seen.exists())

    assert run_id.startswith("jr_") and len(run_id) == 67
    assert running["JobRunState"] == "RUNNING"
    assert "CompletedOn" not in running and "ErrorMessage" not in running
    gate.touch()
    run = deployed.wait(run_id)
    assert run["JobRunState"] == "SUCCEEDED"
    assert run["Id"] == run_id and run["JobName"] == deployed.job and run["Attempt"] == 0
    # GetJobRun shows the run's own arguments; the script got them merged over the job's defaults.
    assert run["Arguments"] == {"--gate": str(gate), "--seen": str(seen)}
    assert run["StartedOn"] <= run["LastModifiedOn"] and run["StartedOn"] <= run["CompletedOn"]
    assert run["ExecutionTime"] == round(run["CompletedOn"] - run["StartedOn"])
    assert (run["Timeout"], run["GlueVersion"], run["LogGroupName"]) == (30, "5.0", "/aws-glue/jobs")
    script = json.loads(seen.read_text())
    args = dict(zip(script["argv"][::2], script["argv"][1::2], strict=True))
    assert (args["--JOB_NAME"], args["--JOB_RUN_ID"]) == (deployed.job, run_id)
    assert args["--target_path"] == "s3://lake/ratings-ml-training/"
    assert args["--jdbc_url"] == "jdbc:mysql://127.0.0.1:3306/classicmodels"
    assert args["--jdbc_secret_id"].startswith("secret-")
    assert script["endpoint"] == deployed.service.moto_url and script["password"] is None


def test_the_scripts_stdout_and_stderr_are_in_cloudwatch_logs_in_the_runs_stream(deployed: Deployed) -> None:
    run_id = deployed.start()
    deployed.wait(run_id)

    output = log_lines(deployed.logs, "/aws-glue/jobs/output", run_id)
    assert output == ["2026-01-01 00:00:00,000 INFO ratings_etl stage read: reading customers",
                      '2026-01-01 00:00:02,000 INFO ratings_etl summary {"rows": 3}']
    assert log_lines(deployed.logs, "/aws-glue/jobs/error", run_id) == ["spark says hello on stderr"]
    local = (deployed.state_dir / "logs" / f"glue-{run_id}.log").read_text().splitlines()
    assert sorted(local) == sorted([*output, "spark says hello on stderr"])


def test_a_failed_run_says_the_scripts_own_reason(deployed: Deployed) -> None:
    run = deployed.wait(deployed.start(**{"--mode": "fail"}))

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "cannot read source table 'customers': Access denied"
    assert run["CompletedOn"] >= run["StartedOn"]


def test_an_exception_fails_the_run_with_its_last_line(deployed: Deployed) -> None:
    run = deployed.wait(deployed.start(**{"--mode": "crash"}))

    assert (run["JobRunState"], run["ErrorMessage"]) == ("FAILED", "ValueError: the data is not what the job expected")


def test_a_run_past_its_timeout_is_timeout(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(glue_runs, "TIMEOUT_UNIT_S", 0.02)  # a "minute" of 20 ms

    status, body = deployed.service.call("StartJobRun", {"JobName": deployed.job, "Timeout": 50,
                                                         "Arguments": {"--mode": "forever"}})
    run = deployed.wait(body["JobRunId"])

    assert status == 200
    assert (run["JobRunState"], run["Timeout"]) == ("TIMEOUT", 50)
    assert run["ErrorMessage"] == "the run exceeded its timeout of 50 minutes and was stopped"


def test_a_stopped_run_is_stopping_then_stopped_and_its_process_is_gone(deployed: Deployed, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    run_id = deployed.start(**{"--mode": "forever", "--seen": str(seen)})
    deployed.wait(run_id, until=lambda run: seen.exists())
    pid = child_pid(deployed, run_id)

    status, body = deployed.service.call("BatchStopJobRun", {"JobName": deployed.job, "JobRunIds": [run_id, "jr_x"]})

    assert status == 200
    assert body["SuccessfulSubmissions"] == [{"JobName": deployed.job, "JobRunId": run_id}]
    assert body["Errors"] == [{"JobName": deployed.job, "JobRunId": "jr_x", "ErrorDetail": {
        "ErrorCode": "EntityNotFoundException", "ErrorMessage": "Job run jr_x not found."}}]
    run = deployed.wait(run_id)
    assert run["JobRunState"] == "STOPPED" and "ErrorMessage" not in run
    assert glue_spark.process_start_ticks(pid) is None
    again = deployed.service.call("BatchStopJobRun", {"JobName": deployed.job, "JobRunIds": [run_id]})[1]
    assert again["Errors"][0]["ErrorDetail"] == {"ErrorCode": "InvalidInputException",
                                                 "ErrorMessage": f"Job run {run_id} is already STOPPED"}


def test_a_second_run_beyond_max_concurrent_runs_is_refused_until_the_first_ends(
    deployed: Deployed, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    first = deployed.start(**{"--gate": str(gate)})

    status, body = deployed.service.call("StartJobRun", {"JobName": deployed.job})

    assert status == 400
    assert body["__type"] == "ConcurrentRunsExceededException"
    assert body["message"] == f"Concurrent runs exceeded for {deployed.job}: 1 of at most 1 running ({first})"
    gate.touch()
    deployed.wait(first)
    assert deployed.wait(deployed.start())["JobRunState"] == "SUCCEEDED"


def test_a_job_allowing_two_runs_runs_two(moto_service: MotoService, tmp_path: Path) -> None:
    name, _ = create_job(moto_service, tmp_path, ExecutionProperty={"MaxConcurrentRuns": 2})
    service = GlueRunService(tmp_path / "state", moto_service.endpoint_url, REGION)
    gate = tmp_path / "gate"
    try:
        codes = [service.call("StartJobRun", {"JobName": name, "Arguments": {"--gate": str(gate)}})[0]
                 for _ in range(3)]
        gate.touch()
    finally:
        service.close()

    assert codes == [200, 200, 400]


def test_errors_have_glues_codes_and_aws_json_shape(deployed: Deployed) -> None:
    call = deployed.service.call

    assert call("StartJobRun", {"JobName": "no-such-job"}) == (
        400, {"__type": "EntityNotFoundException", "message": "Job no-such-job not found."})
    assert call("GetJobRun", {"JobName": deployed.job, "RunId": "jr_nope"}) == (
        400, {"__type": "EntityNotFoundException", "message": "Job run jr_nope not found."})
    assert call("GetJobRuns", {"JobName": "no-such-job"})[1]["__type"] == "EntityNotFoundException"
    for operation, body in (("StartJobRun", {}), ("StartJobRun", {"JobName": deployed.job, "Arguments": {"--a": 1}}),
                            ("StartJobRun", {"JobName": deployed.job, "Timeout": 0}),
                            ("GetJobRun", {"JobName": deployed.job}),
                            ("GetJobRuns", {"JobName": deployed.job, "MaxResults": 0}),
                            ("GetJobRuns", {"JobName": deployed.job, "NextToken": "%%"}),
                            ("BatchStopJobRun", {"JobName": deployed.job, "JobRunIds": []})):
        status, error = call(operation, body)
        assert (status, error["__type"]) == (400, "InvalidInputException"), (operation, body)
    assert call("StartJobRun", {"JobName": ""})[1]["message"] == (
        "JobName is required: the name of the job definition to run")
    assert call("GetJob", {"JobName": deployed.job})[1]["__type"] == "UnknownOperationException"


def test_runs_are_listed_newest_first_in_pages(deployed: Deployed) -> None:
    ids = []
    for _ in range(3):
        ids.append(deployed.start())
        deployed.wait(ids[-1])

    first = deployed.service.call("GetJobRuns", {"JobName": deployed.job, "MaxResults": 2})[1]
    rest = deployed.service.call("GetJobRuns", {"JobName": deployed.job, "MaxResults": 2,
                                                "NextToken": first["NextToken"]})[1]

    assert [r["Id"] for r in first["JobRuns"]] == ids[::-1][:2]
    assert [r["Id"] for r in rest["JobRuns"]] == ids[:1] and "NextToken" not in rest


def test_a_missing_script_fails_the_run_not_the_start(deployed: Deployed) -> None:
    deployed.s3.delete_object(Bucket=deployed.scripts, Key="glue/fake_job.py")

    run = deployed.wait(deployed.start())

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith(f"cannot fetch the job's script s3://{deployed.scripts}/glue/fake_job.py: ")


def test_runs_survive_a_new_service_and_close_ends_a_running_run_failed(deployed: Deployed, tmp_path: Path) -> None:
    done = deployed.wait(deployed.start())
    running = deployed.start(**{"--mode": "forever"})

    deployed.service.close()
    again = GlueRunService(deployed.state_dir, deployed.service.moto_url, REGION)
    try:
        assert again.call("GetJobRun", {"JobName": deployed.job, "RunId": done["Id"]})[1]["JobRun"] == done
        stopped = again.call("GetJobRun", {"JobName": deployed.job, "RunId": running})[1]["JobRun"]
    finally:
        again.close()
    assert stopped["JobRunState"] == "FAILED"
    assert stopped["ErrorMessage"] == ("the local control plane stopped while this run was executing (`harness down` "
                                       "or a restart); start the run again")


KILLED_SERVICE = """
import sys, time
from pathlib import Path
from harness.emulator.glue_runs import GlueRunService
service = GlueRunService(Path(sys.argv[1]), sys.argv[2], "us-east-1")
print(service.start_job_run(sys.argv[3], {"--mode": "forever", "--seen": sys.argv[4]}), flush=True)
time.sleep(600)
"""


def test_a_run_whose_control_plane_was_killed_is_failed_and_its_spark_process_stopped(
    deployed: Deployed, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.json"
    owner = subprocess.Popen([sys.executable, "-c", KILLED_SERVICE, str(deployed.state_dir),
                              deployed.service.moto_url, deployed.job, str(seen)], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    run_id = owner.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while not seen.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = child_pid(deployed, run_id)
    assert deployed.run(run_id)["JobRunState"] == "RUNNING"  # its owner is alive: this service leaves it alone

    owner.kill()
    owner.wait()
    run = deployed.run(run_id)

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith(f"the local control plane (pid {owner.pid}) that executed this run exited "
                                          "before the run ended (killed or restarted); its Spark process was stopped")
    deadline = time.monotonic() + 10
    while glue_spark.process_start_ticks(child) is not None:
        assert time.monotonic() < deadline, "the orphaned job process is still running"
        time.sleep(0.05)


def test_start_job_run_for_a_schedule_records_the_trigger(deployed: Deployed) -> None:
    run_id = deployed.service.start_job_run(deployed.job, {"--mode": "succeed"}, trigger_name="nightly")

    run = deployed.wait(run_id)

    assert (run["TriggerName"], run["Arguments"], run["JobRunState"]) == ("nightly", {"--mode": "succeed"},
                                                                          "SUCCEEDED")
    with pytest.raises(glue_runs.GlueApiError, match="Job no-such-job not found."):
        deployed.service.start_job_run("no-such-job")


# ---- the pure parts of the local execution -------------------------------------------------------------------------


def test_the_script_gets_glues_arguments_merged_then_local_jdbc_arguments_and_no_password() -> None:
    job = glue_spark.JobDefinition("etl-job", "s3://b/k.py", ("src",), 30,
                                   default_arguments={"--target_path": "s3://lake/a/", "--x": "default"},
                                   non_overridable_arguments={"--fixed": "1"})
    source = glue_spark.SourceConnection("jdbc:mysql://127.0.0.1:3306/classicmodels", None, "admin", "pa55word")

    arguments = glue_spark.effective_arguments(job, {"--x": "run", "--fixed": "2"})
    argv = glue_spark.local_arguments(arguments, "etl-job", "jr_1", source, Path("/state/staging"))

    assert arguments == {"--target_path": "s3://lake/a/", "--x": "run", "--fixed": "1"}
    assert argv[:4] == ["--JOB_NAME", "etl-job", "--JOB_RUN_ID", "jr_1"]
    pairs = dict(zip(argv[::2], argv[1::2], strict=True))
    assert (pairs["--jdbc_url"], pairs["--jdbc_user"], pairs["--local_output"]) == (
        "jdbc:mysql://127.0.0.1:3306/classicmodels", "admin", "/state/staging")
    assert "pa55word" not in " ".join(argv) and "--jdbc_password" not in argv


def test_a_plaintext_connection_password_travels_in_the_environment_only() -> None:
    source = glue_spark.SourceConnection("jdbc:mysql://h/db", None, "admin", "pa55word")

    env = glue_spark.child_environment("http://127.0.0.1:5000", "eu-west-1", source,
                                       base={"PATH": "/bin", "AWS_PROFILE": "real", "SPARK_HOME": "/x"})

    assert env["RATINGS_ETL_JDBC_PASSWORD"] == "pa55word"
    assert (env["AWS_ENDPOINT_URL"], env["AWS_DEFAULT_REGION"], env["PATH"]) == (
        "http://127.0.0.1:5000", "eu-west-1", "/bin")
    assert "AWS_PROFILE" not in env and "SPARK_HOME" not in env
    assert "mariadb-java-client.jar" in env["PYSPARK_SUBMIT_ARGS"]
    assert env["PYSPARK_SUBMIT_ARGS"].endswith("pyspark-shell")


def test_a_connection_is_read_through_its_secret_and_one_without_credentials_is_refused() -> None:
    source = glue_spark.source_connection({"Connection": {"Name": "src", "ConnectionProperties": {
        "JDBC_CONNECTION_URL": "jdbc:mysql://127.0.0.1:3306/classicmodels", "SECRET_ID": "source-db"}}})
    assert (source.jdbc_url, source.secret_id, source.password) == (
        "jdbc:mysql://127.0.0.1:3306/classicmodels", "source-db", None)

    with pytest.raises(glue_spark.RunSetupError, match="Glue connection 'src' has neither SECRET_ID nor USERNAME"):
        glue_spark.source_connection({"Connection": {"Name": "src", "ConnectionProperties": {
            "JDBC_CONNECTION_URL": "jdbc:mysql://h/db"}}})


def test_the_error_is_the_scripts_reason_then_its_usage_error_then_the_last_exception_then_the_status() -> None:
    stopped = ["2026 INFO ratings_etl stage read: x", "2026 ERROR ratings_etl ratings ETL stopped: Access denied"]
    assert glue_spark.error_message(stopped, ["ValueError: other"], 1) == "Access denied"
    assert glue_spark.error_message([], ["usage: x", "ratings_etl.py: error: the following arguments are required: "
                                         "--target_path"], 2) == (
        "bad job arguments: ratings_etl.py: error: the following arguments are required: --target_path")
    log = ["Traceback (most recent call last):", "  File x", "py4j.protocol.Py4JJavaError: An error occurred", "  at"]
    assert glue_spark.error_message([], log, 1) == "py4j.protocol.Py4JJavaError: An error occurred"
    assert glue_spark.error_message([], ["nothing useful"], 137) == "the job script exited with status 137"
    assert glue_spark.error_message([], [], -9) == "the job script was killed by signal 9"


def test_a_script_location_must_be_an_s3_object() -> None:
    assert glue_spark.parse_s3_uri("s3://scripts/glue/x.py") == ("scripts", "glue/x.py")
    for bad in ("scripts/x.py", "s3://scripts", "s3://scripts/"):
        with pytest.raises(glue_spark.RunSetupError, match="is not an s3://bucket/key URI"):
            glue_spark.parse_s3_uri(bad)


def test_next_tokens_round_trip_and_foreign_tokens_are_refused() -> None:
    assert glue_runs.page_of({"NextToken": glue_runs.next_token(40), "MaxResults": 5}) == (40, 5)
    assert glue_runs.page_of({}) == (0, 200)
    with pytest.raises(glue_runs.GlueApiError, match="NextToken"):
        glue_runs.page_of({"NextToken": glue_runs.next_token(-1)})
