"""The local Lambda runtime behaves like Lambda for the things our functions and users rely on.

Each test deploys a small throwaway handler package (a real zip, extracted like a deployment package) into a runtime
whose logs live in a temp dir, and invokes it through real worker processes.
"""

from __future__ import annotations

import base64
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.emulator.lambda_runtime import (
    EVENT_PAYLOAD_LIMIT_BYTES,
    REQUEST_PAYLOAD_LIMIT_BYTES,
    RESPONSE_PAYLOAD_LIMIT_BYTES,
    FunctionSpec,
    LambdaRuntime,
    LambdaRuntimeError,
    PayloadTooLarge,
    extract_package,
    request_too_large,
    response_too_large_error,
)
from tests.unit.local_plane import local_plane, package

AWS_ENVIRONMENT = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    lambda_runtime = LambdaRuntime(tmp_path / "logs", AWS_ENVIRONMENT)
    yield lambda_runtime
    lambda_runtime.shutdown()


def invoke_json(runtime: LambdaRuntime, name: str, event: object = None) -> object:
    result = runtime.invoke(name, json.dumps(event or {}).encode())
    assert result.function_error is None, result.payload
    return json.loads(result.payload)


WARM_HANDLER = """
    import os
    IMPORTS = 0
    IMPORTS += 1
    calls = 0

    def handler(event, context):
        global calls
        calls += 1
        return {"imports": IMPORTS, "calls": calls, "pid": os.getpid(), "echo": event}
"""


def test_a_function_stays_warm_across_invocations_module_imported_once(runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="warm", handler="app.handler", code_dir=package(tmp_path, WARM_HANDLER)))

    first = invoke_json(runtime, "warm", {"n": 1})
    second = invoke_json(runtime, "warm", {"n": 2})

    assert first == {"imports": 1, "calls": 1, "pid": first["pid"], "echo": {"n": 1}}  # type: ignore[index]
    assert second["calls"] == 2 and second["imports"] == 1  # type: ignore[index]
    assert second["pid"] == first["pid"]  # type: ignore[index]
    assert runtime.counters["warm"].cold_starts == 1


ENV_HANDLER = """
    import os

    def handler(event, context):
        return {"env": dict(os.environ), "cwd": os.getcwd(), "context": {
            "function_name": context.function_name, "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn, "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id, "log_group_name": context.log_group_name,
            "remaining": context.get_remaining_time_in_millis()}}
"""


def test_the_function_sees_exactly_its_environment_plus_the_lambda_services_variables(
        runtime: LambdaRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_ONLY_SECRET", "must-not-leak")
    code_dir = package(tmp_path, ENV_HANDLER)
    runtime.deploy(FunctionSpec(name="env-fn", handler="app.handler", code_dir=code_dir, timeout_s=7, memory_mb=256,
                                environment={"VECTOR_DB_HOST": "127.0.0.1", "TOP_K": "5"}, region="eu-west-1"))

    result = invoke_json(runtime, "env-fn")
    env, context = result["env"], result["context"]  # type: ignore[index]

    assert env["VECTOR_DB_HOST"] == "127.0.0.1" and env["TOP_K"] == "5"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1" and env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env-fn" and env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256" and env["_HANDLER"] == "app.handler"
    assert "HARNESS_ONLY_SECRET" not in env
    assert result["cwd"] == str(code_dir)  # type: ignore[index]
    assert context["function_name"] == "env-fn" and context["memory_limit_in_mb"] == 256
    assert context["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:env-fn"
    assert context["log_group_name"] == "/aws/lambda/env-fn"
    assert len(context["aws_request_id"]) == 36
    assert 0 < context["remaining"] <= 7000


SLOW_HANDLER = """
    import time, os

    def handler(event, context):
        if event.get("sleep"):
            time.sleep(event["sleep"])
        return {"pid": os.getpid()}
"""


def test_a_timeout_kills_the_worker_reports_lambdas_error_and_the_next_invocation_works(
        runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="slow", handler="app.handler", code_dir=package(tmp_path, SLOW_HANDLER),
                                timeout_s=1))
    before = invoke_json(runtime, "slow")

    timed_out = runtime.invoke("slow", json.dumps({"sleep": 30}).encode())

    assert timed_out.function_error == "Unhandled"
    error = json.loads(timed_out.payload)
    assert error["errorType"] == "Sandbox.Timedout"
    assert error["errorMessage"] == f"RequestId: {timed_out.request_id} Error: Task timed out after 1.00 seconds"
    assert "Task timed out after 1.00 seconds" in timed_out.log_tail
    with pytest.raises(ProcessLookupError):
        os.kill(before["pid"], 0)  # type: ignore[index]
    after = invoke_json(runtime, "slow")
    assert after["pid"] != before["pid"]  # type: ignore[index]
    assert runtime.counters["slow"].timeouts == 1


FAILING_HANDLER = """
    def helper(value):
        raise ValueError(f"bad value {value}")

    def handler(event, context):
        print("about to fail")
        helper(event["value"])
"""


def test_an_unhandled_exception_comes_back_as_lambda_returns_it(runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="failing", handler="app.handler", code_dir=package(tmp_path, FAILING_HANDLER)))

    result = runtime.invoke("failing", b'{"value": 42}')

    assert result.function_error == "Unhandled"
    error = json.loads(result.payload)
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "bad value 42"
    assert error["requestId"] == result.request_id
    assert any("in helper" in frame for frame in error["stackTrace"])
    assert not any("lambda_worker" in frame for frame in error["stackTrace"])
    assert "about to fail" in result.log_tail
    assert runtime.counters["failing"].errors == 1


CRASHING_HANDLER = """
    import os

    def handler(event, context):
        if event.get("crash"):
            os._exit(3)
        return {"pid": os.getpid()}
"""


def test_a_crashed_worker_is_reported_and_restarted_on_the_next_invocation(
        runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="crashy", handler="app.handler", code_dir=package(tmp_path, CRASHING_HANDLER)))
    before = invoke_json(runtime, "crashy")

    crashed = runtime.invoke("crashy", b'{"crash": true}')

    assert crashed.function_error == "Unhandled"
    assert json.loads(crashed.payload) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 3"}
    after = invoke_json(runtime, "crashy")
    assert after["pid"] != before["pid"]  # type: ignore[index]


def test_stdout_and_logging_go_to_the_functions_log_file_with_request_markers(
        runtime: LambdaRuntime, tmp_path: Path) -> None:
    source = """
        import logging
        logger = logging.getLogger()
        logger.setLevel(logging.INFO)

        def handler(event, context):
            print("printed line")
            logger.info("logged line")
            return "ok"
    """
    runtime.deploy(FunctionSpec(name="chatty", handler="app.handler", code_dir=package(tmp_path, source)))

    result = runtime.invoke("chatty", b"{}")

    log = (tmp_path / "logs" / "chatty.log").read_text()
    assert f"START RequestId: {result.request_id} Version: $LATEST" in log
    assert "printed line" in log
    assert "[INFO]\t" in log and f"\t{result.request_id}\tlogged line" in log
    assert f"REPORT RequestId: {result.request_id}" in log
    assert "printed line" in result.log_tail


def test_an_import_error_is_reported_on_invocation_and_retried_next_time(runtime: LambdaRuntime,
                                                                          tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="broken", handler="app.handler",
                                code_dir=package(tmp_path, "import module_that_does_not_exist\n")))

    first = runtime.invoke("broken", b"{}")
    second = runtime.invoke("broken", b"{}")

    for result in (first, second):
        error = json.loads(result.payload)
        assert result.function_error == "Unhandled"
        assert error["errorType"] == "Runtime.ImportModuleError"
        assert "module_that_does_not_exist" in error["errorMessage"]
    assert runtime.counters["broken"].cold_starts == 2


def test_a_missing_handler_function_is_named(runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="nohandler", handler="app.missing", code_dir=package(tmp_path, WARM_HANDLER)))

    error = json.loads(runtime.invoke("nohandler", b"{}").payload)

    assert error["errorType"] == "Runtime.HandlerNotFound" and "missing" in error["errorMessage"]


def test_a_changed_configuration_restarts_the_worker(runtime: LambdaRuntime, tmp_path: Path) -> None:
    code_dir = package(tmp_path, ENV_HANDLER)
    runtime.deploy(FunctionSpec(name="cfg", handler="app.handler", code_dir=code_dir, environment={"TOP_K": "5"}))
    assert invoke_json(runtime, "cfg")["env"]["TOP_K"] == "5"  # type: ignore[index]

    runtime.deploy(FunctionSpec(name="cfg", handler="app.handler", code_dir=code_dir, environment={"TOP_K": "9"}))

    assert invoke_json(runtime, "cfg")["env"]["TOP_K"] == "9"  # type: ignore[index]
    assert runtime.counters["cfg"].cold_starts == 2


def test_a_result_that_is_not_json_is_a_marshal_error(runtime: LambdaRuntime, tmp_path: Path) -> None:
    source = """
        def handler(event, context):
            return {"value": object()}
    """
    runtime.deploy(FunctionSpec(name="marshal", handler="app.handler", code_dir=package(tmp_path, source)))

    error = json.loads(runtime.invoke("marshal", b"{}").payload)

    assert error["errorType"] == "Runtime.MarshalError"


def test_bad_input_to_the_runtime_says_what_was_wrong(runtime: LambdaRuntime, tmp_path: Path) -> None:
    with pytest.raises(LambdaRuntimeError, match="'ghost' is not deployed"):
        runtime.invoke("ghost", b"{}")
    runtime.deploy(FunctionSpec(name="warm", handler="app.handler", code_dir=package(tmp_path, WARM_HANDLER)))
    with pytest.raises(LambdaRuntimeError, match="not valid JSON"):
        runtime.invoke("warm", b"{not json")
    not_a_zip = tmp_path / "not.zip"
    not_a_zip.write_bytes(b"plain text")
    with pytest.raises(LambdaRuntimeError, match="not a valid deployment package"):
        extract_package(not_a_zip, tmp_path / "packages")


def test_a_package_entry_outside_its_root_is_refused(tmp_path: Path) -> None:
    zip_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("../escaped.py", "x = 1\n")

    with pytest.raises(LambdaRuntimeError, match="outside its root"):
        extract_package(zip_path, tmp_path / "packages")
    assert not (tmp_path / "escaped.py").exists()


# ---- Function URLs: the HTTP request <-> payload format 2.0 mapping the control plane applies --------------------

def url_event(**overrides: object) -> dict[str, object]:
    from harness.emulator.function_url import function_url_event

    arguments: dict[str, object] = {
        "method": "POST", "raw_path": "/items_from_user", "raw_query": "limit=3&tag=a&tag=b",
        "headers": {"Content-Type": "application/json", "X-Multi": "one", "x-multi": "two",
                    "Cookie": "a=1; b=2", "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20260101/us-east-1/"
                                                            "lambda/aws4_request, Signature=x"},
        "body": b'{"x": 1}', "source_ip": "127.0.0.1", "account_id": "123456789012", "url_id": "abc",
        "region": "us-east-1", "auth_type": "AWS_IAM", "now": 1_700_000_000.5, "request_id": "req-1"}
    arguments.update(overrides)
    return function_url_event(**arguments)  # type: ignore[arg-type]


def test_a_function_url_request_becomes_a_version_2_event() -> None:
    event = url_event()

    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/items_from_user" and event["rawQueryString"] == "limit=3&tag=a&tag=b"
    assert event["queryStringParameters"] == {"limit": "3", "tag": "a,b"}
    assert event["headers"]["x-multi"] == "one,two" and "cookie" not in event["headers"]  # type: ignore[index]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {"method": "POST", "path": "/items_from_user", "protocol": "HTTP/1.1",  # type: ignore[index]
                               "sourceIp": "127.0.0.1", "userAgent": ""}
    assert context["authorizer"]["iam"]["accessKey"] == "AKIDLOCAL"  # type: ignore[index]
    assert context["timeEpoch"] == 1_700_000_000_500  # type: ignore[index]


def test_a_binary_body_is_base64_and_an_open_url_has_no_authorizer() -> None:
    event = url_event(headers={"Content-Type": "application/octet-stream"}, body=b"\x00\xff", auth_type="NONE",
                      raw_query="")

    assert event["isBase64Encoded"] is True and event["body"] == "AP8="
    assert "authorizer" not in event["requestContext"]  # type: ignore[operator]
    assert "queryStringParameters" not in event


def result(payload: object, error: bool = False) -> object:
    from harness.emulator.lambda_runtime import InvocationResult

    return InvocationResult("req", json.dumps(payload).encode(), "Unhandled" if error else None, "", 1.0)


def test_a_function_url_response_is_mapped_as_lambda_does() -> None:
    from harness.emulator.function_url import function_url_response

    status, headers, body = function_url_response(result(  # type: ignore[arg-type]
        {"statusCode": 404, "headers": {"X-Why": "missing"}, "body": '{"error": "no item"}', "cookies": ["s=1"]}))
    assert (status, headers["X-Why"], body) == (404, "missing", b'{"error": "no item"}')
    assert headers["Set-Cookie"] == "s=1"

    status, headers, body = function_url_response(result([{"id": "S10_1678"}]))  # type: ignore[arg-type]
    assert (status, headers["Content-Type"], json.loads(body)) == (200, "application/json", [{"id": "S10_1678"}])

    status, _, body = function_url_response(result(  # type: ignore[arg-type]
        {"statusCode": 200, "body": "AP8=", "isBase64Encoded": True}))
    assert (status, body) == (200, b"\x00\xff")

    status, _, _ = function_url_response(result({"errorMessage": "boom"}, error=True))  # type: ignore[arg-type]
    assert status == 502


def test_function_names_are_read_from_every_form_lambda_accepts() -> None:
    from harness.emulator.control_plane import ApiError
    from harness.emulator.control_plane.lambda_api import function_name_from

    for identifier in ("my-fn", "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
                       "arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST", "123456789012:function:my-fn",
                       "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn"):
        assert function_name_from(identifier) == "my-fn", identifier
    with pytest.raises(ApiError):
        function_name_from("not a/name")


# ---- Lambda's payload quotas: 6 MiB requests, 6 MiB + 100 responses, 256 KiB Event payloads -----------------------

SIZED_HANDLER = """
    def handler(event, context):
        # returns a JSON string of exactly event["size"] bytes once serialized (two of them are the quotes)
        return "A" * (event["size"] - 2) if "size" in event else len(event["blob"])
"""


def test_the_quotas_are_lambdas_numbers_with_lambdas_messages() -> None:
    assert (REQUEST_PAYLOAD_LIMIT_BYTES, RESPONSE_PAYLOAD_LIMIT_BYTES, EVENT_PAYLOAD_LIMIT_BYTES) == (
        6 * 1024 * 1024, 6 * 1024 * 1024 + 100, 256 * 1024)
    assert request_too_large(6_291_456) is None
    assert request_too_large(6_291_457) == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation")
    assert request_too_large(262_144, "Event") is None
    assert request_too_large(262_145, "Event") == (
        "262145 byte payload is too large for the Event invocation type (limit 262144 bytes)")
    assert response_too_large_error(6_291_556) is None
    assert response_too_large_error(6_291_557) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge"}


def blob_event(size: int) -> bytes:
    """An event `{"blob": "xx..."}` of exactly `size` bytes."""
    payload = b'{"blob": "' + b"x" * (size - 12) + b'"}'
    assert len(payload) == size
    return payload


def test_a_request_over_6_mib_is_refused_before_the_function_runs(runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="sized", handler="app.handler", code_dir=package(tmp_path, SIZED_HANDLER)))

    at_limit = runtime.invoke("sized", blob_event(6_291_456))
    with pytest.raises(PayloadTooLarge) as refused:
        runtime.invoke("sized", blob_event(6_291_457))

    assert at_limit.function_error is None and json.loads(at_limit.payload) == 6_291_456 - 12
    assert str(refused.value) == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert (refused.value.status, refused.value.code) == (413, "RequestEntityTooLargeException")
    assert runtime.counters["sized"].invocations == 1  # the refused one never reached the function


def test_a_response_over_the_quota_is_a_function_error_and_the_worker_stays_warm(
        runtime: LambdaRuntime, tmp_path: Path) -> None:
    runtime.deploy(FunctionSpec(name="sized", handler="app.handler", code_dir=package(tmp_path, SIZED_HANDLER)))

    at_limit = runtime.invoke("sized", b'{"size": 6291556}')
    over = runtime.invoke("sized", b'{"size": 6291557}')
    after = runtime.invoke("sized", b'{"size": 12}')

    assert at_limit.function_error is None and len(at_limit.payload) == 6_291_556
    assert over.function_error == "Unhandled"
    assert over.payload == (b'{"errorMessage":"Response payload size exceeded maximum allowed payload size '
                            b'(6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}')
    assert over.error_type == "Function.ResponseSizeTooLarge"
    assert "Response payload size (6291557 bytes) exceeded" in over.log_tail
    assert json.loads(after.payload) == "A" * 10
    assert (runtime.counters["sized"].errors, runtime.counters["sized"].cold_starts) == (1, 1)


def test_the_invoke_api_fails_like_lambda_over_each_quota(tmp_path: Path) -> None:
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    with local_plane(tmp_path / "state") as local:
        local.deploy(FunctionSpec(name="sized", handler="app.handler", code_dir=package(tmp_path, SIZED_HANDLER)))
        client = boto3.client("lambda", endpoint_url=local.api_url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              config=Config(retries={"max_attempts": 1}, read_timeout=120))

        with pytest.raises(botocore.exceptions.ClientError) as sync_refused:
            client.invoke(FunctionName="sized", Payload=blob_event(6_291_457))
        with pytest.raises(botocore.exceptions.ClientError) as event_refused:
            client.invoke(FunctionName="sized", InvocationType="Event", Payload=blob_event(262_145))
        accepted_event = client.invoke(FunctionName="sized", InvocationType="Event", Payload=blob_event(262_144))
        oversized = client.invoke(FunctionName="sized", Payload=b'{"size": 6291557}')

        for refused, message in ((sync_refused, "Request must be smaller than 6291456 bytes for the InvokeFunction "
                                                "operation"),
                                 (event_refused, "262145 byte payload is too large for the Event invocation type "
                                                 "(limit 262144 bytes)")):
            error = refused.value.response
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
            assert (error["Error"]["Code"], error["Error"]["Message"]) == ("RequestEntityTooLargeException", message)
        assert accepted_event["StatusCode"] == 202
        assert (oversized["StatusCode"], oversized["FunctionError"]) == (200, "Unhandled")
        assert json.loads(oversized["Payload"].read()) == {
            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge"}


def test_an_unreadable_content_length_on_the_invoke_api_is_a_400_not_a_dropped_connection(tmp_path: Path) -> None:
    with local_plane(tmp_path / "state") as local:
        status, body = raw_request(local.api_url, b"POST /2015-03-31/functions/sized/invocations HTTP/1.1\r\n"
                                                  b"Host: x\r\nContent-Length: twelve\r\n\r\n{}")

    assert status == 400
    assert json.loads(body)["message"].startswith("Content-Length 'twelve' is not a number of bytes")


def raw_request(url: str, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client fixing the headers up); the status and body of the answer."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


OVERSIZED_PROCESSOR = """
    import base64

    def handler(event, context):
        # Each record comes back Ok with 4 MB of enrichment: any batch of two is a response over Lambda's quota.
        return {"records": [{"recordId": r["recordId"], "result": "Ok",
                             "data": base64.b64encode(b"x" * 3_000_000).decode()} for r in event["records"]]}
"""


def test_an_oversized_processor_response_is_retried_then_every_record_is_in_the_error_output(
        tmp_path: Path, moto_service: Any) -> None:
    from tests.unit.test_firehose_runner import FakeClock, Stack, drain

    s = Stack(moto_service.endpoint_url, processor={"BufferIntervalInSeconds": "0", "NumberOfRetries": "1"},
              BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    with local_plane(tmp_path / "state") as local:
        local.deploy(FunctionSpec(name="transformation", handler="app.handler", timeout_s=60,
                                  code_dir=package(tmp_path, OVERSIZED_PROCESSOR)))
        clock = FakeClock()
        runner = s.runner(local.plane.functions.invoke_processor, clock)  # type: ignore[arg-type]
        s.put([b'{"session_id": "a"}', b'{"session_id": "b"}'])
        drain(runner, clock)
        invocations = local.invocations("transformation")

    assert invocations == 2  # the first attempt and one retry
    assert s.delivered_lines() == []
    errors = s.error_documents()
    assert sorted(base64.b64decode(e["rawData"]) for e in errors) == [b'{"session_id": "a"}', b'{"session_id": "b"}']
    for e in errors:
        assert (e["errorCode"], e["attemptsMade"]) == ("Lambda.FunctionError", 2)
        assert "Function.ResponseSizeTooLarge" in e["errorMessage"]
    assert (runner.events_read, runner.records_delivered, runner.records_failed) == (2, 0, 2)
