"""The control plane's HTTP endpoint: one front door for every AWS API of the local stack (`AWS_ENDPOINT_URL`).

It answers itself what the emulator performs behind AWS's own APIs: Lambda Invoke (`harness.emulator.control_plane.
lambda_api`), Glue job runs (`harness.emulator.glue_runs`: StartJobRun, GetJobRun(s), BatchStopJobRun, in AWS JSON
1.1), and the control plane's own `/_harness/` API for the engine and `harness status`. Everything else goes to moto
unchanged and streamed (`proxy`); Lambda calls that change a function make the control plane read its configuration
again, and code uploads are kept in the code store. Who answers is decided by `routing.route` from the request alone.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from harness.emulator.control_plane.files import ApiError
from harness.emulator.control_plane.http_handler import LINGER_MAX_BYTES, QuietHandler
from harness.emulator.control_plane.plane import ControlPlane
from harness.emulator.control_plane.proxy import ClientGone, RequestBody, Upstream, UpstreamError, forward
from harness.emulator.control_plane.routing import Route, lowered, route
from harness.emulator.function_url import Rejection, request_body_length
from harness.emulator.lambda_runtime import PayloadTooLarge, request_too_large

JSON_11 = "application/x-amz-json-1.1"


def control_api(plane: ControlPlane, name: str, method: str, body: bytes) -> tuple[int, Any]:
    """The control plane's own API (`/_harness/<name>`): status for `harness status`, refresh and Function URLs for
    the engine, a runner crash for the soak."""
    if name == "status" and method == "GET":
        return 200, plane.status()
    if name == "refresh" and method == "POST":
        return 200, plane.refresh()
    if name == "function-urls" and method == "POST":
        entry = plane.function_urls.ensure(json.loads(body or b"{}")["function_name"])
        return 200, {"function_name": entry.function_name, "url": entry.url}
    if name == "runner-crash" and method == "POST":
        return 200, plane.delivery.crash(str(json.loads(body or b"{}")["delivery_stream"]))
    raise ApiError(404, "ResourceNotFoundException", f"{method} /_harness/{name}: no such control-plane call")


def gateway_handler(plane: ControlPlane) -> type[BaseHTTPRequestHandler]:

    class GatewayHandler(QuietHandler):
        upstream: Upstream

        def setup(self) -> None:
            super().setup()
            self.upstream = Upstream(plane.moto_url)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                self.upstream.close()

        def handle_any(self) -> None:
            path, _, query = self.path.partition("?")
            target = route(self.command, path, query, lowered(self.headers.items()), plane.glue_operations)
            try:
                if target.kind in ("moto", "lambda"):
                    self.pass_to_moto(target)
                else:
                    self.answer(target)
            except ApiError as exc:
                self.send_json(exc.status, {"Type": "User", "message": str(exc)}, {"x-amzn-ErrorType": exc.code})
            except UpstreamError as exc:
                self.send_json(502, {"Type": "Service", "message": f"moto at {plane.moto_url} did not answer: {exc}"},
                               {"x-amzn-ErrorType": "ServiceUnavailableException"})
            except ClientGone:
                self.close_connection = True
            except Exception as exc:
                print(f"{self.command} {self.path} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                self.send_json(500, {"Type": "Service", "message": f"{type(exc).__name__}: {exc}"},
                               {"x-amzn-ErrorType": "ServiceException"})

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any  # noqa: N815

        def checked_length(self) -> int | None:
            """The body's length; None when it cannot be read (not a number, chunked), and the answer is sent."""
            # Bodies passing to moto may be large (S3 objects, 50 MB zips in base64): only invocations have a quota.
            length = request_body_length(self.headers.get_all("Content-Length") or [],
                                         self.headers.get("Transfer-Encoding"), limit=None)
            if isinstance(length, Rejection):
                self.refuse(length.status, json.dumps({"Type": "User", "message": length.message}).encode(),
                            {"Content-Type": "application/json", "x-amzn-ErrorType": "InvalidRequestContentException"},
                            unread=LINGER_MAX_BYTES)
                return None
            return length

        def pass_to_moto(self, target: Route) -> None:
            # A chunked body (S3 uploads of unknown length) passes as it is; answered here, it would need a length.
            if (self.headers.get("Transfer-Encoding") or "").strip().lower() == "chunked":
                body = RequestBody(chunked=True)
            else:
                length = self.checked_length()
                if length is None:
                    return
                body = RequestBody(length=length)
            try:
                forward(self, self.upstream, body)
            finally:
                if target.kind == "lambda" and self.command != "GET":
                    plane.functions.forget_configurations()

        def answer(self, target: Route) -> None:
            length = self.checked_length()
            if length is None:
                return
            if target.kind == "lambda_invoke":
                event = self.headers.get("X-Amz-Invocation-Type") == "Event"
                too_large = request_too_large(length, "Event" if event else "RequestResponse")
                if too_large is not None:  # refused before the payload is read, as Lambda does
                    self.refuse(PayloadTooLarge.status, json.dumps({"Type": "User", "message": too_large}).encode(),
                                {"Content-Type": "application/json", "x-amzn-ErrorType": PayloadTooLarge.code},
                                unread=length)
                    return
            body = self.read_body(length)
            if target.kind == "control":
                status, value = control_api(plane, target.name or "", self.command, body)
                self.send_json(status, value)
            elif target.kind == "lambda_invoke":
                status, headers, payload = plane.functions.answer_invoke(
                    target.name or "", lowered(self.headers.items()), body)
                self.send(status, payload, headers)
            elif target.kind == "lambda_code":
                plane.functions.keep_uploaded_code(body)
                try:
                    forward(self, self.upstream, RequestBody(data=body))
                finally:
                    plane.functions.forget_configurations()
            elif target.kind == "glue_runs":
                self.answer_glue(target.name or "", body)

        def answer_glue(self, operation: str, body: bytes) -> None:
            try:
                request = json.loads(body or b"{}")
            except ValueError as exc:
                self.send_aws_json(400, {"__type": "SerializationException", "message": f"not JSON: {exc}"})
                return
            if not isinstance(request, dict):
                self.send_aws_json(400, {"__type": "SerializationException", "message": "the body is not an object"})
                return
            status, value = plane.job_runs.call(operation, request)
            self.send_aws_json(status, value)

        def send_aws_json(self, status: int, value: Mapping[str, Any]) -> None:
            headers = {"Content-Type": JSON_11, "x-amzn-RequestId": str(uuid.uuid4())}
            if status >= 400 and "__type" in value:
                headers["x-amzn-ErrorType"] = str(value["__type"])
            self.send(status, json.dumps(value).encode(), headers)

    return GatewayHandler
