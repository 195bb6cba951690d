"""One HTTP server per Function URL on 127.0.0.1: request -> Function URL event v2.0 -> the function -> HTTP answer.

The request checks, the event and the response mapping are pure functions in `harness.emulator.function_url`; here
they are served. Ports are kept in `<state>/daemon/function_urls.json`, so a restarted control plane serves the same
URLs (the stack's outputs name them).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.emulator.control_plane.files import ApiError, function_urls_path, write_json_atomic
from harness.emulator.control_plane.http_handler import HOST, LINGER_MAX_BYTES, QuietHandler
from harness.emulator.control_plane.lambda_api import LambdaFunctions
from harness.emulator.endpoints import SIGNING_CREDENTIALS
from harness.emulator.function_url import (
    Rejection,
    check_sigv4,
    function_url_event,
    function_url_response,
    request_body_length,
)

ACCOUNT_ID = "123456789012"


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


class FunctionUrls:
    """The Function URLs being served, by function name."""

    def __init__(self, state_dir: Path, region: str, functions: LambdaFunctions) -> None:
        self.state_dir = state_dir
        self.region = region
        self.functions = functions
        self.servers: dict[str, FunctionUrlServer] = {}

    def ensure(self, function_name: str, port: int = 0) -> FunctionUrlServer:
        """Serve the function's URL (moto has its configuration); an already served one takes moto's auth type."""
        config = self.functions.lambda_client.get_function_url_config(FunctionName=function_name)
        existing = self.servers.get(function_name)
        if existing is not None:
            existing.auth_type = config["AuthType"]
            return existing
        url_id = re.sub(r"^https://([^.]+)\..*$", r"\1", config.get("FunctionUrl", "")) or uuid.uuid4().hex[:32]
        entry = self.serve(function_name, config["AuthType"], url_id, port)
        self._save()
        return entry

    def serve(self, function_name: str, auth_type: str, url_id: str, port: int = 0) -> FunctionUrlServer:
        """Start the function's URL server on `port` (when taken, on any free one)."""
        try:
            server = ThreadingHTTPServer((HOST, port), function_url_handler(self, function_name))
        except OSError:
            server = ThreadingHTTPServer((HOST, 0), function_url_handler(self, function_name))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name=f"url-{function_name}", daemon=True)
        thread.start()
        entry = FunctionUrlServer(function_name, auth_type, server, thread, url_id)
        self.servers[function_name] = entry
        return entry

    def _save(self) -> None:
        write_json_atomic(function_urls_path(self.state_dir),
                          {name: {"port": entry.server.server_address[1], "url": entry.url}
                           for name, entry in self.servers.items()})

    def restore(self) -> None:
        """After a restart of the control plane, serve the same Function URLs on the same ports."""
        path = function_urls_path(self.state_dir)
        if not path.exists():
            return
        for name, entry in json.loads(path.read_text()).items():
            try:
                self.ensure(name, int(entry["port"]))
            except Exception as exc:  # a function deleted since: its URL is simply not served
                print(f"function URL of {name} not restored: {exc}", file=sys.stderr, flush=True)

    def status(self) -> dict[str, dict[str, str]]:
        return {name: {"url": entry.url, "auth_type": entry.auth_type} for name, entry in sorted(self.servers.items())}

    def shutdown(self) -> None:
        for entry in self.servers.values():
            entry.server.shutdown()
            entry.server.server_close()


def function_url_handler(urls: FunctionUrls, function_name: str) -> type[BaseHTTPRequestHandler]:
    class FunctionUrlHandler(QuietHandler):
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
            entry = urls.servers[function_name]
            raw_path, _, raw_query = self.path.partition("?")
            if entry.auth_type == "AWS_IAM":
                # As on AWS: an AWS_IAM URL runs the function only for a request signed (SigV4, service "lambda")
                # with the stack's credentials; the signature is recomputed, not just looked at.
                verdict = check_sigv4(method=self.command, raw_path=raw_path, raw_query=raw_query,
                                      headers=self.headers.items(), body=body, credentials=SIGNING_CREDENTIALS,
                                      region=urls.region)
                if isinstance(verdict, Rejection):
                    self.send(verdict.status, verdict.body(), json_type)
                    return
            request_id = str(uuid.uuid4())
            event = function_url_event(
                method=self.command, raw_path=raw_path, raw_query=raw_query, headers=dict(self.headers.items()),
                body=body, source_ip=self.client_address[0], account_id=ACCOUNT_ID, url_id=entry.url_id,
                region=urls.region, auth_type=entry.auth_type, now=time.time(), request_id=request_id)
            try:
                result = urls.functions.invoke(function_name, json.dumps(event).encode())
            except ApiError as exc:
                self.send_json(502 if exc.status >= 500 else exc.status, {"Message": str(exc)})
                return
            status, headers, payload = function_url_response(result)
            self.send(status, payload, {**headers, "x-amzn-RequestId": request_id})

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any  # noqa: N815

    return FunctionUrlHandler

