"""The gateway's routing decision (`harness.emulator.control_plane.routing`), on requests exactly as boto3 builds and
signs them: the service from the SigV4 scope, the operation from `X-Amz-Target`, S3's presigned query."""

from __future__ import annotations

import urllib.parse
from typing import Any

import boto3
import pytest
from botocore.config import Config

from harness.emulator.control_plane.routing import (
    Route,
    header_service,
    lowered,
    presigned_service,
    request_service,
    route,
    scope_service,
    target_operation,
)

GLUE_RUNS = frozenset({"StartJobRun", "GetJobRun", "GetJobRuns", "BatchStopJobRun"})


class Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def signed(service: str, operation: str, **params: Any) -> tuple[str, str, str, dict[str, str]]:
    """(method, path, query, lower-cased headers) of the request boto3 sends for `operation`, signed, never sent."""
    client = boto3.client(service, endpoint_url="http://127.0.0.1:1", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 1}))

    def capture(request: Any, **_: Any) -> None:
        raise Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(Captured) as sent:
        getattr(client, operation)(**params)
    request = sent.value.request
    parts = urllib.parse.urlsplit(request.url)
    headers = [(name, value.decode() if isinstance(value, bytes) else value) for name, value in request.headers.items()]
    return request.method, parts.path, parts.query, lowered(headers)


def routed(service: str, operation: str, glue_operations: frozenset[str] = GLUE_RUNS, **params: Any) -> Route:
    method, path, query, headers = signed(service, operation, **params)
    return route(method, path, query, headers, glue_operations)


def test_the_service_is_the_credential_scopes_next_to_last_part() -> None:
    assert scope_service("AKID/20240101/us-east-1/s3/aws4_request") == "s3"
    assert scope_service("AKID/20240101/glue/aws4_request") == "glue"  # SigV4a: no region
    for malformed in ("", "AKID/20240101/us-east-1/s3", "AKID/20240101/us-east-1/s3/aws4_request/x",
                      "AKID/20240101/us-east-1//aws4_request", "AKID/20240101/us-east-1/s3/aws5_request"):
        assert scope_service(malformed) is None, malformed


def test_every_service_boto3_signs_for_is_read_from_its_authorization_header() -> None:
    calls = {"s3": ("list_buckets", {}), "kinesis": ("list_streams", {}), "glue": ("get_databases", {}),
             "lambda": ("list_functions", {}), "firehose": ("list_delivery_streams", {}),
             "events": ("list_rules", {}), "logs": ("describe_log_groups", {}), "sts": ("get_caller_identity", {})}
    for service, (operation, params) in calls.items():
        _, _, query, headers = signed(service, operation, **params)
        assert header_service(headers["authorization"]) == service
        assert request_service(query, headers) == service


def test_other_signatures_and_no_signature_name_no_service() -> None:
    assert header_service("") is None
    assert header_service("AWS testing:c2lnbmF0dXJl") is None  # SigV2
    assert header_service("Bearer Credential=AKID/20240101/us-east-1/s3/aws4_request") is None
    assert request_service("", {}) is None


def test_a_presigned_urls_credential_names_the_service() -> None:
    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:1", region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing",
                      config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "some-bucket", "Key": "a/b.json"})
    query = urllib.parse.urlsplit(url).query

    assert presigned_service(query) == "s3"
    assert request_service(query, {}) == "s3"
    assert route("GET", "/some-bucket/a/b.json", query, {}) == Route("moto", "s3")
    assert presigned_service("AWSAccessKeyId=testing&Signature=x&Expires=1") is None  # SigV2 presigned


def test_the_target_splits_at_its_last_dot() -> None:
    assert target_operation("AWSGlue.StartJobRun") == ("AWSGlue", "StartJobRun")
    assert target_operation("Kinesis_20131202.PutRecord") == ("Kinesis_20131202", "PutRecord")
    assert target_operation(" AWSGlue.GetJobRun ") == ("AWSGlue", "GetJobRun")
    for malformed in ("", "StartJobRun", ".StartJobRun", "AWSGlue."):
        assert target_operation(malformed) is None, malformed


def test_glue_job_run_operations_go_to_the_job_run_service_and_the_rest_of_glue_to_moto() -> None:
    assert routed("glue", "start_job_run", JobName="etl") == Route("glue_runs", "glue", "StartJobRun")
    assert routed("glue", "get_job_run", JobName="etl", RunId="jr_1") == Route("glue_runs", "glue", "GetJobRun")
    assert routed("glue", "get_job_runs", JobName="etl") == Route("glue_runs", "glue", "GetJobRuns")
    assert routed("glue", "batch_stop_job_run", JobName="etl", JobRunIds=["jr_1"]) == Route(
        "glue_runs", "glue", "BatchStopJobRun")
    assert routed("glue", "get_job", JobName="etl") == Route("moto", "glue")
    assert routed("glue", "create_database", DatabaseInput={"Name": "d"}) == Route("moto", "glue")
    # Without a job-run service, every Glue call is moto's.
    assert routed("glue", "start_job_run", frozenset(), JobName="etl") == Route("moto", "glue")


def test_the_scope_decides_before_the_target() -> None:
    method, path, query, headers = signed("s3", "list_buckets")
    assert route(method, path, query, headers | {"x-amz-target": "AWSGlue.StartJobRun"}, GLUE_RUNS) == Route(
        "moto", "s3")
    # Unsigned, the target's prefix names the service.
    assert route("POST", "/", "", {"x-amz-target": "AWSGlue.GetJobRun"}, GLUE_RUNS) == Route(
        "glue_runs", "glue", "GetJobRun")
    assert route("POST", "/", "", {"x-amz-target": "Kinesis_20131202.PutRecord"}, GLUE_RUNS) == Route(
        "moto", "kinesis")


def test_lambda_invocations_are_answered_and_code_uploads_kept() -> None:
    assert routed("lambda", "invoke", FunctionName="fn") == Route("lambda_invoke", "lambda", "fn")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert routed("lambda", "invoke", FunctionName=arn) == Route("lambda_invoke", "lambda", urllib.parse.quote(
        arn, safe=""))
    assert routed("lambda", "create_function", FunctionName="fn", Runtime="python3.12", Role="r", Handler="a.b",
                  Code={"ZipFile": b"zip"}) == Route("lambda_code", "lambda")
    assert routed("lambda", "update_function_code", FunctionName="fn", ZipFile=b"zip") == Route(
        "lambda_code", "lambda")
    assert routed("lambda", "update_function_configuration", FunctionName="fn", Timeout=3) == Route(
        "lambda", "lambda")
    assert routed("lambda", "get_function", FunctionName="fn") == Route("lambda", "lambda")
    # Unsigned (curl) invocations are Lambda's; the same path signed for S3 is an object of bucket "2015-03-31".
    assert route("POST", "/2015-03-31/functions/fn/invocations", "", {}) == Route("lambda_invoke", "lambda", "fn")
    method, _, _, s3_headers = signed("s3", "list_buckets")
    assert route("POST", "/2015-03-31/functions/fn/invocations", "", s3_headers) == Route("moto", "s3")
    assert route("GET", "/2015-03-31/functions/fn/invocations", "", {}) == Route("moto", None)


def test_everything_else_goes_to_moto_and_the_control_api_is_its_own() -> None:
    assert routed("s3", "put_object", Bucket="bucket-a", Key="k", Body=b"x") == Route("moto", "s3")
    assert routed("kinesis", "put_record", StreamName="s", Data=b"x", PartitionKey="p") == Route("moto", "kinesis")
    assert routed("firehose", "list_delivery_streams") == Route("moto", "firehose")
    assert route("GET", "/_harness/status", "", {}) == Route("control", None, "status")
    assert route("POST", "/_harness/runner-crash", "", {}) == Route("control", None, "runner-crash")
