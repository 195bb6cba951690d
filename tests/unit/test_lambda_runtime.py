"""The local Lambda runtime behaves like Lambda for the things our functions and users rely on.

Each test deploys a small throwaway handler package (a real zip, extracted like a deployment package) into a runtime
whose logs live in a temp dir, and invokes it through real worker processes.
"""

from __future__ import annotations

import json
import os
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lambda_runtime import FunctionSpec, LambdaRuntime, LambdaRuntimeError, extract_package

AWS_ENVIRONMENT = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing"}


def package(tmp_path: Path, source: str, module: str = "app") -> Path:
    """A deployment package zip with one handler module, extracted as the runtime would."""
    zip_path = tmp_path / f"{module}.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(f"{module}.py", textwrap.dedent(source))
    return extract_package(zip_path, tmp_path / "packages")


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


# ---- Function URLs: the HTTP request <-> payload format 2.0 mapping the daemon applies ------------------------------

def url_event(**overrides: object) -> dict[str, object]:
    from harness.daemon import function_url_event

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
    from harness.lambda_runtime import InvocationResult

    return InvocationResult("req", json.dumps(payload).encode(), "Unhandled" if error else None, "", 1.0)


def test_a_function_url_response_is_mapped_as_lambda_does() -> None:
    from harness.daemon import function_url_response

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
    from harness.daemon import ApiError, function_name_from

    for identifier in ("my-fn", "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
                       "arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST", "123456789012:function:my-fn",
                       "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn"):
        assert function_name_from(identifier) == "my-fn", identifier
    with pytest.raises(ApiError):
        function_name_from("not a/name")
