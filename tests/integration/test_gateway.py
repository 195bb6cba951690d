"""The control plane's gateway is the stack's one AWS endpoint: what it passes to moto (S3, Kinesis, the Glue catalog)
arrives and comes back unchanged, byte for byte, and the same resources are seen through it and through moto itself;
what the emulator performs (Glue job runs) it answers itself, for any client (the aws CLI). A real control-plane
process (`harness.emulator.control_plane.start`) on the session's moto; the schedules' firing in-process."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from harness.emulator import control_plane, endpoints, services
from harness.emulator import state as st
from harness.emulator.lambda_runtime import FunctionSpec
from tests.unit.local_plane import local_plane, package

REGION = "us-east-1"


def client(service: str, url: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, moto_service: services.MotoService) -> Iterator[str]:
    # Only moto is used: the databases are named, never reached.
    postgres = services.PostgresService("127.0.0.1", 1, "u", "p", "postgres", 0, "", "")
    mariadb = services.MariaDBService("127.0.0.1", 1, "u", "p", 0, "", "", "")
    running = services.RunningServices(moto=moto_service, postgres=postgres, mariadb=mariadb)
    state_dir = tmp_path_factory.mktemp("gateway") / "state"
    st.update_state(state_dir, lambda s: s.update(stack="gateway", services=running.to_dict()))
    info = control_plane.start(state_dir, running, region=REGION)
    try:
        assert endpoints.aws_environment(state_dir)["AWS_ENDPOINT_URL"] == info.url
        yield info.url
    finally:
        control_plane.stop(state_dir)


def test_a_20_mb_object_goes_through_byte_exact_both_ways(gateway: str, moto_service: services.MotoService) -> None:
    s3, direct = client("s3", gateway), client("s3", moto_service.endpoint_url)
    s3.create_bucket(Bucket="gateway-objects")
    data = os.urandom(20 << 20)

    put = s3.put_object(Bucket="gateway-objects", Key="whole.bin", Body=data, Metadata={"origin": "gateway"})
    through = s3.get_object(Bucket="gateway-objects", Key="whole.bin")
    stored = direct.get_object(Bucket="gateway-objects", Key="whole.bin")

    assert through["Body"].read() == data
    assert stored["Body"].read() == data
    assert put["ETag"] == through["ETag"] == stored["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert through["Metadata"] == stored["Metadata"] == {"origin": "gateway"}
    assert s3.head_object(Bucket="gateway-objects", Key="whole.bin")["ContentLength"] == len(data)
    ranged = s3.get_object(Bucket="gateway-objects", Key="whole.bin", Range="bytes=1000-1999")["Body"].read()
    assert ranged == data[1000:2000]


def test_multipart_uploads_and_presigned_urls_go_through(gateway: str) -> None:
    s3 = client("s3", gateway)
    s3.create_bucket(Bucket="gateway-multipart")
    data = os.urandom(20 << 20)
    s3.upload_fileobj(io.BytesIO(data), "gateway-multipart", "parts.bin",
                      Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "gateway-multipart", "Key": "parts.bin"})

    assert url.startswith(gateway)
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.read() == data


def test_kinesis_records_and_descriptions_are_moto_s_own(gateway: str, moto_service: services.MotoService) -> None:
    kinesis, direct = client("kinesis", gateway), client("kinesis", moto_service.endpoint_url)
    kinesis.create_stream(StreamName="gateway-stream", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="gateway-stream")
    records = [os.urandom(size) for size in (1, 1000, 100_000)]
    sequence = [kinesis.put_record(StreamName="gateway-stream", Data=data, PartitionKey="p")["SequenceNumber"]
                for data in records]

    shard = direct.describe_stream(StreamName="gateway-stream")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = direct.get_shard_iterator(StreamName="gateway-stream", ShardId=shard,
                                         ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    read = direct.get_records(ShardIterator=iterator)["Records"]

    assert [(r["Data"], r["SequenceNumber"]) for r in read] == list(zip(records, sequence, strict=True))
    assert (kinesis.describe_stream(StreamName="gateway-stream")["StreamDescription"]
            == direct.describe_stream(StreamName="gateway-stream")["StreamDescription"])


def test_the_glue_catalog_is_moto_s_own(gateway: str, moto_service: services.MotoService) -> None:
    glue, direct = client("glue", gateway), client("glue", moto_service.endpoint_url)
    glue.create_database(DatabaseInput={"Name": "gateway_db", "Description": "through the gateway"})
    glue.create_table(DatabaseName="gateway_db", TableInput={
        "Name": "ratings", "StorageDescriptor": {"Columns": [{"Name": "rating", "Type": "double"}],
                                                 "Location": "s3://gateway-objects/ratings/"}})

    assert glue.get_table(DatabaseName="gateway_db", Name="ratings")["Table"] == direct.get_table(
        DatabaseName="gateway_db", Name="ratings")["Table"]
    assert direct.get_database(Name="gateway_db")["Database"]["Description"] == "through the gateway"
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_table(DatabaseName="gateway_db", Name="missing")


# ---- what the gateway answers itself: Glue job runs; the schedules the control plane fires --------------------------

def glue_job(glue: Any, name: str) -> None:
    # No connection and a script nobody uploaded: a run the emulator executes fails at once, with the reason.
    glue.create_job(Name=name, Role="arn:aws:iam::123456789012:role/glue", GlueVersion="4.0",
                    Command={"Name": "glueetl", "ScriptLocation": f"s3://gateway-scripts/{name}.py"})


def aws_cli(gateway: str, *args: str) -> Any:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "AWS_ENDPOINT_URL": gateway,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    done = subprocess.run(["aws", *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_glue_job_run_started_with_the_aws_cli_is_executed_and_reports_its_real_end(gateway: str) -> None:
    glue = client("glue", gateway)
    glue_job(glue, "gateway-cli-job")

    run_id = aws_cli(gateway, "glue", "start-job-run", "--job-name", "gateway-cli-job", "--arguments",
                     '{"--source": "cli"}')["JobRunId"]
    deadline = time.monotonic() + 120
    while (run := aws_cli(gateway, "glue", "get-job-run", "--job-name", "gateway-cli-job", "--run-id", run_id)[
            "JobRun"])["JobRunState"] in ("STARTING", "RUNNING") and time.monotonic() < deadline:
        time.sleep(1)

    # moto would say SUCCEEDED for any run; the emulator ran it, and it failed for its real reason.
    assert (run["Id"], run["JobName"], run["JobRunState"]) == (run_id, "gateway-cli-job", "FAILED")
    assert run["Arguments"] == {"--source": "cli"}
    assert run["ErrorMessage"] == "Glue job 'gateway-cli-job' has no connection: it cannot reach the source database"
    assert [r["Id"] for r in glue.get_job_runs(JobName="gateway-cli-job")["JobRuns"]] == [run_id]
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.start_job_run(JobName="gateway-no-such-job")


HANDLER = """
    import json, os

    def handler(event, context):
        with open(os.environ["OUT"], "a") as out:
            out.write(json.dumps(event) + "\\n")
        return event
"""


def test_schedules_fire_through_the_control_planes_own_invoke_and_job_runs(
        tmp_path: Path, moto_service: services.MotoService) -> None:
    events, glue = client("events", moto_service.endpoint_url), client("glue", moto_service.endpoint_url)
    arn = f"arn:aws:lambda:{REGION}:123456789012:function:gateway-ticker"
    events.put_rule(Name="gateway-tick", ScheduleExpression="rate(1 minute)", State="ENABLED")
    events.put_targets(Rule="gateway-tick", Targets=[{"Id": "ticker", "Arn": arn, "Input": '{"tick": 1}'}])
    glue_job(glue, "gateway-scheduled-job")
    glue.create_trigger(Name="gateway-trigger", Type="SCHEDULED", Schedule="cron(0/5 * * * ? *)", StartOnCreation=True,
                        Actions=[{"JobName": "gateway-scheduled-job", "Arguments": {"--from": "trigger"}}])
    out = tmp_path / "events.jsonl"
    try:
        with local_plane(tmp_path / "state", moto_url=moto_service.endpoint_url) as local:
            local.deploy(FunctionSpec(name="gateway-ticker", handler="app.handler", code_dir=package(tmp_path, HANDLER),
                                      environment={"OUT": str(out)}))
            start = (time.time() // 300) * 300 + 10  # 10 s after a five-minute boundary: nothing due for 290 s
            assert local.plane.scheduler.tick(now=start) == []
            fired = {(f.name, f.target): f for f in local.plane.scheduler.tick(now=start + 301)}
            deadline = time.monotonic() + 60
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            run = local.plane.job_runs.call("GetJobRun", {"JobName": "gateway-scheduled-job",
                                                          "RunId": fired[("gateway-trigger", "gateway-scheduled-job")]
                                                          .detail})
    finally:
        events.remove_targets(Rule="gateway-tick", Ids=["ticker"])
        events.delete_rule(Name="gateway-tick")
        glue.delete_trigger(Name="gateway-trigger")

    assert fired[("gateway-tick", arn)].ok and fired[("gateway-tick", arn)].detail == "invoked"
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"tick": 1}]
    assert run[0] == 200 and run[1]["JobRun"]["Arguments"] == {"--from": "trigger"}
