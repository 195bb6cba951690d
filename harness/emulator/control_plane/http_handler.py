"""The request handler every control-plane server builds on (the gateway, each Function URL): HTTP/1.1 keep-alive,
no access log, whole answers with their length, and answers given before a body is read."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

HOST = "127.0.0.1"
# A request answered before its body is read (too large, unreadable length): how much of the rest is read and thrown
# away, and how long a quiet client is waited for, before the connection is closed.
LINGER_MAX_BYTES = 64 << 20
LINGER_IDLE_S = 1.0


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer is written as its head, then its body: without TCP_NODELAY a kept-alive client's delayed ACK holds the
    # second write back for tens of milliseconds.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        # One line per request would drown the control plane's log during streaming; errors are logged where they
        # happen.
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
