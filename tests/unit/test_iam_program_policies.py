"""Every policy document the program builds (components.policies, wired as the components wire them, with the ARNs of
a deployed stack), evaluated against the AWS calls each role's code makes, as boto3 sends them: every call is allowed,
and the policy mutations issue 13 names are denied with AWS's AccessDenied. The last test runs the program itself and
checks that its documents are the ones these tests evaluate."""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from recsys import redrive as rd
from recsys.model import PREPROCESSING_FILE, WEIGHTS_FILE

from components import defaults, packaging, policies
from components.source_database import SEED_PREFIX
from components.streaming_inference import processor_parameters, redrive_marker_prefix
from harness.emulator.firehose_runner.prefixes import evaluate_prefix, object_name
from harness.emulator.iam import Call, HttpRequest, Principal, StaticPolicies, Verdict, authorize, authorize_request
from harness.emulator.iam import parse_policy as parse
from harness.emulator.iam.context import global_keys
from harness.emulator.iam.operations import invoke_call
from harness.workflows.seed import DUMP_KEY
from tests.unit.test_iam_operations import boto3_request

NOW = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Stack:
    """The names a deployed stack gives its resources (defaults: stack `dev`, as the program names them)."""

    account: str = "123456789012"
    region: str = "us-east-1"
    prefix: str = "de-c1w4-dev"
    artifacts: str = "de-c1w4-dev-123456789012-us-east-1-ml-artifacts"
    datalake: str = "de-c1w4-dev-123456789012-us-east-1-datalake"
    scripts: str = "de-c1w4-dev-123456789012-us-east-1-scripts"
    recommendations: str = "de-c1w4-dev-123456789012-us-east-1-recommendations"
    vector_secret: str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:de-c1w4-dev-vector-db-fd4989"
    source_secret: str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:de-c1w4-dev-source-db-d9a2b6"
    stream: str = "de-c1w4-dev-kinesis-data-stream"
    delivery_stream: str = "de-c1w4-dev-delivery-stream"
    catalog_database: str = "de-c1w4-dev-catalog"
    connection: str = "de-c1w4-dev-source-connection"

    def name(self, purpose: str) -> str:
        return f"{self.prefix}-{purpose}"

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:aws:s3:::{bucket}"

    def function_arn(self, purpose: str) -> str:
        return self.arn("lambda", f"function:{self.name(purpose)}")

    def role_arn(self, purpose: str) -> str:
        return f"arn:aws:iam::{self.account}:role/{self.name(purpose)}"

    def lambda_logs(self, purpose: str) -> str:
        return self.arn("logs", f"log-group:/aws/lambda/{self.name(purpose)}")

    @property
    def stream_arn(self) -> str:
        return self.arn("kinesis", f"stream/{self.stream}")


STACK = Stack()
VPC_FUNCTIONS = ("model-inference", "transformation-lambda", "embeddings-loader", "producer", "source-seeder")


def role_documents(s: Stack) -> dict[str, dict[str, Any]]:
    """Each role's inline policy, by role purpose, built as the components build it."""
    artifacts = s.bucket_arn(s.artifacts)
    serving = policies.s3_read_prefix(artifacts, defaults.SERVING_PREFIX, "ReadServingBundle")
    embeddings = policies.s3_read_prefix(artifacts, defaults.EMBEDDINGS_PREFIX, "ReadEmbeddings")
    marker_prefix = redrive_marker_prefix(defaults.RECOMMENDATIONS_ERROR_PREFIX)

    def function(purpose: str, secret: str | None, extra: list[dict[str, Any]]) -> dict[str, Any]:
        return policies.lambda_policy(s.lambda_logs(purpose), in_vpc=purpose in VPC_FUNCTIONS,
                                      secret_arns=[secret] if secret else [], extra=extra)

    return {
        "model-inference": function("model-inference", s.vector_secret, serving),
        "transformation-lambda": function("transformation-lambda", s.vector_secret, serving),
        "embeddings-loader": function("embeddings-loader", s.vector_secret, embeddings),
        "producer": function("producer", s.source_secret, [policies.kinesis_write(s.stream_arn)]),
        "source-seeder": function("source-seeder", s.source_secret,
                                  policies.s3_read_prefix(artifacts, SEED_PREFIX, "ReadClassicmodelsDump")),
        "redrive": function("redrive", None, [
            *policies.s3_redrive(s.bucket_arn(s.recommendations), error_prefix=defaults.RECOMMENDATIONS_ERROR_PREFIX,
                                 recommendations_prefix=defaults.RECOMMENDATIONS_PREFIX, marker_prefix=marker_prefix),
            policies.kinesis_redrive(s.stream_arn)]),
        "delivery-stream": policies.firehose_policy(
            s.bucket_arn(s.recommendations), s.stream_arn, s.function_arn("transformation-lambda"),
            s.arn("logs", f"log-group:/aws/kinesisfirehose/{s.delivery_stream}")),
        "glue-job": policies.glue_job_policy(
            partition="aws", region=s.region, account_id=s.account, scripts_bucket_arn=s.bucket_arn(s.scripts),
            datalake_bucket_arn=s.bucket_arn(s.datalake), catalog_database=s.catalog_database,
            connection_name=s.connection, source_secret_arn=s.source_secret),
        "vector-db-s3-import": policies.rds_s3_import_policy(artifacts, defaults.EMBEDDINGS_PREFIX),
    }


def bucket_policies(s: Stack) -> dict[str, list[Any]]:
    return {s.bucket_arn(b): [parse(policies.tls_only_bucket_policy(s.bucket_arn(b)), f"bucket/{b}", "resource")]
            for b in (s.artifacts, s.datalake, s.scripts, s.recommendations)}


# ---- what each role's code calls ------------------------------------------------------------------------------------

Step = tuple[str, HttpRequest | Call]


def s3(operation: str, **params: Any) -> HttpRequest:
    return boto3_request("s3", operation, **params)


def lambda_service_logs(s: Stack, purpose: str) -> list[Step]:
    """What the Lambda service writes to the function's log group with its execution role."""
    group = f"/aws/lambda/{s.name(purpose)}"
    stream = "2024/06/01/[$LATEST]0123456789abcdef"
    return [("CreateLogStream", boto3_request("logs", "create_log_stream", logGroupName=group, logStreamName=stream)),
            ("PutLogEvents", boto3_request("logs", "put_log_events", logGroupName=group, logStreamName=stream,
                                           logEvents=[{"timestamp": 1, "message": "START"}]))]


def secret(arn: str) -> Step:
    return ("GetSecretValue", boto3_request("secretsmanager", "get_secret_value", SecretId=arn))


def serving_calls(s: Stack, purpose: str) -> list[Step]:
    """recsys.model.ServingModel.from_s3 and the vector database's password (inference, transformation)."""
    return [*(("GetObject " + name, s3("get_object", Bucket=s.artifacts, Key=f"{defaults.SERVING_PREFIX}{name}"))
              for name in (WEIGHTS_FILE, PREPROCESSING_FILE)),
            secret(s.vector_secret), *lambda_service_logs(s, purpose)]


def loader_calls(s: Stack) -> list[Step]:
    """recsys.vectordb.sources.s3_source: HeadObject for the ETag, then GetObject If-Match, for both files."""
    steps: list[Step] = []
    for key in defaults.EMBEDDING_OBJECTS:
        steps += [("HeadObject " + key, s3("head_object", Bucket=s.artifacts, Key=key)),
                  ("GetObject " + key, s3("get_object", Bucket=s.artifacts, Key=key, IfMatch='"etag"'))]
    return [*steps, secret(s.vector_secret), *lambda_service_logs(s, "embeddings-loader")]


def producer_calls(s: Stack) -> list[Step]:
    return [secret(s.source_secret),
            ("PutRecords", boto3_request("kinesis", "put_records", StreamName=s.stream,
                                         Records=[{"Data": b"{}", "PartitionKey": "103"}])),
            *lambda_service_logs(s, "producer")]


def redrive_calls(s: Stack) -> list[Step]:
    """lambda_src/redrive.py: list and read the hour's error output and delivered output, the lease, the markers."""
    settings = rd.settings_from_env({
        "RECOMMENDATIONS_BUCKET": s.recommendations, "ERROR_OUTPUT_PREFIX": defaults.RECOMMENDATIONS_ERROR_PREFIX,
        "RECOMMENDATIONS_PREFIX": defaults.RECOMMENDATIONS_PREFIX, "KINESIS_STREAM_NAME": s.stream,
        "REDRIVEN_PREFIX": redrive_marker_prefix(defaults.RECOMMENDATIONS_ERROR_PREFIX)})
    errors = rd.hour_prefix(settings.error_template, NOW, error_output_type="processing-failed")
    delivered = rd.hour_prefix(settings.recommendations_template, NOW, error_output_type=None)
    error_key = f"{errors}{s.delivery_stream}-1-2024-06-01-12-30-00-abc"
    bucket = s.recommendations
    return [
        ("List errors", s3("list_objects_v2", Bucket=bucket, Prefix=errors)),
        ("List delivered", s3("list_objects_v2", Bucket=bucket, Prefix=delivered)),
        ("List markers", s3("list_objects_v2", Bucket=bucket, Prefix=settings.marker_prefix)),
        ("Read error", s3("get_object", Bucket=bucket, Key=error_key)),
        ("Read delivered", s3("get_object", Bucket=bucket, Key=f"{delivered}{s.delivery_stream}-1-x")),
        ("Take lease", s3("put_object", Bucket=bucket, Key=settings.lease_key, Body=b"{}", IfNoneMatch="*")),
        ("Read lease", s3("get_object", Bucket=bucket, Key=settings.lease_key)),
        ("Write marker", s3("put_object", Bucket=bucket, Key=rd.marker_key(settings, error_key), Body=b"{}")),
        ("Release lease", s3("delete_object", Bucket=bucket, Key=settings.lease_key)),
        ("PutRecords", boto3_request("kinesis", "put_records", StreamName=s.stream,
                                     Records=[{"Data": b"{}", "PartitionKey": "103"}])),
        *lambda_service_logs(s, "redrive"),
    ]


def delivery_calls(s: Stack) -> list[Step]:
    """The Firehose runner acting for the delivery role: read the stream, invoke the processor (the ARN Firehose is
    configured with), write delivered objects and the error output, log delivery errors."""
    processor = processor_parameters(s.function_arn("transformation-lambda"), 0.5, 60, 3)["LambdaArn"]
    name = object_name(s.delivery_stream, "1", NOW, unique="0123")
    iterator = "ZGUtYzF3NC1kZXYta2luZXNpcy1kYXRhLXN0cmVhbTpzaGFyZElkLTAwMDAwMDAwMDAwMDoxMg=="
    return [
        ("ListShards", boto3_request("kinesis", "list_shards", StreamName=s.stream)),
        ("GetShardIterator", boto3_request("kinesis", "get_shard_iterator", StreamName=s.stream,
                                           ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")),
        ("GetRecords", boto3_request("kinesis", "get_records", ShardIterator=iterator, Limit=500)),
        ("InvokeFunction", invoke_call(processor)),
        ("GetFunctionConfiguration", boto3_request("lambda", "get_function_configuration", FunctionName=processor)),
        ("Deliver", s3("put_object", Bucket=s.recommendations,
                       Key=evaluate_prefix(defaults.RECOMMENDATIONS_PREFIX, NOW, error_output_type=None) + name,
                       Body=b"{}\n")),
        ("Error output", s3("put_object", Bucket=s.recommendations,
                            Key=evaluate_prefix(defaults.RECOMMENDATIONS_ERROR_PREFIX, NOW,
                                                error_output_type="processing-failed") + name, Body=b"{}\n")),
        ("Log delivery error", boto3_request("logs", "put_log_events",
                                             logGroupName=f"/aws/kinesisfirehose/{s.delivery_stream}",
                                             logStreamName="DestinationDelivery",
                                             logEvents=[{"timestamp": 1, "message": "x"}])),
    ]


def glue_calls(s: Stack) -> list[Step]:
    """The Glue run (harness/emulator/glue_runs.py: connection, script, continuous logs, metrics) and the script
    (glue_scripts/ratings_etl.py: stage, publish, clean up, catalog)."""
    lake, target = s.datalake, defaults.DATALAKE_TRAINING_PREFIX
    staged = f"_staging/{target.rstrip('/')}/jr_1/customerNumber=103/part-0.parquet"
    table = {"DatabaseName": s.catalog_database}
    logs = [(f"{op} {group}", boto3_request("logs", op, logGroupName=group, **extra))
            for group in ("/aws-glue/jobs/output", "/aws-glue/jobs/error")
            for op, extra in (("create_log_group", {}), ("create_log_stream", {"logStreamName": "jr_1"}),
                              ("put_log_events", {"logStreamName": "jr_1",
                                                  "logEvents": [{"timestamp": 1, "message": "x"}]}))]
    return [
        ("GetConnection", boto3_request("glue", "get_connection", Name=s.connection, HidePassword=False)),
        ("Fetch script", s3("head_object", Bucket=s.scripts, Key="ratings_etl.py")),
        ("Fetch script", s3("get_object", Bucket=s.scripts, Key="ratings_etl.py")),
        secret(s.source_secret),
        ("List staging", s3("list_objects_v2", Bucket=lake, Prefix=f"_staging/{target}")),
        ("List table", s3("list_objects_v2", Bucket=lake, Prefix=target)),
        ("Stage", s3("put_object", Bucket=lake, Key=staged, Body=b"PAR1")),
        ("Stage multipart", s3("create_multipart_upload", Bucket=lake, Key=staged)),
        ("Stage part", s3("upload_part", Bucket=lake, Key=staged, UploadId="u", PartNumber=1, Body=b"x")),
        ("Stage complete", s3("complete_multipart_upload", Bucket=lake, Key=staged, UploadId="u",
                              MultipartUpload={"Parts": [{"ETag": "e", "PartNumber": 1}]})),
        ("Publish", s3("copy_object", Bucket=lake, Key=f"{target}customerNumber=103/part-0.parquet",
                       CopySource={"Bucket": lake, "Key": staged})),
        ("Clean up", s3("delete_objects", Bucket=lake, Delete={"Objects": [{"Key": staged}], "Quiet": True})),
        *((op, boto3_request("glue", op, **table, **params)) for op, params in (
            ("get_table", {"Name": defaults.GLUE_TABLE}),
            ("update_table", {"TableInput": {"Name": defaults.GLUE_TABLE}}),
            ("create_table", {"TableInput": {"Name": defaults.GLUE_TABLE}}),
            ("get_partitions", {"TableName": defaults.GLUE_TABLE}),
            ("batch_create_partition", {"TableName": defaults.GLUE_TABLE,
                                        "PartitionInputList": [{"Values": ["103"]}]}),
            ("batch_delete_partition", {"TableName": defaults.GLUE_TABLE,
                                        "PartitionsToDelete": [{"Values": ["103"]}]}))),
        *logs,
        ("PutMetricData", boto3_request("cloudwatch", "put_metric_data", Namespace="Glue",
                                        MetricData=[{"MetricName": "glue.driver.aggregate.numRecords",
                                                     "Value": 1.0}])),
    ]


def s3_import_calls(s: Stack) -> list[Step]:
    """RDS's aws_s3.table_import_from_s3 with the s3Import role: the embeddings files."""
    return [(f"GetObject {key}", s3("get_object", Bucket=s.artifacts, Key=key)) for key in defaults.EMBEDDING_OBJECTS] \
        + [("ListBucket", s3("list_objects_v2", Bucket=s.artifacts, Prefix=defaults.EMBEDDINGS_PREFIX))]


def calls_of(s: Stack) -> dict[str, list[Step]]:
    return {
        "model-inference": serving_calls(s, "model-inference"),
        "transformation-lambda": serving_calls(s, "transformation-lambda"),
        "embeddings-loader": loader_calls(s),
        "producer": producer_calls(s),
        "source-seeder": [secret(s.source_secret),
                          ("Read the dump", s3("get_object", Bucket=s.artifacts, Key=DUMP_KEY)),
                          *lambda_service_logs(s, "source-seeder")],
        "redrive": redrive_calls(s),
        "delivery-stream": delivery_calls(s),
        "glue-job": glue_calls(s),
        "vector-db-s3-import": s3_import_calls(s),
    }


def verdict(s: Stack, purpose: str, document: dict[str, Any], step: HttpRequest | Call, *, secure: bool = True,
            extra: tuple[dict[str, Any], ...] = ()) -> Verdict:
    caller = Principal.role_session(s.role_arn(purpose), purpose)
    identity = [parse(document, f"role/{s.name(purpose)}/inline/policy", "identity"),
                *(parse(e, f"role/{s.name(purpose)}/inline/extra-{i}", "identity") for i, e in enumerate(extra))]
    source = StaticPolicies({s.role_arn(purpose): identity}, bucket_policies(s))
    if isinstance(step, Call):
        return authorize(step, caller, source, global_keys(caller, region=s.region, secure_transport=secure, now=NOW))
    return authorize_request(step, caller, source, region=s.region, secure_transport=secure, now=NOW)


def denied(s: Stack, purpose: str, document: dict[str, Any], steps: list[Step], **kwargs: Any) -> list[str]:
    return [label for label, step in steps if not verdict(s, purpose, document, step, **kwargs).allowed]


# ---- every call allowed ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("purpose", sorted(calls_of(STACK)))
def test_every_call_of_each_role_is_allowed(purpose: str) -> None:
    document = role_documents(STACK)[purpose]
    for label, step in calls_of(STACK)[purpose]:
        decision = verdict(STACK, purpose, document, step)
        assert decision.allowed, f"{purpose} {label}: {decision.message()}"


def test_the_tls_only_bucket_policies_deny_every_s3_call_over_plain_http() -> None:
    for purpose, steps in calls_of(STACK).items():
        document = role_documents(STACK)[purpose]
        s3_steps = [(label, step) for label, step in steps
                    if isinstance(step, HttpRequest) and "/s3/" in (step.header("authorization") or "")]
        refused = {label: verdict(STACK, purpose, document, step, secure=False) for label, step in s3_steps}
        assert all(not v.allowed and v.denial is not None and v.denial.decided_by is not None
                   and v.denial.decided_by.statement.sid == "DenyInsecureTransport" for v in refused.values()), purpose
        others = [label for label, step in steps if (label, step) not in s3_steps]
        assert denied(STACK, purpose, document, [(lb, st) for lb, st in steps if lb in others], secure=False) == []


def test_a_role_cannot_do_what_another_role_needs() -> None:
    documents, calls = role_documents(STACK), calls_of(STACK)
    # The serving functions read the bundle, not the embeddings; the loader the reverse; nothing else reads secrets.
    assert denied(STACK, "model-inference", documents["model-inference"], loader_calls(STACK)[:4]) == \
        [label for label, _ in loader_calls(STACK)[:4]]
    assert denied(STACK, "redrive", documents["redrive"], [secret(STACK.vector_secret)]) == ["GetSecretValue"]
    assert denied(STACK, "producer", documents["producer"], calls["delivery-stream"][:3]) == \
        ["ListShards", "GetShardIterator", "GetRecords"]
    assert denied(STACK, "glue-job", documents["glue-job"], [
        ("metrics elsewhere", boto3_request("cloudwatch", "put_metric_data", Namespace="AWS/Firehose",
                                            MetricData=[{"MetricName": "m", "Value": 1.0}]))]) == ["metrics elsewhere"]


def test_the_seeder_reads_only_the_dump_of_the_artifacts_bucket() -> None:
    # `harness seed --classicmodels-dump` uploads the dump under seed/ for the seeder; the rest is not its business.
    document = role_documents(STACK)["source-seeder"]
    steps: list[Step] = [("dump", s3("get_object", Bucket=STACK.artifacts, Key=DUMP_KEY)),
                         ("model", s3("get_object", Bucket=STACK.artifacts, Key=f"serving/{WEIGHTS_FILE}")),
                         ("dump elsewhere", s3("get_object", Bucket=STACK.datalake, Key=DUMP_KEY))]
    assert denied(STACK, "source-seeder", document, steps) == ["model", "dump elsewhere"]


def test_the_scheduler_policy_invokes_only_its_function() -> None:
    document = policies.scheduler_invoke_policy(STACK.function_arn("producer"))
    steps: list[Step] = [("producer", invoke_call(STACK.function_arn("producer"))),
                         ("producer $LATEST", invoke_call(STACK.function_arn("producer") + ":$LATEST")),
                         ("redrive", invoke_call(STACK.function_arn("redrive")))]
    assert denied(STACK, "scheduler", document, steps) == ["redrive"]


# ---- the mutations issue 13 names -----------------------------------------------------------------------------------

def without(document: dict[str, Any], sid: str, *actions: str) -> dict[str, Any]:
    """The document with `actions` removed from statement `sid` (the statement removed when none is left)."""
    changed = copy.deepcopy(document)
    for statement in changed["Statement"]:
        if statement.get("Sid") == sid:
            statement["Action"] = [a for a in statement["Action"] if a not in actions]
    changed["Statement"] = [st for st in changed["Statement"] if st["Action"]]
    assert changed != document, f"no statement {sid} with {actions}"
    return changed


def test_inference_reading_embeddings_instead_of_serving_cannot_load_its_model() -> None:
    s = STACK
    wrong = policies.lambda_policy(s.lambda_logs("model-inference"), in_vpc=True, secret_arns=[s.vector_secret],
                                   extra=policies.s3_read_prefix(s.bucket_arn(s.artifacts), defaults.EMBEDDINGS_PREFIX,
                                                                 "ReadServingBundle"))
    steps = serving_calls(s, "model-inference")
    assert denied(s, "model-inference", wrong, steps) == \
        [f"GetObject {WEIGHTS_FILE}", f"GetObject {PREPROCESSING_FILE}"]
    refused = verdict(s, "model-inference", wrong, steps[0][1])
    answer = refused.error()
    assert answer is not None and answer.status == 403 and b"<Code>AccessDenied</Code>" in answer.body
    assert refused.message() == (
        f"User: arn:aws:sts::{s.account}:assumed-role/{s.name('model-inference')}/model-inference is not authorized "
        f'to perform: s3:GetObject on resource: "arn:aws:s3:::{s.artifacts}/serving/{WEIGHTS_FILE}" because no '
        "identity-based policy allows the s3:GetObject action")


def test_the_loader_without_get_object_cannot_read_the_embeddings() -> None:
    wrong = without(role_documents(STACK)["embeddings-loader"], "ReadEmbeddingsObjects", "s3:GetObject")
    assert denied(STACK, "embeddings-loader", wrong, loader_calls(STACK)) == \
        [label for label, _ in loader_calls(STACK) if label.startswith(("HeadObject", "GetObject"))]


def test_the_delivery_role_without_invoke_cannot_call_its_processor() -> None:
    wrong = without(role_documents(STACK)["delivery-stream"], "InvokeProcessor", "lambda:InvokeFunction")
    assert denied(STACK, "delivery-stream", wrong, delivery_calls(STACK)) == ["InvokeFunction"]


def test_a_deny_put_object_policy_on_the_delivery_role_stops_deliveries_and_removing_it_resumes_them() -> None:
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"}]}
    document = role_documents(STACK)["delivery-stream"]
    steps = delivery_calls(STACK)
    assert denied(STACK, "delivery-stream", document, steps, extra=(deny,)) == ["Deliver", "Error output"]
    assert denied(STACK, "delivery-stream", document, steps) == []


def test_the_glue_role_without_write_to_the_data_lake_cannot_publish() -> None:
    s = STACK
    document = role_documents(s)["glue-job"]
    read_only = copy.deepcopy(document)
    lake = policies.s3_read_write_bucket(s.bucket_arn(s.datalake), "WriteDataLake")
    read_only["Statement"] = [st for st in document["Statement"] if st not in lake] + \
        policies.s3_read_bucket(s.bucket_arn(s.datalake), "WriteDataLake")
    assert read_only != document
    assert denied(s, "glue-job", read_only, glue_calls(s)) == [
        "Stage", "Stage multipart", "Stage part", "Stage complete", "Publish", "Clean up"]


# ---- the documents are the program's --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def program_documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """The program run under recording mocks (as tests/unit/program does, with a placeholder dependency layer)."""
    import os

    from harness.emulator.program import RecordingMocks, run_program
    from tests.unit.program.conftest import OPTIONAL_FEATURES, config_of

    build = tmp_path_factory.mktemp("build")
    previous = os.environ.get("RECSYS_BUILD_DIR")
    os.environ["RECSYS_BUILD_DIR"] = str(build)
    try:
        for architecture in ("x86_64", "arm64"):
            layer = packaging.layer_cache_path(packaging.LAMBDA_SRC / "requirements.txt", architecture, build)
            layer.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(layer, "w") as archive:
                archive.writestr("python/placeholder.txt", "test layer\n")
        run = run_program("dev", config_of(OPTIONAL_FEATURES), RecordingMocks(region="us-east-1"))
    finally:
        if previous is None:
            os.environ.pop("RECSYS_BUILD_DIR", None)
        else:
            os.environ["RECSYS_BUILD_DIR"] = previous
    buckets = {r.name: r.outputs["bucket"] for r in run.of_type("aws:s3/bucket:Bucket")}
    env = {r.name: r.plain_inputs["environment"]["variables"] for r in run.of_type("aws:lambda/function:Function")}
    (database,) = run.of_type("aws:glue/catalogDatabase:CatalogDatabase")
    (connection,) = run.of_type("aws:glue/connection:Connection")
    (delivery,) = run.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    stack = replace(STACK, artifacts=buckets["ml-artifacts-bucket"], datalake=buckets["etl-datalake"],
                    scripts=buckets["etl-scripts"], recommendations=buckets["streaming-recommendations"],
                    vector_secret=env["streaming-model-inference"]["VECTOR_DB_SECRET_ARN"],
                    source_secret=env["streaming-producer"]["SOURCE_DB_SECRET_ARN"],
                    stream=env["streaming-producer"]["KINESIS_STREAM_NAME"],
                    delivery_stream=delivery.plain_inputs["name"], catalog_database=database.plain_inputs["name"],
                    connection=connection.plain_inputs["name"])
    documents = {str(r.plain_inputs["role"]).removeprefix(f"{stack.prefix}-"): json.loads(r.plain_inputs["policy"])
                 for r in run.of_type("aws:iam/rolePolicy:RolePolicy")}
    yield stack, documents


def test_the_programs_documents_are_the_ones_evaluated_here_and_allow_every_call(
        program_documents: tuple[Stack, dict[str, Any]]) -> None:
    stack, documents = program_documents
    assert documents == role_documents(stack)
    for purpose, steps in calls_of(stack).items():
        assert denied(stack, purpose, documents[purpose], steps) == [], purpose
