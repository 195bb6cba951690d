"""The gateway's pass-through (`harness.emulator.control_plane.proxy`): what moto gets is what the client sent, what the
client gets is what moto answered, bodies stream, connections are kept. Against a recording stand-in for moto, so each
byte on both sides can be checked."""

from __future__ import annotations

import http.client
import io
import json
import threading
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.emulator.control_plane.proxy import (
    ClientGone,
    RequestBody,
    copy_chunked,
    request_headers,
    response_headers,
)
from tests.unit.local_plane import local_plane

BIG = 64 << 20


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    client_port: int


@dataclass
class Upstream:
    """A stand-in for moto: records each request, answers as its `x-test-answer` header asks."""

    url: str
    seen: list[Seen] = field(default_factory=list)


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record: list[Seen]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def handle_any(self) -> None:
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
        elif self.headers.get("x-test-answer") == "sink":
            body, remaining = b"", int(self.headers["Content-Length"])
            while remaining:
                remaining -= len(self.rfile.read(min(remaining, 1 << 16)))
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.record.append(Seen(self.command, self.path, list(self.headers.items()), body, self.client_address[1]))
        answer = self.headers.get("x-test-answer", "plain")
        if answer == "teapot":
            self.send_response(418, "I'm a teapot")
            self.send_header("Set-Cookie", "a=1")
            self.send_header("Set-Cookie", "b=2")
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"short")
        elif answer == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"one,", b"two,", b"three"):
                self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif answer in ("big", "sink"):
            self.send_response(200)
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            if self.command != "HEAD":
                piece = b"z" * (1 << 16)
                for _ in range(BIG // len(piece)):
                    self.wfile.write(piece)
        else:
            data = json.dumps({"method": self.command, "size": len(body)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any  # noqa: N815


@pytest.fixture()
def upstream() -> Iterator[Upstream]:
    record: list[Seen] = []
    handler = type("BoundRecorder", (Recorder,), {"record": record})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Upstream(f"http://127.0.0.1:{server.server_address[1]}", record)
    server.shutdown()
    server.server_close()


@pytest.fixture()
def gateway(upstream: Upstream, tmp_path: Path) -> Iterator[http.client.HTTPConnection]:
    with local_plane(tmp_path / "state", moto_url=upstream.url) as local:
        parts = urlsplit(local.api_url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        yield connection
        connection.close()


# ---- pure parts ----------------------------------------------------------------------------------------------------

def test_hop_by_hop_headers_stay_behind_and_the_rest_pass_in_order() -> None:
    headers = [("Host", "gw:1"), ("Connection", "keep-alive"), ("X-Amz-Date", "d"), ("Expect", "100-continue"),
               ("Content-Length", "3"), ("x-amz-meta-a", "1"), ("x-amz-meta-a", "2"), ("Transfer-Encoding", "x"),
               ("Keep-Alive", "timeout=5")]
    assert request_headers(headers, RequestBody(data=b"abc"), "moto:2") == [
        ("Host", "gw:1"), ("X-Amz-Date", "d"), ("x-amz-meta-a", "1"), ("x-amz-meta-a", "2"), ("Content-Length", "3")]
    assert request_headers([("A", "1")], RequestBody(chunked=True), "moto:2") == [
        ("Host", "moto:2"), ("A", "1"), ("Transfer-Encoding", "chunked")]
    assert request_headers([("A", "1")], RequestBody(), "moto:2") == [("Host", "moto:2"), ("A", "1")]
    assert response_headers([("Server", "moto"), ("Content-Length", "9"), ("Connection", "close"),
                             ("Set-Cookie", "a"), ("Set-Cookie", "b")]) == [
        ("Server", "moto"), ("Set-Cookie", "a"), ("Set-Cookie", "b")]


def test_a_chunked_body_is_copied_frame_by_frame_as_sent() -> None:
    sent = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nx-amz-checksum-crc32: AAAA\r\n\r\nNEXT REQUEST"
    stream, copied = io.BytesIO(sent), io.BytesIO()
    copy_chunked(stream.readline, stream.read, copied.write)
    assert copied.getvalue() == sent[:-len(b"NEXT REQUEST")]
    assert stream.read() == b"NEXT REQUEST"
    for truncated in (b"4\r\nWi", b"4\r\nWiki\r\n", b"zz\r\n", b"4\r\nWikiXX"):
        stream = io.BytesIO(truncated)
        with pytest.raises(ClientGone):
            copy_chunked(stream.readline, stream.read, io.BytesIO().write)


# ---- through the gateway ---------------------------------------------------------------------------------------------

def test_method_path_query_headers_and_body_reach_moto_unchanged(gateway: http.client.HTTPConnection,
                                                                 upstream: Upstream) -> None:
    target = "/bucket-a/dir%2Fkey%20x?versionId=3&x-id=PutObject&empty="
    gateway.putrequest("PATCH", target, skip_host=True, skip_accept_encoding=True)
    sent = [("Host", "s3.example:9"), ("X-Amz-Date", "20240101T000000Z"), ("x-amz-meta-a", "1"),
            ("x-amz-meta-a", "2"), ("Content-Type", "application/octet-stream"), ("Content-Length", "4")]
    for name, value in sent:
        gateway.putheader(name, value)
    gateway.endheaders(b"\x00\xffab")
    response = gateway.getresponse()

    assert (response.status, json.loads(response.read())) == (200, {"method": "PATCH", "size": 4})
    (seen,) = upstream.seen
    assert (seen.method, seen.target, seen.body) == ("PATCH", target, b"\x00\xffab")
    assert seen.headers == sent


def test_moto_status_headers_and_body_reach_the_client_unchanged(gateway: http.client.HTTPConnection) -> None:
    gateway.request("GET", "/", headers={"x-test-answer": "teapot"})
    response = gateway.getresponse()
    assert (response.status, response.reason, response.read()) == (418, "I'm a teapot", b"short")
    assert response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]

    gateway.request("GET", "/", headers={"x-test-answer": "chunked"})
    response = gateway.getresponse()
    assert (response.status, response.read(), response.getheader("Transfer-Encoding")) == (
        200, b"one,two,three", "chunked")

    gateway.request("HEAD", "/", headers={"x-test-answer": "big"})
    response = gateway.getresponse()
    assert (response.status, response.getheader("Content-Length"), response.read()) == (200, str(BIG), b"")


def test_a_kept_alive_client_connection_uses_one_connection_to_moto(gateway: http.client.HTTPConnection,
                                                                   upstream: Upstream) -> None:
    for n in range(5):
        gateway.request("PUT", f"/k{n}", body=b"x" * n)
        response = gateway.getresponse()
        assert json.loads(response.read()) == {"method": "PUT", "size": n}
    assert [seen.target for seen in upstream.seen] == ["/k0", "/k1", "/k2", "/k3", "/k4"]
    assert len({seen.client_port for seen in upstream.seen}) == 1


def test_a_chunked_upload_passes_as_chunked(gateway: http.client.HTTPConnection, upstream: Upstream) -> None:
    gateway.request("PUT", "/chunked", body=iter([b"abc", b"", b"defgh"]), encode_chunked=True,
                    headers={"Transfer-Encoding": "chunked"})
    assert json.loads(gateway.getresponse().read()) == {"method": "PUT", "size": 8}
    (seen,) = upstream.seen
    assert seen.body == b"abcdefgh" and ("Transfer-Encoding", "chunked") in seen.headers


def test_large_bodies_stream_both_ways_without_being_held_whole(gateway: http.client.HTTPConnection,
                                                                upstream: Upstream) -> None:
    piece = b"u" * (1 << 16)
    tracemalloc.start()
    try:
        gateway.request("PUT", "/big", body=iter([piece] * (BIG // len(piece))),
                        headers={"Content-Length": str(BIG), "x-test-answer": "sink"})
        response = gateway.getresponse()
        received = 0
        while chunk := response.read(1 << 16):
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status == 200 and received == BIG
    assert peak < 16 << 20, f"{peak} bytes held for a {BIG}-byte upload and download"


def test_moto_not_answering_is_a_502_that_names_it(tmp_path: Path) -> None:
    with local_plane(tmp_path / "state", moto_url="http://127.0.0.1:9") as local:
        parts = urlsplit(local.api_url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        connection.request("GET", "/bucket-a")
        response = connection.getresponse()
        body = json.loads(response.read())
    assert response.status == 502
    assert body["message"].startswith("moto at http://127.0.0.1:9 did not answer: ConnectionRefusedError")
