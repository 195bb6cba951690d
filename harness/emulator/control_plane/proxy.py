"""The gateway's way to moto: a request passed on unchanged (method, path and query, headers, body) and moto's answer
streamed back as it arrives.

Bodies are never held whole unless small: a 100 MB S3 upload goes through in 64 KiB pieces, with its own
`Content-Length` or its chunked encoding as the client sent it. Each client connection has its own keep-alive
connection to moto (`Upstream`), so a client that reuses its connection costs one TCP handshake, not one per request.
Only hop-by-hop headers (RFC 9110 7.6.1: `Connection`, `Transfer-Encoding`, ... and `Expect`, which the gateway has
already answered) are not passed on; the `Host` the client used is, so addresses moto builds from it point at the
gateway.
"""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

PIECE_BYTES = 1 << 16
# A body up to this size is read before it is sent: one write to moto, and a request moto dropped on a reused
# connection can be sent again. Larger ones stream.
BUFFERED_BODY_BYTES = 1 << 20
UPSTREAM_TIMEOUT_S = 120.0
MAX_LINE_BYTES = 65_536
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade", "expect"})


class UpstreamError(Exception):
    """moto could not be reached, or dropped the request before answering."""


class ClientGone(Exception):
    """The client closed its connection before its request body or the answer was through."""


@dataclass(frozen=True)
class RequestBody:
    """The body as it reaches moto: `data` already read, or `length` bytes still to copy from the client, or the
    client's chunked encoding copied as it is (`chunked`)."""

    data: bytes | None = None
    length: int = 0
    chunked: bool = False

    @property
    def replayable(self) -> bool:
        return not self.chunked and (self.data is not None or self.length == 0)


class Upstream:
    """One keep-alive connection to moto; one per client connection (each is served by its own thread)."""

    def __init__(self, url: str, timeout_s: float = UPSTREAM_TIMEOUT_S) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None
        self.requests_sent = 0

    def connection(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self.requests_sent = 0
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def request_headers(headers: Iterable[tuple[str, str]], body: RequestBody, default_host: str) -> list[tuple[str, str]]:
    """The headers moto gets: the client's, in order, without hop-by-hop ones, with the body's own framing."""
    forwarded = [(name, value) for name, value in headers
                 if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"]
    if not any(name.lower() == "host" for name, _ in forwarded):
        forwarded.insert(0, ("Host", default_host))
    if body.chunked:
        forwarded.append(("Transfer-Encoding", "chunked"))
    elif body.data is not None:
        forwarded.append(("Content-Length", str(len(body.data))))
    elif body.length:
        forwarded.append(("Content-Length", str(body.length)))
    return forwarded


def response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """moto's headers as the client gets them: without hop-by-hop ones and without the length, which the gateway
    sets from how it sends the body."""
    return [(name, value) for name, value in headers
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"]


def copy_exactly(read: Callable[[int], bytes], write: Callable[[bytes], object], size: int) -> None:
    while size > 0:
        piece = read(min(size, PIECE_BYTES))
        if not piece:
            raise ClientGone(f"the client closed the connection with {size} bytes of its body unsent")
        write(piece)
        size -= len(piece)


def copy_chunked(readline: Callable[[int], bytes], read: Callable[[int], bytes], write: Callable[[bytes], object]
                 ) -> None:
    """Copy one chunked body (RFC 9112 7.1) as it is, framing and trailers included, up to its last empty line."""
    while True:
        line = readline(MAX_LINE_BYTES)
        if not line.endswith(b"\n"):
            raise ClientGone("the chunked body ended inside a chunk header")
        write(line)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise ClientGone(f"a chunk header that is not a hexadecimal size: {line[:40]!r}") from exc
        if size == 0:
            while (trailer := readline(MAX_LINE_BYTES)) not in (b"\r\n", b"\n"):
                if not trailer.endswith(b"\n"):
                    raise ClientGone("the chunked body ended inside its trailers")
                write(trailer)
            write(trailer)
            return
        copy_exactly(read, write, size)
        end = readline(MAX_LINE_BYTES)
        if end not in (b"\r\n", b"\n"):
            raise ClientGone("a chunk not followed by CRLF")
        write(end)


def forward(handler: BaseHTTPRequestHandler, upstream: Upstream, body: RequestBody) -> None:
    """Send the handler's current request to moto and stream moto's answer to the client. Raises UpstreamError when
    moto did not answer (nothing has been sent to the client then) and ClientGone when the client left."""
    if not body.chunked and body.data is None and body.length <= BUFFERED_BODY_BYTES:
        data = handler.rfile.read(body.length) if body.length else b""
        if len(data) < body.length:
            raise ClientGone(f"the client closed the connection with {body.length - len(data)} bytes of its body "
                             "unsent")
        body = RequestBody(data=data)
    headers = request_headers(handler.headers.items(), body, f"{upstream.host}:{upstream.port}")
    for attempt in (1, 2):
        connection = upstream.connection()
        reused = upstream.requests_sent > 0
        sent = False
        try:
            _send(connection, handler, headers, body)
            sent = True
            response = connection.getresponse()
            upstream.requests_sent += 1
            break
        except ClientGone:
            upstream.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            upstream.close()
            # A kept-alive connection moto dropped while idle fails on its next request: sent again once, unless moto
            # may have acted on it (it was sent whole and is not idempotent), or its body is already consumed.
            if attempt == 1 and reused and body.replayable and (not sent or handler.command in IDEMPOTENT):
                continue
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from exc
    try:
        _relay(handler, response)
    except (OSError, http.client.HTTPException) as exc:
        upstream.close()  # the answer is half sent: neither connection can carry another request
        raise ClientGone(f"{type(exc).__name__}: {exc}") from exc


def _send(connection: http.client.HTTPConnection, handler: BaseHTTPRequestHandler, headers: list[tuple[str, str]],
          body: RequestBody) -> None:
    connection.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    if body.data is not None:
        connection.endheaders(body.data or None)
    else:
        connection.endheaders()
        if body.chunked:
            copy_chunked(handler.rfile.readline, handler.rfile.read, connection.send)
        else:
            copy_exactly(handler.rfile.read, connection.send, body.length)


def _relay(handler: BaseHTTPRequestHandler, response: http.client.HTTPResponse) -> None:
    handler.send_response_only(response.status, response.reason)
    for name, value in response_headers(response.getheaders()):
        handler.send_header(name, value)
    declared = response.getheader("Content-Length")
    if handler.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200:
        if declared is not None:  # a HEAD answer's length is the resource's, and says so without a body
            handler.send_header("Content-Length", declared)
        handler.end_headers()
        response.read()
        return
    if not response.chunked and declared is not None:
        handler.send_header("Content-Length", declared)
        handler.end_headers()
        # read, not read1: it also marks the answer complete at its last byte, so the connection can carry the next
        while piece := response.read(PIECE_BYTES):
            handler.wfile.write(piece)
        return
    # moto streams without a length: chunked to an HTTP/1.1 client, until the connection closes to an HTTP/1.0 one.
    chunked = handler.request_version != "HTTP/1.0"
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.close_connection = True
    handler.end_headers()
    while piece := response.read1(PIECE_BYTES):
        handler.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")
