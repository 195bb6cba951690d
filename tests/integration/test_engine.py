"""The local engine deploys the real program into real local services, and the daemon runs what it deployed.

The module deploys `Pulumi.local.yaml` once into a fresh moto (its own temp dir and port) with the session's MariaDB as
the source database (`up --source-url` mode) and an empty artifacts directory, then checks the resources themselves
through boto3, psycopg2 and HTTP. Small throwaway programs go through the same engine to prove the rules that the real
program does not exercise on every run (unknown types, invocation triggers, RDS MySQL, failing invocations).
"""

from __future__ import annotations

import base64
import io
import json
import string
import textwrap
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pytest
from rich.console import Console

from harness.emulator import control_plane, engine, services
from harness.emulator import state as st
from harness.emulator.materializers.storage import moto_compatible_policy

REGION = "us-east-1"
BUCKET_OUTPUTS = ("data_lake_bucket_id", "scripts_bucket_id", "recommendations_bucket_id", "artifacts_bucket_id")


@dataclass
class Deployed:
    state_dir: Path
    running: services.RunningServices
    outputs: dict[str, Any]
    artifacts_dir: Path

    def value(self, name: str) -> Any:
        return self.outputs[name]["value"]

    def client(self, service: str, endpoint: str | None = None) -> Any:
        return boto3.client(service, endpoint_url=endpoint or self.running.moto.endpoint_url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    @property
    def lambda_endpoint(self) -> str:
        return str(st.load_state(self.state_dir)["daemon"]["lambda_endpoint"])


def quiet() -> Console:
    return Console(file=io.StringIO(), soft_wrap=True)


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.MotoService]:
    service = services.start_moto(tmp_path_factory.mktemp("engine-moto"))
    yield service
    services.stop_moto(service)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, moto: services.MotoService,
             postgres_service: services.PostgresService,
             mariadb_service: services.MariaDBService) -> Iterator[Deployed]:
    base = tmp_path_factory.mktemp("engine")
    running = services.RunningServices(moto=moto, postgres=postgres_service, mariadb=mariadb_service)
    connection = mariadb_service.connect()
    with connection.cursor() as cursor:
        cursor.execute("CREATE DATABASE IF NOT EXISTS classicmodels")
    connection.close()
    state_dir = base / "state"
    st.update_state(state_dir, lambda s: s.update(stack="local", services=running.to_dict(), source={
        "external": True, "host": mariadb_service.host, "port": mariadb_service.port, "database": "classicmodels",
        "username": mariadb_service.user, "password": mariadb_service.password}))
    try:
        # No `harness train` has run: <state>/artifacts does not exist, so no loader invocation.
        outputs = engine.deploy("local", state_dir, running, console=quiet())
        yield Deployed(state_dir, running, outputs, state_dir / "artifacts")
    finally:
        control_plane.stop(state_dir)


@pytest.fixture()
def small_stack(tmp_path: Path, moto: services.MotoService, postgres_service: services.PostgresService,
                mariadb_service: services.MariaDBService) -> Iterator[Deployed]:
    """A state dir for a throwaway program, sharing the module's moto; its daemon and servers stop afterwards."""
    running = services.RunningServices(moto=moto, postgres=postgres_service, mariadb=mariadb_service)
    state_dir = tmp_path / "state"
    st.update_state(state_dir, lambda s: s.update(stack="local", services=running.to_dict()))
    yield Deployed(state_dir, running, {}, tmp_path)
    control_plane.stop(state_dir)


def handler_package(directory: Path, source: str) -> pulumi.FileArchive:
    path = directory / "package.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", textwrap.dedent(source))
    return pulumi.FileArchive(str(path))


def lambda_role(name: str) -> aws.iam.Role:
    return aws.iam.Role(name, name=name, assume_role_policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))


# ---- the real program ------------------------------------------------------------------------------------------------

def test_every_bucket_is_encrypted_blocks_public_access_and_keeps_the_tls_only_policy(deployed: Deployed) -> None:
    s3 = deployed.client("s3")
    resources = st.load_state(deployed.state_dir)["resources"]
    for output in BUCKET_OUTPUTS:
        bucket = deployed.value(output)
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), bucket
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()), (bucket, block)
        policies = [entry["inputs"]["policy"] for entry in resources.values()
                    if entry["type"] == "aws:s3/bucketPolicy:BucketPolicy" and entry["inputs"]["bucket"] == bucket]
        assert len(policies) == 1 and "aws:SecureTransport" in policies[0], bucket


def test_objects_can_be_written_and_read_although_the_tls_only_deny_is_in_the_program(deployed: Deployed) -> None:
    s3 = deployed.client("s3")
    bucket = deployed.value("data_lake_bucket_id")

    s3.put_object(Bucket=bucket, Key="probe/one.json", Body=b"{}")

    assert s3.get_object(Bucket=bucket, Key="probe/one.json")["Body"].read() == b"{}"


def test_functions_run_the_real_package_with_the_vector_db_wiring(deployed: Deployed) -> None:
    lambda_client = deployed.client("lambda")
    for output, handler in (("inference_function_name", "inference.handler"),
                            ("transformation_function_name", "transformation.handler")):
        configuration = lambda_client.get_function_configuration(FunctionName=deployed.value(output))
        environment = configuration["Environment"]["Variables"]
        assert configuration["Handler"] == handler and configuration["Runtime"] == "python3.12"
        assert environment["VECTOR_DB_HOST"] == deployed.value("vector_db_host") == "127.0.0.1"
        assert environment["VECTOR_DB_PORT"] == str(deployed.value("vector_db_port"))
        assert environment["VECTOR_DB_SECRET_ARN"] == deployed.value("vector_db_secret_arn")
        assert "VECTOR_DB_PASSWORD" not in environment
        sha256_hex = base64.b64decode(configuration["CodeSha256"]).hex()
        package = control_plane.code_store_dir(deployed.state_dir) / f"{sha256_hex}.zip"
        with zipfile.ZipFile(package) as archive:
            assert f"{handler.split('.')[0]}.py" in archive.namelist() and "recsys/__init__.py" in archive.namelist()


def test_the_vector_db_master_user_logs_in_with_the_generated_password(deployed: Deployed) -> None:
    import psycopg2

    password = deployed.value("vector_db_master_password")
    secret = json.loads(deployed.client("secretsmanager").get_secret_value(
        SecretId=deployed.value("vector_db_secret_arn"))["SecretString"])
    assert deployed.outputs["vector_db_master_password"]["secret"] is True
    assert secret["password"] == password and secret["port"] == deployed.value("vector_db_port")
    assert password != deployed.running.postgres.password

    connection = psycopg2.connect(host=deployed.value("vector_db_host"), port=deployed.value("vector_db_port"),
                                  user=deployed.value("vector_db_master_username"), password=password,
                                  dbname=deployed.value("vector_db_name"), connect_timeout=5)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
            cursor.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector")
            assert cursor.fetchone() == (1.0,)
    finally:
        connection.close()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host=deployed.value("vector_db_host"), port=deployed.value("vector_db_port"),
                         user="postgres", password="not-the-password", dbname="postgres", connect_timeout=5)


def test_the_delivery_stream_reads_the_stream_and_calls_the_transformation_lambda(deployed: Deployed) -> None:
    description = deployed.client("firehose").describe_delivery_stream(
        DeliveryStreamName=deployed.value("delivery_stream_name"))["DeliveryStreamDescription"]
    source = description["Source"]["KinesisStreamSourceDescription"]
    destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    processor = destination["ProcessingConfiguration"]["Processors"][0]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}

    assert source["KinesisStreamARN"] == deployed.value("kinesis_stream_arn")
    assert destination["BucketARN"] == f"arn:aws:s3:::{deployed.value('recommendations_bucket_id')}"
    assert destination["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 10}
    assert f":function:{deployed.value('transformation_function_name')}" in parameters["LambdaArn"]
    assert {"NumberOfRetries", "BufferSizeInMBs", "BufferIntervalInSeconds"} <= set(parameters)
    assert parameters["NumberOfRetries"] == "2"
    status = control_plane.status(deployed.state_dir)
    assert f"firehose {deployed.value('delivery_stream_name')} events_read" in status


def test_the_daemon_runs_the_delivery_stream_and_loses_no_record_when_the_processor_fails(deployed: Deployed) -> None:
    stream_name, bucket = deployed.value("kinesis_stream_name"), deployed.value("recommendations_bucket_id")
    kinesis, s3 = deployed.client("kinesis"), deployed.client("s3")
    events = [{"session_id": f"s{i}", "customer_number": 103, "city": "Nantes", "country": "France",
               "credit_limit": 21000, "browse_history": [{"product_code": "S10_1678", "quantity": "1",
                                                          "in_shopping_cart": True}]} for i in range(3)]
    for event in events:
        kinesis.put_record(StreamName=stream_name, Data=json.dumps(event).encode(), PartitionKey=event["session_id"])

    key = f"firehose {deployed.value('delivery_stream_name')}"
    deadline = time.monotonic() + 180
    status = control_plane.status(deployed.state_dir)
    while time.monotonic() < deadline:
        status = control_plane.status(deployed.state_dir)
        if int(status[f"{key} records_delivered"]) + int(status[f"{key} records_failed"]) >= len(events):
            break
        time.sleep(1)

    # No model in the empty artifacts bucket: the real transformation Lambda fails every attempt, so after its retries
    # the runner writes each record to the error output; none is lost.
    assert status[f"{key} events_read"] == len(events)
    assert status[f"{key} records_failed"] == len(events) and status[f"{key} records_delivered"] == 0
    failed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    records = [json.loads(line) for obj in failed
               for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().splitlines() if line.strip()]
    assert len(records) == len(events)
    assert {record["errorCode"] for record in records} == {"Lambda.FunctionError"}
    assert sorted(json.loads(base64.b64decode(record["rawData"]))["session_id"] for record in records) == \
        ["s0", "s1", "s2"]


def test_the_inference_function_url_is_served_locally_and_wants_sigv4(deployed: Deployed) -> None:
    url = deployed.value("inference_function_url")
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{url}items_from_item?item_id=S10_1678&limit=2", timeout=30)
    assert unsigned.value.code == 403

    function_name = deployed.value("inference_function_name")
    client = control_plane.ControlPlaneClient(deployed.lambda_endpoint)
    invocations_before = client.status()["functions"].get(function_name, {}).get("invocations", 0)
    request = botocore.awsrequest.AWSRequest(method="GET", url=f"{url}items_from_item?limit=2")
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("testing", "testing"), "lambda", REGION).add_auth(request)
    try:
        with urllib.request.urlopen(urllib.request.Request(request.url, headers=dict(request.headers)),
                                    timeout=60) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()

    # The signed request reached the real handler (which answers with its own JSON; without a model in the empty
    # artifacts bucket that is an error), through exactly one invocation of the function.
    assert status != 403 and "error" in json.loads(body), (status, body)
    assert client.status()["functions"][function_name]["invocations"] == invocations_before + 1


def test_the_daemon_speaks_the_lambda_invoke_api_and_forwards_the_rest_to_moto(deployed: Deployed,
                                                                             tmp_path: Path) -> None:
    lambda_client = deployed.client("lambda", deployed.lambda_endpoint)
    role = deployed.client("iam").get_role(RoleName=deployed.client("iam").list_roles()["Roles"][0]["RoleName"])
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("echo.py", "import os\n"
                                    "def handler(event, context):\n"
                                    "    print('echo', event)\n"
                                    "    if event.get('fail'):\n"
                                    "        raise RuntimeError('asked to fail')\n"
                                    "    return {'echo': event, 'function': context.function_name,\n"
                                    "            'greeting': os.environ.get('GREETING')}\n")
    lambda_client.create_function(FunctionName="engine-test-echo", Runtime="python3.12", Handler="echo.handler",
                                  Role=role["Role"]["Arn"], Code={"ZipFile": package.getvalue()}, Timeout=10)

    ok = lambda_client.invoke(FunctionName="engine-test-echo", Payload=b'{"n": 1}', LogType="Tail")
    failed = lambda_client.invoke(FunctionName="engine-test-echo", Payload=b'{"fail": true}')
    queued = lambda_client.invoke(FunctionName="engine-test-echo", Payload=b'{"n": 2}', InvocationType="Event")

    assert ok["StatusCode"] == 200 and "FunctionError" not in ok
    assert json.loads(ok["Payload"].read()) == {"echo": {"n": 1}, "function": "engine-test-echo", "greeting": None}
    assert "echo {'n': 1}" in base64.b64decode(ok["LogResult"]).decode()
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorMessage"] == "asked to fail"
    assert queued["StatusCode"] == 202
    assert lambda_client.get_function(FunctionName="engine-test-echo")["Configuration"]["Handler"] == "echo.handler"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.invoke(FunctionName="engine-test-missing", Payload=b"{}")
    lambda_client.update_function_configuration(FunctionName="engine-test-echo",
                                                Environment={"Variables": {"GREETING": "hello"}})
    reconfigured = lambda_client.invoke(FunctionName="engine-test-echo", Payload=b"{}")
    assert json.loads(reconfigured["Payload"].read())["greeting"] == "hello"
    log = (deployed.state_dir / "logs" / "engine-test-echo.log")
    deadline = time.monotonic() + 30
    while "echo {'n': 2}" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "echo {'n': 2}" in log.read_text()


def test_a_second_deploy_changes_nothing_and_keeps_the_generated_passwords(deployed: Deployed) -> None:
    before = st.load_state(deployed.state_dir)["resources"]
    functions_before = {f["FunctionName"]: f["LastModified"]
                        for f in deployed.client("lambda").list_functions()["Functions"]}

    outputs = engine.deploy("local", deployed.state_dir, deployed.running, console=quiet())

    after = st.load_state(deployed.state_dir)["resources"]
    assert outputs == deployed.outputs
    assert {urn: entry["id"] for urn, entry in after.items()} == {urn: entry["id"] for urn, entry in before.items()}
    assert {f["FunctionName"]: f["LastModified"] for f in deployed.client("lambda").list_functions()["Functions"]} \
        == functions_before
    assert all(urn.startswith("urn:pulumi:local::recsys::") for urn in after)


# ---- rules proven with small programs --------------------------------------------------------------------------------

def test_an_unknown_resource_type_fails_the_deploy_with_its_type_name(small_stack: Deployed) -> None:
    with pytest.raises(engine.DeployError, match="aws:sqs/queue:Queue") as failure:
        engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(),
                      build=lambda config: {"url": aws.sqs.Queue("unknown-queue").url})
    assert "'unknown-queue'" in str(failure.value)


def test_an_invocation_runs_again_only_when_its_triggers_change(small_stack: Deployed) -> None:
    code = handler_package(small_stack.artifacts_dir, """
        import os
        def handler(event, context):
            print("invoked with", event)
            return {"got": event, "region": os.environ["AWS_REGION"]}
    """)

    def program(version: str) -> Any:
        def build(config: Any) -> dict[str, Any]:
            function = aws.lambda_.Function("trigger-fn", name="engine-test-trigger", role=lambda_role(
                "engine-test-trigger-role").arn, runtime="python3.12", handler="app.handler", code=code)
            run = aws.lambda_.Invocation("trigger-run", function_name=function.name, input='{"step": 1}',
                                         triggers={"version": version})
            return {"result": run.result}
        return build

    first = engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=program("1"))
    engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=program("1"))
    invocations_unchanged = control_plane.ControlPlaneClient(small_stack.lambda_endpoint).status()["functions"][
        "engine-test-trigger"]["invocations"]
    engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=program("2"))
    invocations_changed = control_plane.ControlPlaneClient(small_stack.lambda_endpoint).status()["functions"][
        "engine-test-trigger"]["invocations"]

    assert json.loads(first["result"]["value"]) == {"got": {"step": 1}, "region": REGION}
    assert (invocations_unchanged, invocations_changed) == (1, 2)


def test_an_unchanged_glue_connection_is_kept_and_a_changed_one_fails_with_what_to_do(small_stack: Deployed) -> None:
    def program(host: str) -> Any:
        def build(config: Any) -> dict[str, Any]:
            connection = aws.glue.Connection("source", name="engine-test-source", connection_type="JDBC",
                                             connection_properties={"JDBC_CONNECTION_URL": f"jdbc:mysql://{host}:3306/db"})
            return {"name": connection.name}
        return build

    engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=program("first.example"))
    engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=program("first.example"))
    with pytest.raises(engine.DeployError, match=r"Glue connection 'engine-test-source' changed.*harness down"):
        engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(),
                      build=program("second.example"))

    glue = boto3.client("glue", endpoint_url=small_stack.running.moto.endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    properties = glue.get_connection(Name="engine-test-source")["Connection"]["ConnectionProperties"]
    assert properties["JDBC_CONNECTION_URL"] == "jdbc:mysql://first.example:3306/db"


def test_a_glue_job_whose_script_changed_is_updated_although_moto_cannot_update_jobs(small_stack: Deployed) -> None:
    def program(script_key: str) -> Any:
        def build(config: Any) -> dict[str, Any]:
            job = aws.glue.Job("etl", name="engine-test-etl", role_arn=lambda_role("engine-test-etl-role").arn,
                               glue_version="5.0", worker_type="G.1X", number_of_workers=2,
                               command=aws.glue.JobCommandArgs(script_location=f"s3://scripts/{script_key}"))
            return {"name": job.name}
        return build

    engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=program("etl-aaaa.py"))
    engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=program("etl-bbbb.py"))

    glue = boto3.client("glue", endpoint_url=small_stack.running.moto.endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")
    assert glue.get_job(JobName="engine-test-etl")["Job"]["Command"]["ScriptLocation"] == "s3://scripts/etl-bbbb.py"


def test_a_failing_invocation_fails_the_deploy_with_the_functions_error(small_stack: Deployed) -> None:
    code = handler_package(small_stack.artifacts_dir, """
        def handler(event, context):
            raise KeyError("SOURCE_DB_HOST")
    """)

    def build(config: Any) -> dict[str, Any]:
        function = aws.lambda_.Function("failing-fn", name="engine-test-failing", role=lambda_role(
            "engine-test-failing-role").arn, runtime="python3.12", handler="app.handler", code=code)
        return {"result": aws.lambda_.Invocation("failing-run", function_name=function.name, input="{}").result}

    with pytest.raises(engine.DeployError, match="engine-test-failing failed: KeyError: 'SOURCE_DB_HOST'"):
        engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=build)
    recorded = st.load_state(small_stack.state_dir)["resources"]
    assert any(entry["type"] == "aws:lambda/function:Function" for entry in recorded.values())


def test_an_rds_mysql_instance_is_a_local_server_with_the_programs_password(small_stack: Deployed) -> None:
    import pymysql

    def build(config: Any) -> dict[str, Any]:
        password = random.RandomPassword("mysql-password", length=20, special=False)
        instance = aws.rds.Instance("mysql", identifier="engine-test-mysql", engine="mysql", engine_version="8.0",
                                    instance_class="db.t3.micro", allocated_storage=20, db_name="classicmodels",
                                    username="admin", password=password.result, skip_final_snapshot=True)
        return {"host": instance.address, "port": instance.port, "password": pulumi.Output.secret(password.result)}

    outputs = engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=build)
    again = engine.deploy("local", small_stack.state_dir, small_stack.running, console=quiet(), build=build)

    password = outputs["password"]["value"]
    assert len(password) == 20 and password.isalnum() and outputs["password"]["secret"] is True
    assert again["password"]["value"] == password
    connection = pymysql.connect(host=outputs["host"]["value"], port=outputs["port"]["value"], user="admin",
                                 password=password, database="classicmodels", connect_timeout=5)
    connection.close()
    assert outputs["port"]["value"] != small_stack.running.mariadb.port
    described = small_stack.client("rds").describe_db_instances(DBInstanceIdentifier="engine-test-mysql")
    assert described["DBInstances"][0]["Engine"] == "mysql"


def test_conditional_deny_statements_are_kept_out_of_moto_only() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "Reader", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "s3:GetObject", "Resource": "*"}]}

    document, dropped = moto_compatible_policy(json.dumps(policy))

    assert [s["Sid"] for s in json.loads(document)["Statement"]] == ["Reader"]
    assert [s["Sid"] for s in dropped] == ["TlsOnly"]


def test_generated_passwords_honour_length_classes_and_the_special_set() -> None:
    from harness.emulator.materializers.identity import generate_password

    for _ in range(50):
        alnum = generate_password({"length": 16, "special": False})
        custom = generate_password({"length": 24, "overrideSpecial": "-_", "minSpecial": 2, "minNumeric": 3})
        assert len(alnum) == 16 and alnum.isalnum()
        assert len(custom) == 24 and set(custom) <= set(string.ascii_letters + string.digits + "-_")
        assert sum(c in "-_" for c in custom) >= 2 and sum(c.isdigit() for c in custom) >= 3
    with pytest.raises(Exception, match="exceed length"):
        generate_password({"length": 2, "minUpper": 2, "minNumeric": 1})


def test_the_provider_arguments_of_a_delivery_stream_become_a_create_request() -> None:
    from harness.emulator.materializers import Request
    from harness.emulator.materializers.streaming import delivery_stream_request

    request = Request("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "ds", {
        "destination": "extended_s3",
        "kinesisSourceConfiguration": {"kinesisStreamArn": "arn:stream", "roleArn": "arn:role"},
        "extendedS3Configuration": {
            "bucketArn": "arn:aws:s3:::b", "roleArn": "arn:role", "bufferingSize": 1, "bufferingInterval": 10,
            "prefix": "!{timestamp:yyyy/MM/dd/HH}/", "errorOutputPrefix": "errors/",
            "processingConfiguration": {"enabled": True, "processors": [{"type": "Lambda", "parameters": [
                {"parameterName": "LambdaArn", "parameterValue": "arn:fn:$LATEST"},
                {"parameterName": "NumberOfRetries", "parameterValue": 2}]}]}}}, None)

    create = delivery_stream_request(request, "ds")

    assert create["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert create["KinesisStreamSourceConfiguration"] == {"KinesisStreamARN": "arn:stream", "RoleARN": "arn:role"}
    destination = create["ExtendedS3DestinationConfiguration"]
    assert destination["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 10}
    assert destination["Prefix"] == "!{timestamp:yyyy/MM/dd/HH}/" and destination["ErrorOutputPrefix"] == "errors/"
    assert destination["ProcessingConfiguration"]["Processors"][0]["Parameters"][1] == {
        "ParameterName": "NumberOfRetries", "ParameterValue": "2"}


def test_the_local_config_points_at_the_state_dirs_artifacts_and_an_external_source(tmp_path: Path) -> None:
    stack_config = {"aws:region": "us-east-1", "recsys:artifactsDir": ".local/artifacts"}
    source = {"external": True, "host": "db.example", "port": 3307, "database": "classicmodels", "username": "u",
              "password": "p"}

    config = engine.local_config(stack_config, source, tmp_path)
    local = engine.local_config(stack_config, {"external": False}, tmp_path)

    assert config["recsys:artifactsDir"] == str(tmp_path / "artifacts")
    assert (config["recsys:sourceDbHost"], config["recsys:sourceDbPort"], config["recsys:sourceDbPassword"]) == (
        "db.example", "3307", "p")
    assert "recsys:sourceDbHost" not in local


def test_the_daemon_is_reused_while_moto_is_the_same_and_replaced_when_moto_changed(tmp_path: Path) -> None:
    # No moto needs to answer: the daemon starts, and asks moto only when something is invoked.
    def services_with_moto(port: int) -> services.RunningServices:
        postgres = services.PostgresService("127.0.0.1", 1, "u", "p", "postgres", 0, "", "")
        mariadb = services.MariaDBService("127.0.0.1", 1, "u", "p", 0, "", "", "")
        return services.RunningServices(moto=services.MotoService("127.0.0.1", port, 0, ""), postgres=postgres,
                                        mariadb=mariadb)

    state_dir = tmp_path / "state"
    checkpoints = control_plane.control_plane_dir(state_dir) / "firehose"
    try:
        first = control_plane.start(state_dir, services_with_moto(9))
        checkpoints.mkdir(parents=True)
        (checkpoints / "stream.json").write_text("{}")
        again = control_plane.start(state_dir, services_with_moto(9))
        replaced = control_plane.start(state_dir, services_with_moto(10))

        assert again == first
        assert replaced.pid != first.pid and not (checkpoints / "stream.json").exists()
        assert control_plane.read_info(state_dir) == replaced
        assert st.load_state(state_dir)["daemon"]["lambda_endpoint"] == replaced.url
    finally:
        control_plane.stop(state_dir)
    assert control_plane.read_info(state_dir) is None and "daemon" not in st.load_state(state_dir)
