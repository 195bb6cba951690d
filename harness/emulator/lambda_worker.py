"""One Lambda execution environment: `python -m harness.emulator.lambda_worker --code-dir DIR --handler MOD.FN --fds
R,W`.

The parent (`harness.emulator.lambda_runtime.LambdaRuntime`) starts one worker per function with exactly the function's
environment, its stdout/stderr pointing at `.local/logs/<function>.log`, and two pipe descriptors for the protocol. The
worker imports the handler module once (the init phase, so module-level clients and models stay warm), then serves one
invocation at a time until its request pipe closes. Standard library only: nothing here may shadow the function's own
imports.

Protocol, both directions: 4-byte big-endian length + UTF-8 JSON.
  worker -> parent, once: {"type": "ready"} or {"type": "init_error", "error": {...}} (then the worker exits)
  parent -> worker: {"type": "invoke", "request_id", "payload" (JSON text), "deadline_ms" (epoch),
                     "invoked_function_arn", "client_context" (JSON text or null), "identity" (object or null)}
  worker -> parent: {"type": "result", "payload": JSON text}
                    or {"type": "error", "error": {errorMessage, errorType, stackTrace, requestId}}
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import resource
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")


def write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode("utf-8")
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    """The next message, or None when the other side closed the pipe."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    body = _read_exactly(stream, length)
    if body is None:
        return None
    message: dict[str, Any] = json.loads(body.decode("utf-8"))
    return message


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = stream.read(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


@dataclass
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass
class ClientContext:
    client: dict[str, Any] | None = None
    custom: dict[str, Any] | None = None
    env: dict[str, Any] | None = None


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object (`awslambdaric.lambda_context`)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)
    client_context: ClientContext | None = None
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(message)
        sys.stdout.flush()


def error_object(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    """The Python runtime's error shape: the stack trace without the runtime's own frames."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
    error: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }
    if request_id is not None:
        error["requestId"] = request_id
    return error


class _RequestIdFilter(logging.Filter):
    """Puts the current request id on every record, as the Lambda runtime's log handler does."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _install_lambda_logging(request_filter: _RequestIdFilter) -> None:
    # The runtime's root handler format; the root level stays WARNING unless the function changes it, like on AWS.
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(request_filter)
    formatter = logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                                  "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)


def _load_handler(handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name or not function_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from exc
    except Exception as exc:
        # The module raised while loading (a bad environment variable read at import time, say): the same error the
        # function's first invocation reports on AWS.
        raise _InitError("Runtime.UserCodeSyntaxError" if isinstance(exc, SyntaxError) else type(exc).__name__,
                         str(exc), exc) from exc
    target = getattr(module, function_name, None)
    if target is None:
        raise _InitError("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")
    return target


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.cause = cause

    def as_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"errorMessage": str(self), "errorType": self.error_type, "stackTrace": []}
        if self.cause is not None:
            error["stackTrace"] = error_object(self.cause)["stackTrace"]
        return error


def _flush_logs() -> None:
    sys.stdout.flush()
    sys.stderr.flush()


def serve(handler: str, requests: BinaryIO, replies: BinaryIO) -> int:
    request_filter = _RequestIdFilter()
    _install_lambda_logging(request_filter)
    try:
        function = _load_handler(handler)
    except _InitError as exc:
        print(f"[ERROR] {exc.error_type}: {exc}", flush=True)
        write_message(replies, {"type": "init_error", "error": exc.as_error()})
        return 1
    write_message(replies, {"type": "ready"})

    env = os.environ
    while True:
        message = read_message(requests)
        if message is None:
            return 0
        request_id = message["request_id"]
        request_filter.request_id = request_id
        context = LambdaContext(
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
            function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            invoked_function_arn=message["invoked_function_arn"],
            memory_limit_in_mb=int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
            aws_request_id=request_id,
            log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
            log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            deadline_ms=int(message["deadline_ms"]),
            identity=CognitoIdentity(**(message.get("identity") or {})),
            client_context=ClientContext(**json.loads(message["client_context"]))
            if message.get("client_context") else None,
        )
        print(f"START RequestId: {request_id} Version: {context.function_version}", flush=True)
        started = time.monotonic()
        reply: dict[str, Any]
        try:
            result = function(json.loads(message["payload"]), context)
            try:
                reply = {"type": "result", "payload": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                reply = {"type": "error", "error": {"errorMessage": f"Unable to marshal response: {exc}",
                                                    "errorType": "Runtime.MarshalError", "requestId": request_id,
                                                    "stackTrace": []}}
        except Exception as exc:
            error = error_object(exc, request_id)
            # The runtime logs the unhandled error as one JSON line before returning it, as on AWS.
            print(json.dumps({"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "ERROR",
                              "message": error}), flush=True)
            reply = {"type": "error", "error": error}
        duration_ms = (time.monotonic() - started) * 1000
        max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: "
              f"{int(duration_ms) + 1} ms\tMemory Size: {context.memory_limit_in_mb} MB\tMax Memory Used: "
              f"{max_rss_mb} MB", flush=True)
        _flush_logs()
        write_message(replies, reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.emulator.lambda_worker")
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--fds", required=True, help="request-read,reply-write pipe descriptors")
    args = parser.parse_args(argv)
    read_fd, write_fd = (int(fd) for fd in args.fds.split(","))

    # The function sees its own code first and nothing of the harness: `-m` put the repository root on sys.path.
    harness_root = os.getcwd()
    sys.path[:] = [args.code_dir] + [p for p in sys.path if p not in ("", harness_root)]
    os.chdir(args.code_dir)
    for name in [name for name in sys.modules if name == "harness" or name.startswith("harness.")]:
        sys.modules.pop(name)

    with os.fdopen(read_fd, "rb", buffering=0) as requests, os.fdopen(write_fd, "wb", buffering=0) as replies:
        return serve(args.handler, requests, replies)


if __name__ == "__main__":
    sys.exit(main())
