"""The local control plane: `python -m harness.emulator.daemon`, started in the background by `harness up`, stopped
by `down`.

moto stores the Lambda and Firehose configuration but runs nothing, so the daemon drives the hops itself:
- the Lambda Invoke API over HTTP (`POST /2015-03-31/functions/{name}/invocations`, RequestResponse / Event / DryRun,
  `X-Amz-Function-Error`, `X-Amz-Log-Result` when `LogType=Tail`): `boto3.client("lambda", endpoint_url=<daemon>)` and
  `aws lambda invoke --endpoint-url <daemon>` work. Every other Lambda call is forwarded to moto unchanged; code
  uploads that pass through (CreateFunction, UpdateFunctionCode) are also kept in the local code store.
- each function runs in its warm worker (`harness.emulator.lambda_runtime`); its configuration is read from moto and
its code
  from the code store (`<state>/lambda/code/<sha256>.zip`, matched by moto's CodeSha256), so a changed configuration
  or code restarts that function's worker.
- one HTTP server per Function URL on 127.0.0.1 (request -> Function URL event v2.0 -> worker -> HTTP response).
- one `harness.emulator.firehose_runner.FirehoseRunner` thread per delivery stream (Kinesis source -> processor -> S3).
- `GET /_harness/status` (functions, invocations, errors, runner counters) for `harness status`;
  `POST /_harness/refresh` and `POST /_harness/function-urls` for the engine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.emulator.function_url import (
    Rejection,
    check_sigv4,
    function_url_event,
    function_url_response,
    request_body_length,
)
from harness.emulator.lambda_runtime import (
    FunctionSpec,
    InvocationResult,
    LambdaRuntime,
    LambdaRuntimeError,
    PayloadTooLarge,
    extract_package,
    request_too_large,
)
from harness.emulator.services import pid_alive

if TYPE_CHECKING:
    from harness.emulator.services import RunningServices

HOST = "127.0.0.1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# The credentials an AWS_IAM Function URL accepts (access key id -> secret): the stack's, as `harness env` exports them.
STACK_CREDENTIALS = {DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]: DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
# How long a function's configuration read from moto is trusted before it is read again; the engine also calls
# /_harness/refresh after a deploy, so an `up` takes effect at once, a direct `aws lambda update-...` within this time.
CONFIG_TTL_S = 2.0
# Delivery streams created or changed outside `up` (the aws CLI against moto) are picked up this often.
RESCAN_INTERVAL_S = 5.0
START_TIMEOUT_S = 30.0
ASYNC_RETRIES = 2  # Lambda retries a failed asynchronous (Event) invocation twice.
# A request answered before its body is read (too large, unreadable length): how much of the rest is read and thrown
# away, and how long a quiet client is waited for, before the connection is closed.
LINGER_MAX_BYTES = 64 << 20
LINGER_IDLE_S = 1.0

InvocationType = Literal["RequestResponse", "Event", "DryRun"]
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[\w-]*:lambda:[\w-]+:)?(?:\d{12}:)?(?:function:)?(?P<name>[\w-]+)(?::[\w$-]+)?$")


class DaemonError(RuntimeError):
    """The daemon could not be started or reached; the message says what to do."""


class ApiError(Exception):
    """An error the Lambda API returns to its client (botocore reads the code from `x-amzn-ErrorType`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# ---------------------------------------------------------------------------------------------------------------------
# files under the state dir


def daemon_dir(state_dir: Path) -> Path:
    return state_dir / "daemon"


def code_store_dir(state_dir: Path) -> Path:
    return state_dir / "lambda" / "code"


def packages_dir(state_dir: Path) -> Path:
    return state_dir / "lambda" / "packages"


def logs_dir(state_dir: Path) -> Path:
    return state_dir / "logs"


def store_code(state_dir: Path, zip_bytes: bytes) -> str:
    """Keep a deployment package where the daemon finds it by moto's CodeSha256; returns that CodeSha256 (base64)."""
    digest = hashlib.sha256(zip_bytes)
    target = code_store_dir(state_dir) / f"{digest.hexdigest()}.zip"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
        staging.write_bytes(zip_bytes)
        os.replace(staging, target)
    return base64.b64encode(digest.digest()).decode("ascii")


def function_name_from(identifier: str) -> str:
    """A function's name from any form Lambda accepts: name, ARN, partial ARN, with or without a qualifier."""
    match = FUNCTION_NAME.match(urllib.parse.unquote(identifier))
    if match is None:
        raise ApiError(400, "ValidationException", f"1 validation error detected: Value '{identifier}' at "
                                                   "'functionName' failed to satisfy constraint")
    return match.group("name")


# ---------------------------------------------------------------------------------------------------------------------
# the control plane


@dataclass
class FunctionUrlServer:
    function_name: str
    auth_type: str
    server: ThreadingHTTPServer
    thread: threading.Thread
    url_id: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/"


@dataclass
class DeliveryStreamRunner:
    name: str
    version_id: str
    runner: Any
    stop: threading.Event
    thread: threading.Thread
    error: str | None = None


class ControlPlane:
    def __init__(self, state_dir: Path, moto_url: str, region: str, api_url: str) -> None:
        import boto3

        self.state_dir = state_dir
        self.moto_url = moto_url.rstrip("/")
        self.region = region
        self.api_url = api_url
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=region)
        self.lambda_client = session.client("lambda", endpoint_url=self.moto_url)
        self.s3 = session.client("s3", endpoint_url=self.moto_url)
        self.kinesis = session.client("kinesis", endpoint_url=self.moto_url)
        self.firehose = session.client("firehose", endpoint_url=self.moto_url)
        self.runtime = LambdaRuntime(logs_dir(state_dir), {
            "AWS_ENDPOINT_URL": self.moto_url, "AWS_ENDPOINT_URL_LAMBDA": api_url, **DUMMY_CREDENTIALS})
        self._config_fetched: dict[str, float] = {}
        self._config_lock = threading.Lock()
        self.function_urls: dict[str, FunctionUrlServer] = {}
        self.delivery_streams: dict[str, DeliveryStreamRunner] = {}
        self._streams_lock = threading.Lock()
        self.async_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lambda-event")
        self.async_failures = 0
        self.started = time.time()

    # -- functions -------------------------------------------------------------------------------------------------

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
                           f"{code_store_dir(self.state_dir)}: deploy it with `python -m harness up`, or upload it "
                           "through the daemon's Lambda endpoint (AWS_ENDPOINT_URL_LAMBDA) so the daemon keeps a copy")
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

    def refresh(self) -> dict[str, Any]:
        with self._config_lock:
            self._config_fetched.clear()
        self.sync_delivery_streams()
        return {"functions": sorted(self.runtime.status()), "delivery_streams": sorted(self.delivery_streams)}

    # -- Function URLs -----------------------------------------------------------------------------------------------

    def ensure_function_url(self, function_name: str, port: int = 0) -> FunctionUrlServer:
        config = self.lambda_client.get_function_url_config(FunctionName=function_name)
        existing = self.function_urls.get(function_name)
        if existing is not None:
            existing.auth_type = config["AuthType"]
            return existing
        url_id = re.sub(r"^https://([^.]+)\..*$", r"\1", config.get("FunctionUrl", "")) or uuid.uuid4().hex[:32]
        try:
            server = ThreadingHTTPServer((HOST, port), _function_url_handler(self, function_name))
        except OSError:
            server = ThreadingHTTPServer((HOST, 0), _function_url_handler(self, function_name))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name=f"url-{function_name}", daemon=True)
        thread.start()
        entry = FunctionUrlServer(function_name, config["AuthType"], server, thread, url_id)
        self.function_urls[function_name] = entry
        self._save_function_urls()
        return entry

    def _save_function_urls(self) -> None:
        path = daemon_dir(self.state_dir) / "function_urls.json"
        data = {name: {"port": entry.server.server_address[1], "url": entry.url}
                for name, entry in self.function_urls.items()}
        _write_json_atomic(path, data)

    def restore_function_urls(self) -> None:
        """After a daemon restart, serve the same Function URLs on the same ports (the stack outputs name them)."""
        path = daemon_dir(self.state_dir) / "function_urls.json"
        if not path.exists():
            return
        for name, entry in json.loads(path.read_text()).items():
            try:
                self.ensure_function_url(name, int(entry["port"]))
            except Exception as exc:  # a function deleted since: its URL is simply not served
                print(f"function URL of {name} not restored: {exc}", file=sys.stderr, flush=True)

    # -- delivery streams --------------------------------------------------------------------------------------------

    def sync_delivery_streams(self) -> None:
        """One runner per delivery stream; a changed stream (new VersionId) gets a fresh runner."""
        if importlib.util.find_spec("harness.emulator.firehose_runner") is None:
            return
        from harness.emulator.firehose_runner import FirehoseRunner

        with self._streams_lock:
            names = self.firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
            for name in set(self.delivery_streams) - set(names):
                self._stop_runner(self.delivery_streams.pop(name))
            for name in names:
                description = self.firehose.describe_delivery_stream(DeliveryStreamName=name)
                version = description["DeliveryStreamDescription"]["VersionId"]
                current = self.delivery_streams.get(name)
                # A deleted and re-created stream starts again at VersionId 1: the creation time tells them apart.
                version = f"{version}@{description['DeliveryStreamDescription'].get('CreateTimestamp')}"
                if current is not None and current.version_id == version and current.thread.is_alive():
                    continue
                if current is not None:
                    self._stop_runner(current)
                # Checkpoints survive a daemon restart, so a restarted runner resumes after what it delivered.
                runner = FirehoseRunner(description["DeliveryStreamDescription"], self.kinesis, self.s3,
                                        self.invoke_processor, time.time,
                                        state_path=daemon_dir(self.state_dir) / "firehose" / f"{name}.json")
                stop = threading.Event()
                entry = DeliveryStreamRunner(name, version, runner, stop, threading.Thread())
                entry.thread = threading.Thread(target=self._run_runner, args=(entry,), name=f"firehose-{name}",
                                                daemon=True)
                self.delivery_streams[name] = entry
                entry.thread.start()

    @staticmethod
    def _run_runner(entry: DeliveryStreamRunner) -> None:
        try:
            entry.runner.run(entry.stop)
        except Exception as exc:  # shown in `harness status`; the next rescan starts a fresh runner
            entry.error = f"{type(exc).__name__}: {exc}"
            print(f"delivery stream {entry.name}: runner stopped: {entry.error}", file=sys.stderr, flush=True)

    def crash_runner(self, name: str) -> dict[str, Any]:
        """Kill one delivery stream's runner as a process crash would (the soak's `runner_kill`: no flush, what it held
        in memory is lost) and start a fresh one from its checkpoint file, as Firehose replaces a failed worker."""
        with self._streams_lock:
            entry = self.delivery_streams.get(name)
            if entry is None:
                raise ApiError(404, "ResourceNotFoundException", f"no runner for delivery stream {name}")
            held = entry.runner.records_buffered
            entry.runner.crash()
            entry.stop.set()
            entry.thread.join(timeout=30)
        self.sync_delivery_streams()  # the dead thread is replaced by a runner built from the saved state
        return {"delivery_stream": name, "records_lost_from_memory": held}

    @staticmethod
    def _stop_runner(entry: DeliveryStreamRunner) -> None:
        entry.stop.set()
        entry.thread.join(timeout=30)

    def rescan_forever(self, stop: threading.Event) -> None:
        while not stop.wait(RESCAN_INTERVAL_S):
            try:
                self.sync_delivery_streams()
            except Exception as exc:
                print(f"delivery stream rescan failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    # -- status and shutdown -----------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        streams: dict[str, Any] = {}
        for name, entry in sorted(self.delivery_streams.items()):
            counters = entry.runner.stats() if hasattr(entry.runner, "stats") else {
                key: getattr(entry.runner, key, None)
                for key in ("events_read", "records_delivered", "records_failed", "objects_written")}
            streams[name] = {**counters, "running": entry.thread.is_alive(),
                             "error": entry.error or counters.get("last_error")}
        return {
            "daemon": {"pid": os.getpid(), "url": self.api_url, "moto_url": self.moto_url, "region": self.region,
                       "uptime_s": round(time.time() - self.started, 1), "async_failures": self.async_failures},
            "functions": self.runtime.status(),
            "function_urls": {name: {"url": entry.url, "auth_type": entry.auth_type}
                              for name, entry in sorted(self.function_urls.items())},
            "delivery_streams": streams,
            "firehose_runner_available": importlib.util.find_spec("harness.emulator.firehose_runner") is not None,
        }

    def shutdown(self) -> None:
        for entry in list(self.delivery_streams.values()):
            entry.stop.set()
        for entry in list(self.delivery_streams.values()):
            entry.thread.join(timeout=10)
        for url in self.function_urls.values():
            url.server.shutdown()
            url.server.server_close()
        self.async_pool.shutdown(wait=False, cancel_futures=True)
        self.runtime.shutdown()

    # -- proxy to moto -----------------------------------------------------------------------------------------------

    def forward_to_moto(self, method: str, path: str, headers: Mapping[str, str], body: bytes
                        ) -> tuple[int, list[tuple[str, str]], bytes]:
        if method in ("POST", "PUT") and body:
            self._keep_uploaded_code(path, body)
        parsed = urllib.parse.urlsplit(self.moto_url)
        connection = http.client.HTTPConnection(parsed.hostname or HOST, parsed.port or 80, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")}
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            data = response.read()
            response_headers = [(k, v) for k, v in response.getheaders()
                                if k.lower() not in ("transfer-encoding", "connection", "content-length", "server",
                                                     "date")]
            return response.status, response_headers, data
        finally:
            connection.close()
            if method != "GET":
                with self._config_lock:
                    self._config_fetched.clear()

    def _keep_uploaded_code(self, path: str, body: bytes) -> None:
        """CreateFunction and UpdateFunctionCode carry the package; keep a copy so the function can run locally."""
        if not re.match(r"^/2015-03-31/functions(/[^/]+/code)?/?$", path.split("?")[0]):
            return
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


# ---------------------------------------------------------------------------------------------------------------------
# HTTP handlers


class _QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        # One line per request would drown the daemon log during streaming; errors are logged where they happen.
        return

    def read_body(self, length: int) -> bytes:
        return self.rfile.read(length) if length else b""

    def refuse(self, status: int, body: bytes, headers: Mapping[str, str], unread: int) -> None:
        """Answer before (all of) the body is read, then close. The rest of the body is read and thrown away (never
        kept, at most `unread` bytes, until the client goes quiet): closing a socket with unread data resets the
        connection, and the client would see the reset instead of this answer."""
        self.close_connection = True
        self.send(status, body, {**headers, "Connection": "close"})
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(LINGER_IDLE_S)
            remaining = min(unread, LINGER_MAX_BYTES)
            while remaining > 0:
                chunk = self.rfile.read1(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:  # the client went away or went quiet: nothing more to wait for
            pass

    def send(self, status: int, body: bytes, headers: Mapping[str, str] | list[tuple[str, str]] | None = None) -> None:
        self.send_response(status)
        items = headers.items() if isinstance(headers, Mapping) else (headers or [])
        for key, value in items:
            self.send_header(key.rstrip(), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value: Any, headers: Mapping[str, str] | None = None) -> None:
        self.send(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


def _api_handler(plane: ControlPlane) -> type[BaseHTTPRequestHandler]:
    class ApiHandler(_QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.route()

        def do_POST(self) -> None:  # noqa: N802
            self.route()

        def do_PUT(self) -> None:  # noqa: N802
            self.route()

        def do_DELETE(self) -> None:  # noqa: N802
            self.route()

        def do_PATCH(self) -> None:  # noqa: N802
            self.route()

        def route(self) -> None:
            path, _, query = self.path.partition("?")
            # Code uploads passing to moto may be large (50 MB zips, base64): only invocations have a quota.
            length = request_body_length(self.headers.get_all("Content-Length") or [],
                                         self.headers.get("Transfer-Encoding"), limit=None)
            if isinstance(length, Rejection):
                self.refuse(length.status, json.dumps({"Type": "User", "message": length.message}).encode(),
                            {"Content-Type": "application/json", "x-amzn-ErrorType": "InvalidRequestContentException"},
                            unread=LINGER_MAX_BYTES)
                return
            if self.command == "POST" and INVOKE_PATH.match(path):
                too_large = request_too_large(length, self.invocation_type())
                if too_large is not None:  # refused before the payload is read, as Lambda does
                    self.refuse(PayloadTooLarge.status, json.dumps({"Type": "User", "message": too_large}).encode(),
                                {"Content-Type": "application/json", "x-amzn-ErrorType": PayloadTooLarge.code},
                                unread=length)
                    return
            body = self.read_body(length)
            try:
                if path == "/_harness/status" and self.command == "GET":
                    self.send_json(200, plane.status())
                elif path == "/_harness/refresh" and self.command == "POST":
                    self.send_json(200, plane.refresh())
                elif path == "/_harness/function-urls" and self.command == "POST":
                    request = json.loads(body or b"{}")
                    entry = plane.ensure_function_url(request["function_name"])
                    self.send_json(200, {"function_name": entry.function_name, "url": entry.url})
                elif path == "/_harness/runner-crash" and self.command == "POST":
                    request = json.loads(body or b"{}")
                    self.send_json(200, plane.crash_runner(str(request["delivery_stream"])))
                elif (match := INVOKE_PATH.match(path)) and self.command == "POST":
                    self.invoke(match.group("name"), query, body)
                else:
                    status, headers, data = plane.forward_to_moto(self.command, self.path, dict(self.headers), body)
                    self.send(status, data, headers)
            except ApiError as exc:
                self.send_json(exc.status, {"Type": "User", "message": str(exc)}, {"x-amzn-ErrorType": exc.code})
            except Exception as exc:
                print(f"{self.command} {self.path} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                self.send_json(500, {"Type": "Service", "message": f"{type(exc).__name__}: {exc}"},
                               {"x-amzn-ErrorType": "ServiceException"})

        def invocation_type(self) -> Literal["RequestResponse", "Event"]:
            return "Event" if self.headers.get("X-Amz-Invocation-Type") == "Event" else "RequestResponse"

        def invoke(self, identifier: str, query: str, body: bytes) -> None:
            invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if invocation_type not in ("RequestResponse", "Event", "DryRun"):
                raise ApiError(400, "InvalidParameterValueException",
                               f"InvocationType {invocation_type!r}: use RequestResponse, Event or DryRun")
            try:
                json.loads(body or b"{}")
            except ValueError as exc:
                raise ApiError(400, "InvalidRequestContentException",
                               f"Could not parse request body into json: {exc}") from exc
            if invocation_type == "DryRun":
                plane.function_spec(function_name_from(identifier))
                self.send(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})
                return
            if invocation_type == "Event":
                plane.invoke_async(identifier, body)
                self.send(202, b"", {"x-amzn-RequestId": str(uuid.uuid4())})
                return
            context = self.headers.get("X-Amz-Client-Context")
            result = plane.invoke(identifier, body,
                                  client_context=base64.b64decode(context).decode() if context else None)
            headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST",
                       "x-amzn-RequestId": result.request_id}
            if result.function_error:
                headers["X-Amz-Function-Error"] = result.function_error
            if self.headers.get("X-Amz-Log-Type") == "Tail":
                headers["X-Amz-Log-Result"] = result.log_result_header()
            self.send(200, result.payload, headers)

    return ApiHandler


def _function_url_handler(plane: ControlPlane, function_name: str) -> type[BaseHTTPRequestHandler]:
    class FunctionUrlHandler(_QuietHandler):
        def handle_any(self) -> None:
            json_type = {"Content-Type": "application/json"}
            length = request_body_length(self.headers.get_all("Content-Length") or [],
                                         self.headers.get("Transfer-Encoding"))
            if isinstance(length, Rejection):  # 400, 411, or 413 before a byte of the body is read
                declared = self.headers.get("Content-Length", "")
                self.refuse(length.status, length.body(), json_type,
                            unread=int(declared) if declared.isascii() and declared.isdigit() else LINGER_MAX_BYTES)
                return
            body = self.read_body(length)
            entry = plane.function_urls[function_name]
            raw_path, _, raw_query = self.path.partition("?")
            if entry.auth_type == "AWS_IAM":
                # As on AWS: an AWS_IAM URL runs the function only for a request signed (SigV4, service "lambda")
                # with the stack's credentials; the signature is recomputed, not just looked at.
                verdict = check_sigv4(method=self.command, raw_path=raw_path, raw_query=raw_query,
                                      headers=self.headers.items(), body=body, credentials=STACK_CREDENTIALS,
                                      region=plane.region)
                if isinstance(verdict, Rejection):
                    self.send(verdict.status, verdict.body(), json_type)
                    return
            request_id = str(uuid.uuid4())
            event = function_url_event(
                method=self.command, raw_path=raw_path, raw_query=raw_query, headers=dict(self.headers.items()),
                body=body, source_ip=self.client_address[0], account_id="123456789012", url_id=entry.url_id,
                region=plane.region, auth_type=entry.auth_type, now=time.time(), request_id=request_id)
            try:
                result = plane.invoke(function_name, json.dumps(event).encode())
            except ApiError as exc:
                self.send_json(502 if exc.status >= 500 else exc.status, {"Message": str(exc)})
                return
            status, headers, payload = function_url_response(result)
            self.send(status, payload, {**headers, "x-amzn-RequestId": request_id})

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any  # noqa: N815

    return FunctionUrlHandler


# ---------------------------------------------------------------------------------------------------------------------
# process lifecycle


@dataclass(frozen=True)
class DaemonInfo:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def _write_json_atomic(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps(value, indent=2))
    os.replace(staging, path)


def read_daemon_info(state_dir: Path) -> DaemonInfo | None:
    """The running daemon of this state dir, or None when there is none (or its process is gone)."""
    path = daemon_dir(state_dir) / "daemon.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    info = DaemonInfo(pid=int(data["pid"]), port=int(data["port"]))
    return info if pid_alive(info.pid) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def start_daemon(state_dir: Path, services: RunningServices, *, region: str = "us-east-1",
                 timeout_s: float = START_TIMEOUT_S) -> DaemonInfo:
    """Start the daemon in the background (idempotent: a running one for this state dir is returned as is)."""
    state_dir = state_dir.resolve()
    running = read_daemon_info(state_dir)
    recorded = _read_json(daemon_dir(state_dir) / "daemon.json")
    if running is not None and recorded.get("moto_url") == services.moto.endpoint_url \
            and recorded.get("region") == region:
        return running
    if running is not None:
        # moto was restarted (new port, empty state) or the region changed: a daemon bound to the old one would serve
        # functions that no longer exist, and its stream checkpoints point into streams that are gone.
        stop_daemon(state_dir)
    if recorded.get("moto_url") not in (None, services.moto.endpoint_url):
        shutil.rmtree(daemon_dir(state_dir) / "firehose", ignore_errors=True)
    info_path = daemon_dir(state_dir) / "daemon.json"
    info_path.unlink(missing_ok=True)
    log_path = logs_dir(state_dir) / "daemon.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.emulator.daemon", "--state-dir", str(state_dir),
             "--moto-url", services.moto.endpoint_url, "--region", region],
            cwd=Path(__file__).resolve().parents[2], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DaemonError(f"the local control plane exited (status {process.returncode}) while starting; "
                              f"last lines of {log_path}:\n{_tail(log_path)}")
        info = read_daemon_info(state_dir)
        if info is not None and info.pid == process.pid and _healthy(info):
            return info
        time.sleep(0.1)
    process.kill()
    raise DaemonError(f"the local control plane did not answer within {timeout_s:.0f} s; last lines of {log_path}:\n"
                      f"{_tail(log_path)}")


def stop_daemon(state_dir: Path, pid: int | None = None, timeout_s: float = 20.0) -> None:
    """Stop the daemon (its workers, URL servers and runners stop with it). Idempotent."""
    info = read_daemon_info(state_dir.resolve())
    target = pid if pid is not None else (info.pid if info else None)
    if target is not None and pid_alive(target):
        try:
            os.kill(target, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout_s
        while pid_alive(target) and time.monotonic() < deadline:
            _reap(target)
            time.sleep(0.1)
        if pid_alive(target):
            try:
                os.killpg(target, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _reap(target)
    (daemon_dir(state_dir) / "daemon.json").unlink(missing_ok=True)
    _record_in_state(state_dir, None)


def _record_in_state(state_dir: Path, section: dict[str, Any] | None) -> None:
    """state.json["daemon"]: what `harness env` exports as AWS_ENDPOINT_URL_LAMBDA; removed when the daemon stops."""
    from harness.emulator import state

    def change(current: dict[str, Any]) -> None:
        if section is None:
            current.pop("daemon", None)
        else:
            current["daemon"] = section

    if section is None and not state.state_path(state_dir).exists():
        return
    state.update_state(state_dir, change)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _healthy(info: DaemonInfo) -> bool:
    try:
        with urllib.request.urlopen(f"{info.url}/_harness/status", timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(log not readable: {exc})"


class DaemonClient:
    """What the engine and `harness status` call on a running daemon."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise DaemonError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from exc
        except urllib.error.URLError as exc:
            raise DaemonError(f"the local control plane at {self.url} is not reachable ({exc.reason}): "
                              "start the stack with `python -m harness up`") from exc

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/_harness/status")
        return result

    def refresh(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_harness/refresh", {})
        return result

    def crash_runner(self, delivery_stream: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/_harness/runner-crash", {"delivery_stream": delivery_stream})
        return result

    def register_function_url(self, function_name: str) -> str:
        return str(self._call("POST", "/_harness/function-urls", {"function_name": function_name})["url"])


def stop(state_dir: Path) -> None:
    """What `harness down` calls before the services stop (and `up` when moto died): the daemon, then the local
    servers that stand for RDS instances (their data goes too, as `down` removes the databases' data), then the
    daemon's own state."""
    stop_daemon(state_dir)
    from harness.emulator.materializers.databases import stop_instances

    stop_instances(state_dir.resolve(), remove_data=True)
    forget_state(state_dir)


def forget_state(state_dir: Path) -> None:
    """Delete what the daemon keeps across its own restarts: the delivery runners' checkpoints and counters
    (`daemon/firehose/`) and the Function URLs' ports. They describe streams and functions that live in moto's memory
    and end with it; a checkpoint that outlived its stream made the next stream's first records vanish, and counters
    that outlived it counted another stack's records."""
    shutil.rmtree(daemon_dir(state_dir.resolve()), ignore_errors=True)


def status(state_dir: Path) -> dict[str, int | str]:
    """Flat counters for `harness status`: the daemon, its functions and its delivery-stream runners."""
    info = read_daemon_info(state_dir.resolve())
    if info is None:
        return {"daemon": "stopped"}
    try:
        detail = DaemonClient(info.url).status()
    except DaemonError as exc:
        return {"daemon": f"not answering (pid {info.pid}): {exc}"}
    flat: dict[str, int | str] = {"daemon": "running", "daemon_pid": info.pid, "lambda_endpoint": info.url}
    for name, function in detail["functions"].items():
        flat[f"lambda {name}"] = (f"{function['invocations']} invocations, {function['errors']} errors, "
                                  f"{function['timeouts']} timeouts, worker "
                                  f"{function['worker_pid'] or 'not started'}")
    for name, url in detail["function_urls"].items():
        flat[f"function url {name}"] = url["url"]
    for name, stream in detail["delivery_streams"].items():
        for counter in ("events_read", "records_delivered", "records_failed", "objects_written"):
            value = stream.get(counter)
            flat[f"firehose {name} {counter}"] = int(value) if isinstance(value, int) else str(value)
        if stream.get("error"):
            flat[f"firehose {name} error"] = str(stream["error"])
    return flat


def serve(state_dir: Path, moto_url: str, region: str, ready: Callable[[DaemonInfo], None] | None = None) -> None:
    server = ThreadingHTTPServer((HOST, 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    port = server.server_address[1]
    plane = ControlPlane(state_dir, moto_url, region, f"http://{HOST}:{port}")
    server.RequestHandlerClass = _api_handler(plane)
    plane.restore_function_urls()
    try:
        plane.sync_delivery_streams()
    except Exception as exc:
        print(f"delivery streams not started: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    stop = threading.Event()
    threading.Thread(target=plane.rescan_forever, args=(stop,), name="rescan", daemon=True).start()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    info = DaemonInfo(pid=os.getpid(), port=port)
    _write_json_atomic(daemon_dir(state_dir) / "daemon.json",
                       {"pid": info.pid, "port": port, "url": info.url, "moto_url": moto_url, "region": region})
    _record_in_state(state_dir, {"pid": info.pid, "port": port, "lambda_endpoint": info.url,
                                 "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    print(f"local control plane on {info.url} (moto {moto_url}, region {region})", flush=True)
    if ready is not None:
        ready(info)
    try:
        server.serve_forever()
    finally:
        plane.shutdown()
        server.server_close()
        print("local control plane stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.emulator.daemon", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)
    serve(args.state_dir.resolve(), args.moto_url, args.region)
    return 0


if __name__ == "__main__":
    sys.exit(main())
