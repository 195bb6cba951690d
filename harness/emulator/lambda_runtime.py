"""The local Lambda runtime: one long-lived worker process per function, warm across invocations.

Each function runs in `python -m harness.emulator.lambda_worker` with exactly its configured handler and environment
(plus what
the Lambda service itself sets: AWS_LAMBDA_FUNCTION_NAME, AWS_REGION, ... and the local stack's AWS_ENDPOINT_URL and
dummy credentials, so boto3 inside reaches moto), its code extracted from the real deployment package, and its
stdout, stderr and logging appended to `<logs_dir>/<function>.log`. Third-party dependencies come from the harness venv,
which pins the same versions as `lambda_src/requirements.txt` (the layer is built for the Lambda platform and
python3.12, so its wheels cannot load here).

Like Lambda: the timeout is enforced (the worker is killed and restarted, the invocation reports
`Sandbox.Timedout`); an unhandled exception comes back as `{errorMessage, errorType, stackTrace}` with FunctionError
"Unhandled"; a worker that dies is reported as `Runtime.ExitError` and started afresh on the next invocation; an init
(import) failure is reported on the invocation and retried on the next one; a request over 6 MiB is refused
(`PayloadTooLarge`, the Invoke API's 413) and a response over Lambda's quota comes back as
`Function.ResponseSizeTooLarge`. Unlike Lambda: one environment per function,
so concurrent invocations of one function queue instead of scaling out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from harness.emulator.lambda_worker import read_message, write_message

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_BYTES = 4096
# How long a worker may take to import its handler before the invocation fails; Lambda's init phase limit is 10 s, but
# a cold import of torch or numpy on a busy laptop can exceed that, so the local limit also counts the function timeout.
INIT_GRACE_S = 10.0

# Lambda's invocation payload quotas ("Lambda quotas": 6 MB synchronous, 256 KB asynchronous), in the bytes Lambda
# enforces: a synchronous request may be 6 MiB; the response check is 100 bytes more lenient (6 MiB + 100, the number
# in Lambda's own error message); an Event invocation's payload 256 KiB. AWS has since raised the asynchronous quota to
# 1 MB; the local runtime keeps the stricter 256 KiB, so what works here works on every account.
REQUEST_PAYLOAD_LIMIT_BYTES = 6_291_456
RESPONSE_PAYLOAD_LIMIT_BYTES = 6_291_556
EVENT_PAYLOAD_LIMIT_BYTES = 262_144

FunctionError = Literal["Unhandled"]
PayloadInvocationType = Literal["RequestResponse", "Event"]


class LambdaRuntimeError(RuntimeError):
    """A problem with the local runtime itself (unknown function, bad package), not with the function's code."""


class PayloadTooLarge(LambdaRuntimeError):
    """An invocation request over Lambda's payload quota: the Invoke API answers it with HTTP 413."""

    status = 413
    code = "RequestEntityTooLargeException"


def request_too_large(size: int, invocation_type: PayloadInvocationType = "RequestResponse") -> str | None:
    """Lambda's message for a request of `size` bytes over its invocation type's quota; None when it fits."""
    if invocation_type == "Event":
        if size > EVENT_PAYLOAD_LIMIT_BYTES:
            return (f"{size} byte payload is too large for the Event invocation type "
                    f"(limit {EVENT_PAYLOAD_LIMIT_BYTES} bytes)")
        return None
    if size > REQUEST_PAYLOAD_LIMIT_BYTES:
        return f"Request must be smaller than {REQUEST_PAYLOAD_LIMIT_BYTES} bytes for the InvokeFunction operation"
    return None


def response_too_large_error(size: int) -> dict[str, str] | None:
    """The error object Lambda returns (as the payload, with FunctionError Unhandled) for a response over its quota."""
    if size <= RESPONSE_PAYLOAD_LIMIT_BYTES:
        return None
    return {"errorMessage": "Response payload size exceeded maximum allowed payload size "
                            f"({RESPONSE_PAYLOAD_LIMIT_BYTES} bytes).",
            "errorType": "Function.ResponseSizeTooLarge"}


@dataclass(frozen=True)
class FunctionSpec:
    """Everything that defines one function's execution environment; a change of any field restarts its worker."""

    name: str
    handler: str
    code_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 3.0
    memory_mb: int = 128
    runtime: str = "python3.12"
    region: str = "us-east-1"
    account_id: str = "123456789012"
    version: str = "$LATEST"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    def fingerprint(self) -> str:
        material = json.dumps([self.handler, str(self.code_dir), sorted(self.environment.items()), self.timeout_s,
                               self.memory_mb, self.runtime, self.region, self.version])
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    payload: bytes
    function_error: FunctionError | None
    log_tail: str
    duration_ms: float

    @property
    def error_type(self) -> str | None:
        if self.function_error is None:
            return None
        return str(json.loads(self.payload).get("errorType", ""))

    def log_result_header(self) -> str:
        """`X-Amz-Log-Result`: the last 4 KB of the invocation's log, base64."""
        return base64.b64encode(self.log_tail.encode("utf-8")[-LOG_TAIL_BYTES:]).decode("ascii")


@dataclass
class FunctionCounters:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0


def extract_package(zip_path: Path, packages_dir: Path) -> Path:
    """The deployment package unpacked under a directory named by its content hash (extracted once, atomically)."""
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    target = packages_dir / digest
    if target.is_dir():
        return target
    packages_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=packages_dir))
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for member in archive.namelist():
                # A package must not write outside its own directory (zip-slip).
                resolved = (staging / member).resolve()
                if not resolved.is_relative_to(staging.resolve()):
                    raise LambdaRuntimeError(f"deployment package {zip_path} has an entry outside its root: {member!r}")
            archive.extractall(staging)
        os.replace(staging, target)
    except zipfile.BadZipFile as exc:
        raise LambdaRuntimeError(f"{zip_path} is not a valid deployment package (zip): {exc}") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def lambda_service_environment(spec: FunctionSpec, aws_environment: Mapping[str, str]) -> dict[str, str]:
    """The variables the Lambda service sets in every environment, then the local stack's endpoint and credentials.

    The function's own variables are applied last by the caller; Lambda rejects reserved keys at configuration time.
    """
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex,
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        **aws_environment,
    }


class _Worker:
    """One running `harness.emulator.lambda_worker` process and its protocol pipes."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], log_path: Path) -> None:
        self.spec = spec
        self.fingerprint = spec.fingerprint()
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "harness.emulator.lambda_worker", "--code-dir", str(spec.code_dir),
                 "--handler", spec.handler, "--fds", f"{request_read},{reply_write}"],
                cwd=REPO_ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(request_read, reply_write), start_new_session=True,
            )
        os.close(request_read)
        os.close(reply_write)
        self.requests: BinaryIO = os.fdopen(request_write, "wb", buffering=0)
        self.replies: BinaryIO = os.fdopen(reply_read, "rb", buffering=0)
        self.ready = False

    def receive(self, timeout_s: float) -> dict[str, Any] | None | Literal["timeout"]:
        """The worker's next message; None when it exited; "timeout" when it did not answer in time."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.replies, selectors.EVENT_READ)
            if not selector.select(timeout=max(0.0, timeout_s)):
                return "timeout"
        return read_message(self.replies)

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_status(self) -> int | None:
        try:
            return self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        for stream in (self.requests, self.replies):
            try:
                stream.close()
            except OSError:
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()


class LambdaRuntime:
    """Hosts the functions' workers. Thread-safe: invocations of one function are serialized, different ones run in
    parallel."""

    def __init__(self, logs_dir: Path, aws_environment: Mapping[str, str]) -> None:
        self.logs_dir = logs_dir
        self.aws_environment = dict(aws_environment)
        self._specs: dict[str, FunctionSpec] = {}
        self._workers: dict[str, _Worker] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._registry_lock = threading.Lock()
        self.counters: dict[str, FunctionCounters] = {}

    def log_path(self, function_name: str) -> Path:
        return self.logs_dir / f"{function_name}.log"

    def deploy(self, spec: FunctionSpec) -> None:
        """Register or update a function. A changed spec restarts its worker at the next invocation."""
        with self._registry_lock:
            self._specs[spec.name] = spec
            self._locks.setdefault(spec.name, threading.Lock())
            self.counters.setdefault(spec.name, FunctionCounters())

    def spec(self, function_name: str) -> FunctionSpec | None:
        return self._specs.get(function_name)

    def remove(self, function_name: str) -> None:
        with self._registry_lock:
            self._specs.pop(function_name, None)
            worker = self._workers.pop(function_name, None)
        if worker is not None:
            worker.kill()

    def worker_pid(self, function_name: str) -> int | None:
        worker = self._workers.get(function_name)
        return worker.process.pid if worker is not None and worker.alive() else None

    def invoke(self, function_name: str, payload: bytes, *, client_context: str | None = None,
               identity: dict[str, Any] | None = None) -> InvocationResult:
        spec = self._specs.get(function_name)
        if spec is None:
            raise LambdaRuntimeError(f"function {function_name!r} is not deployed in the local runtime")
        too_large = request_too_large(len(payload))
        if too_large is not None:
            raise PayloadTooLarge(too_large)
        try:
            json.loads(payload or b"{}")
        except ValueError as exc:
            raise LambdaRuntimeError(f"the invocation payload is not valid JSON: {exc}") from exc
        with self._locks[function_name]:
            return self._invoke_locked(spec, payload or b"{}", client_context, identity)

    def _invoke_locked(self, spec: FunctionSpec, payload: bytes, client_context: str | None,
                       identity: dict[str, Any] | None) -> InvocationResult:
        counters = self.counters[spec.name]
        counters.invocations += 1
        request_id = str(uuid.uuid4())
        log_path = self.log_path(spec.name)
        log_start = log_path.stat().st_size if log_path.exists() else 0
        started = time.monotonic()
        deadline = time.time() + spec.timeout_s

        worker = self._workers.get(spec.name)
        if worker is not None and (worker.fingerprint != spec.fingerprint() or not worker.alive()):
            worker.kill()
            worker = None
        if worker is None:
            counters.cold_starts += 1
            environment = lambda_service_environment(spec, self.aws_environment) | dict(spec.environment)
            worker = _Worker(spec, environment, log_path)
            self._workers[spec.name] = worker
        if not worker.ready:
            # Lambda's init phase: the handler module is imported once; the first invocation waits for it.
            message = worker.receive(INIT_GRACE_S + spec.timeout_s)
            if message == "timeout":
                return self._fail_timeout(spec, worker, request_id, log_path, log_start, started, phase="init")
            if message is None or message.get("type") == "init_error":
                error = message["error"] if message else self._exit_error(worker, request_id)
                self._discard(spec.name, worker)
                return self._error_result(spec, request_id, error, log_path, log_start, started)
            worker.ready = True

        try:
            write_message(worker.requests, {
                "type": "invoke", "request_id": request_id, "payload": payload.decode("utf-8"),
                "deadline_ms": int(deadline * 1000), "invoked_function_arn": spec.arn,
                "client_context": client_context, "identity": identity,
            })
        except (BrokenPipeError, OSError):
            self._discard(spec.name, worker)
            return self._error_result(spec, request_id, self._exit_error(worker, request_id), log_path, log_start,
                                      started)
        reply = worker.receive(deadline - time.time())
        if reply == "timeout":
            return self._fail_timeout(spec, worker, request_id, log_path, log_start, started, phase="invoke")
        if reply is None:
            self._discard(spec.name, worker)
            return self._error_result(spec, request_id, self._exit_error(worker, request_id), log_path, log_start,
                                      started)
        if reply["type"] == "error":
            return self._error_result(spec, request_id, reply["error"], log_path, log_start, started)
        response = reply["payload"].encode("utf-8")
        oversized = response_too_large_error(len(response))
        if oversized is not None:
            # The function returned normally, but Lambda cannot hand the response over: the caller gets an error
            # (HTTP 200, FunctionError Unhandled), and the log says how large the response was.
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {request_id} Response payload size "
                          f"({len(response)} bytes) exceeded maximum allowed payload size "
                          f"({RESPONSE_PAYLOAD_LIMIT_BYTES} bytes).\n")
            return self._error_result(spec, request_id, oversized, log_path, log_start, started)
        return InvocationResult(request_id, response, None, _read_log_segment(log_path, log_start),
                                (time.monotonic() - started) * 1000)

    def _discard(self, function_name: str, worker: _Worker) -> None:
        worker.kill()
        if self._workers.get(function_name) is worker:
            del self._workers[function_name]

    def _exit_error(self, worker: _Worker, request_id: str) -> dict[str, Any]:
        status = worker.exit_status()
        detail = f"signal: {-status}" if status is not None and status < 0 else f"exit status {status}"
        return {"errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {detail}"}

    def _fail_timeout(self, spec: FunctionSpec, worker: _Worker, request_id: str, log_path: Path, log_start: int,
                      started: float, phase: Literal["init", "invoke"]) -> InvocationResult:
        self.counters[spec.name].timeouts += 1
        self._discard(spec.name, worker)
        limit = spec.timeout_s + (INIT_GRACE_S if phase == "init" else 0.0)
        message = f"RequestId: {request_id} Error: Task timed out after {limit:.2f} seconds"
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {request_id} Task timed out after "
                      f"{limit:.2f} seconds\nEND RequestId: {request_id}\n")
        return self._error_result(spec, request_id, {"errorType": "Sandbox.Timedout", "errorMessage": message},
                                  log_path, log_start, started)

    def _error_result(self, spec: FunctionSpec, request_id: str, error: dict[str, Any], log_path: Path,
                      log_start: int, started: float) -> InvocationResult:
        self.counters[spec.name].errors += 1
        return InvocationResult(request_id, json.dumps(error, separators=(",", ":")).encode("utf-8"), "Unhandled",
                                _read_log_segment(log_path, log_start), (time.monotonic() - started) * 1000)

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "handler": spec.handler,
                "timeout_s": spec.timeout_s,
                "worker_pid": self.worker_pid(name),
                "log": str(self.log_path(name)),
                **vars(self.counters[name]),
            }
            for name, spec in sorted(self._specs.items())
        }

    def shutdown(self) -> None:
        with self._registry_lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.kill()


def _read_log_segment(log_path: Path, start: int) -> str:
    if not log_path.exists():
        return ""
    with open(log_path, "rb") as log:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(start, size - LOG_TAIL_BYTES))
        return log.read().decode("utf-8", errors="replace")
