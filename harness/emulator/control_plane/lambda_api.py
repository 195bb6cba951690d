"""The Lambda API the control plane answers itself: Invoke (RequestResponse, Event, DryRun), on the functions moto
stores, run in the local runtime.

A function's configuration is read from moto (`GetFunctionConfiguration`, trusted for CONFIG_TTL_S) and its code from
the code store (`<state>/lambda/code/<sha256>.zip`, matched by moto's CodeSha256), so a changed configuration or code
restarts that function's worker. Code uploads that pass through the gateway to moto (CreateFunction,
UpdateFunctionCode) are kept in the code store too, so a function created with the aws CLI runs.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.emulator.control_plane.files import ApiError, code_store_dir, packages_dir, store_code
from harness.emulator.lambda_runtime import (
    FunctionSpec,
    InvocationResult,
    LambdaRuntime,
    LambdaRuntimeError,
    PayloadTooLarge,
    extract_package,
    request_too_large,
)

# How long a function's configuration read from moto is trusted before it is read again; the engine also calls
# /_harness/refresh after a deploy, so an `up` takes effect at once, a direct `aws lambda update-...` within this time.
CONFIG_TTL_S = 2.0
ASYNC_RETRIES = 2  # Lambda retries a failed asynchronous (Event) invocation twice.
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[\w-]*:lambda:[\w-]+:)?(?:\d{12}:)?(?:function:)?(?P<name>[\w-]+)(?::[\w$-]+)?$")


def function_name_from(identifier: str) -> str:
    """A function's name from any form Lambda accepts: name, ARN, partial ARN, with or without a qualifier."""
    match = FUNCTION_NAME.match(urllib.parse.unquote(identifier))
    if match is None:
        raise ApiError(400, "ValidationException", f"1 validation error detected: Value '{identifier}' at "
                                                   "'functionName' failed to satisfy constraint")
    return match.group("name")


class LambdaFunctions:
    """The stack's functions as Lambda runs them: looked up in moto, executed by `runtime`."""

    def __init__(self, state_dir: Path, region: str, lambda_client: Any, s3_client: Any,
                 runtime: LambdaRuntime) -> None:
        self.state_dir = state_dir
        self.region = region
        self.lambda_client = lambda_client
        self.s3 = s3_client
        self.runtime = runtime
        self._config_fetched: dict[str, float] = {}
        self._config_lock = threading.Lock()
        self.async_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-event")
        self.async_failures = 0

    def function_spec(self, name: str) -> FunctionSpec:
        """The function's spec as moto has it now (cached for CONFIG_TTL_S), its code from the local code store."""
        with self._config_lock:
            fetched = self._config_fetched.get(name)
            current = self.runtime.spec(name)
            if current is not None and fetched is not None and time.monotonic() - fetched < CONFIG_TTL_S:
                return current
            try:
                config = self.lambda_client.get_function_configuration(FunctionName=name)
            except self.lambda_client.exceptions.ResourceNotFoundException as exc:
                self.runtime.remove(name)
                raise ApiError(404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{self.region}:"
                                                                 f"123456789012:function:{name}") from exc
            spec = self._spec_from_configuration(config)
            self.runtime.deploy(spec)
            self._config_fetched[name] = time.monotonic()
            return spec

    def _spec_from_configuration(self, config: Mapping[str, Any]) -> FunctionSpec:
        name = config["FunctionName"]
        sha_hex = base64.b64decode(config["CodeSha256"]).hex()
        zip_path = code_store_dir(self.state_dir) / f"{sha_hex}.zip"
        if not zip_path.exists():
            raise ApiError(500, "ServiceException",
                           f"the code of {name} (CodeSha256 {config['CodeSha256']}) is not in the local code store "
                           f"{code_store_dir(self.state_dir)}: deploy it with `harness up`, or upload it through the "
                           "control plane's endpoint (AWS_ENDPOINT_URL) so the control plane keeps a copy")
        try:
            code_dir = extract_package(zip_path, packages_dir(self.state_dir))
        except LambdaRuntimeError as exc:
            raise ApiError(500, "ServiceException", str(exc)) from exc
        return FunctionSpec(
            name=name, handler=config["Handler"], code_dir=code_dir,
            environment=dict((config.get("Environment") or {}).get("Variables") or {}),
            timeout_s=float(config.get("Timeout", 3)), memory_mb=int(config.get("MemorySize", 128)),
            runtime=config.get("Runtime", "python3.12"), region=self.region,
            account_id=config["FunctionArn"].split(":")[4],
        )

    def forget_configurations(self) -> None:
        """Read every function's configuration from moto again at its next invocation."""
        with self._config_lock:
            self._config_fetched.clear()

    def invoke(self, identifier: str, payload: bytes, *, client_context: str | None = None) -> InvocationResult:
        name = function_name_from(identifier)
        self.function_spec(name)
        try:
            return self.runtime.invoke(name, payload, client_context=client_context)
        except PayloadTooLarge as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from exc
        except LambdaRuntimeError as exc:
            raise ApiError(400, "InvalidRequestContentException", str(exc)) from exc

    def invoke_async(self, identifier: str, payload: bytes) -> None:
        """An Event invocation: checked now, run in the background, retried like Lambda's asynchronous invocations."""
        name = function_name_from(identifier)
        too_large = request_too_large(len(payload), "Event")
        if too_large is not None:
            raise ApiError(PayloadTooLarge.status, PayloadTooLarge.code, too_large)
        self.function_spec(name)  # unknown functions fail now, as the real API does, not later in the background
        json.loads(payload or b"{}")

        def run() -> None:
            for _ in range(1 + ASYNC_RETRIES):
                try:
                    if self.invoke(name, payload).function_error is None:
                        return
                except ApiError:
                    pass
            self.async_failures += 1

        self.async_pool.submit(run)

    def invoke_processor(self, function_arn: str, event: Mapping[str, Any]) -> Any:
        """The `invoke` a FirehoseRunner calls: the processor's response; a failed invocation raises the runner's
        ProcessorError with Firehose's error code, so the runner retries and then writes the error output."""
        from harness.emulator.firehose_runner import ProcessorError

        try:
            result = self.invoke(function_arn, json.dumps(event).encode())
        except ApiError as exc:
            raise ProcessorError("Lambda.InvokeAccessDenied" if exc.status == 404 else "Lambda.FunctionError",
                                 f"{exc.code}: {exc}") from exc
        body = json.loads(result.payload)
        if result.function_error is not None:
            raise ProcessorError("Lambda.FunctionError",
                                 "The Lambda function was invoked but it returned an error result "
                                 f"({body.get('errorType')}: {body.get('errorMessage')}).")
        return body

    def answer_invoke(self, identifier: str, headers: Mapping[str, str], body: bytes
                      ) -> tuple[int, dict[str, str], bytes]:
        """The Invoke API's HTTP answer (status, headers, payload); `headers` with lower-cased names."""
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in INVOCATION_TYPES:
            raise ApiError(400, "InvalidParameterValueException",
                           f"InvocationType {invocation_type!r}: use RequestResponse, Event or DryRun")
        try:
            json.loads(body or b"{}")
        except ValueError as exc:
            raise ApiError(400, "InvalidRequestContentException",
                           f"Could not parse request body into json: {exc}") from exc
        if invocation_type == "DryRun":
            self.function_spec(function_name_from(identifier))
            return 204, {"x-amzn-RequestId": str(uuid.uuid4())}, b""
        if invocation_type == "Event":
            self.invoke_async(identifier, body)
            return 202, {"x-amzn-RequestId": str(uuid.uuid4())}, b""
        context = headers.get("x-amz-client-context")
        result = self.invoke(identifier, body, client_context=base64.b64decode(context).decode() if context else None)
        answer = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST",
                  "x-amzn-RequestId": result.request_id}
        if result.function_error:
            answer["X-Amz-Function-Error"] = result.function_error
        if headers.get("x-amz-log-type") == "Tail":
            answer["X-Amz-Log-Result"] = result.log_result_header()
        return 200, answer, result.payload

    def keep_uploaded_code(self, body: bytes) -> None:
        """CreateFunction and UpdateFunctionCode carry the package; keep a copy so the function can run locally."""
        try:
            request = json.loads(body)
        except ValueError:
            return
        code = request.get("Code", request) if isinstance(request, dict) else {}
        if not isinstance(code, dict):
            return
        if code.get("ZipFile"):
            store_code(self.state_dir, base64.b64decode(code["ZipFile"]))
        elif code.get("S3Bucket") and code.get("S3Key"):
            extra = {"VersionId": code["S3ObjectVersion"]} if code.get("S3ObjectVersion") else {}
            try:
                obj = self.s3.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"], **extra)
                store_code(self.state_dir, obj["Body"].read())
            except Exception as exc:  # moto answers the request itself with the proper error
                print(f"could not keep the package s3://{code['S3Bucket']}/{code['S3Key']}: {exc}", file=sys.stderr)

    def shutdown(self) -> None:
        self.async_pool.shutdown(wait=False, cancel_futures=True)
        self.runtime.shutdown()
