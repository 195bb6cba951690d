"""The local Function URL answers like Lambda's: malformed requests get a 4xx JSON answer instead of a dropped
connection, bodies over 6 MiB a 413 before they are read, and an `AWS_IAM` URL runs its function only for a request
whose SigV4 signature, recomputed from the request, matches the stack's credentials.

Signed requests are made by botocore's own signer, as any AWS client makes them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.emulator.function_url import (
    BODY_LIMIT_BYTES,
    INVALID_TOKEN,
    SIGNATURE_MISMATCH,
    Rejection,
    check_sigv4,
    request_body_length,
)
from harness.emulator.lambda_runtime import FunctionSpec
from tests.unit.local_plane import LocalPlane, local_plane, package
from tests.unit.test_lambda_runtime import raw_request

STACK = {"testing": "testing"}
REGION = "us-east-1"
HOST = "127.0.0.1:8443"


def sign(url: str, body: bytes = b"", method: str = "POST", key: str = "testing", secret: str = "testing",
         region: str = REGION, service: str = "lambda", headers: dict[str, str] | None = None) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return request


def verdict(request: AWSRequest, body: bytes | None = None, extra: list[tuple[str, str]] | None = None,
            url: str | None = None) -> str | Rejection:
    """What the server decides for this request as it arrives (optionally with another body, URL or headers)."""
    parts = urllib.parse.urlsplit(url or request.url)
    headers = [("Host", parts.netloc), *request.headers.items(), *(extra or [])]
    return check_sigv4(method=request.method, raw_path=parts.path, raw_query=parts.query, headers=headers,
                       body=request.body if body is None else body, credentials=STACK, region=REGION)


# ---- the body's length (pure) --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "encoding", "expected"), [
    ([], None, 0),
    (["42"], None, 42),
    ([str(BODY_LIMIT_BYTES)], None, 6_291_456),
    (["42", "42"], None, 42),
    ([str(BODY_LIMIT_BYTES + 1)], None, Rejection(
        413, "Request must be smaller than 6291456 bytes for the InvokeFunction operation")),
    (["abc"], None, Rejection(400, "Content-Length 'abc' is not a number of bytes: send the body's size in bytes, "
                                   "e.g. Content-Length: 42")),
    (["-1"], None, Rejection(400, "Content-Length '-1' is not a number of bytes: send the body's size in bytes, "
                                  "e.g. Content-Length: 42")),
    (["+5"], None, Rejection(400, "Content-Length '+5' is not a number of bytes: send the body's size in bytes, "
                                  "e.g. Content-Length: 42")),
    (["٣"], None, Rejection(400, "Content-Length '٣' is not a number of bytes: send the body's size in bytes, "
                                 "e.g. Content-Length: 42")),
    (["4", "5"], None, Rejection(400, "Content-Length is given twice with different values (4, 5): send one "
                                      "Content-Length, the body's size in bytes")),
    ([], "chunked", Rejection(411, "Transfer-Encoding 'chunked' is not supported here: send the body with a "
                                   "Content-Length header")),
])
def test_the_body_length_is_read_or_the_request_answered(values: list[str], encoding: str | None,
                                                          expected: int | Rejection) -> None:
    assert request_body_length(values, encoding) == expected


# ---- SigV4 (pure) --------------------------------------------------------------------------------------------------

URL = f"http://{HOST}/items_from_user?limit=3&tag=b&tag=a"


def test_a_request_signed_with_the_stacks_credentials_is_accepted() -> None:
    request = sign(URL, b'[[0.5, 0.25]]', headers={"Content-Type": "application/json"})

    assert verdict(request) == "testing"


@pytest.mark.parametrize(("change", "message"), [
    ("body", SIGNATURE_MISMATCH),
    ("query", SIGNATURE_MISMATCH),
    ("path", SIGNATURE_MISMATCH),
    ("signed header", SIGNATURE_MISMATCH),
    ("wrong secret", SIGNATURE_MISMATCH),
    ("unknown key", INVALID_TOKEN),
    ("region", "Credential should be scoped to a valid region. This URL is in us-east-1, the request was signed "
               "for eu-west-1."),
    ("service", "Credential should be scoped to correct service: 'lambda'."),
    ("no signature", "Forbidden"),
    ("content hash", "The provided 'x-amz-content-sha256' header does not match what was computed."),
])
def test_a_request_that_is_not_exactly_what_was_signed_is_forbidden(change: str, message: str) -> None:
    body = b'[[0.5, 0.25]]'
    kwargs: dict[str, Any] = {
        "wrong secret": {"secret": "not-the-stacks"}, "unknown key": {"key": "AKIASOMEONEELSE"},
        "region": {"region": "eu-west-1"}, "service": {"service": "execute-api"},
        "content hash": {"headers": {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}},
    }.get(change, {})
    request = sign(URL, body, headers={"Content-Type": "application/json", **kwargs.pop("headers", {})}, **kwargs)
    if change == "signed header":
        # A different second than the signed one (a request signed at :59 would otherwise be left unchanged).
        signed_at = request.headers["X-Amz-Date"]
        request.headers.replace_header("X-Amz-Date", signed_at[:-3] + ("58Z" if signed_at.endswith("59Z") else "59Z"))
    if change == "no signature":
        del request.headers["Authorization"]

    decided = verdict(request, body=b'[[0.5, 0.26]]' if change in ("body", "content hash") else None,
                      url={"query": URL.replace("limit=3", "limit=4"),
                           "path": URL.replace("items_from_user", "items_from_item")}.get(change))

    assert decided == Rejection(403, message)


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), path=st.lists(st.text("abcXYZ019-_.~", min_size=1, max_size=8), max_size=3),
       query=st.dictionaries(st.text("abz09", min_size=1, max_size=4), st.text(max_size=6), max_size=3),
       position=st.integers(min_value=0))
def test_any_signed_request_is_accepted_and_any_changed_body_byte_refused(
        body: bytes, path: list[str], query: dict[str, str], position: int) -> None:
    url = f"http://{HOST}/{'/'.join(path)}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    request = sign(url, body)

    assert verdict(request) == "testing"
    if body:
        index = position % len(body)
        changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1:]
        assert verdict(request, body=changed) == Rejection(403, SIGNATURE_MISMATCH)


# ---- the server --------------------------------------------------------------------------------------------------

ECHO = """
    import json

    def handler(event, context):
        iam = event["requestContext"].get("authorizer", {}).get("iam", {})
        return {"statusCode": 200, "body": json.dumps({"body": event.get("body"), "path": event["rawPath"],
                                                       "accessKey": iam.get("accessKey")})}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPlane, str, str]]:
    tmp_path = tmp_path_factory.mktemp("function-url")
    with local_plane(tmp_path / "state") as local:
        code_dir = package(tmp_path, ECHO)
        for name in ("signed-echo", "open-echo"):
            local.deploy(FunctionSpec(name=name, handler="app.handler", code_dir=code_dir, timeout_s=30))
        yield local, local.serve_function_url("signed-echo", "AWS_IAM"), local.serve_function_url("open-echo", "NONE")


def send(url: str, request: AWSRequest | None = None, body: bytes = b"", headers: dict[str, str] | None = None,
         method: str = "POST") -> tuple[int, Any]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        sent_headers = {"Content-Type": "application/json", **(dict(request.headers.items()) if request else {}),
                        **(headers or {})}
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                           headers=sent_headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_signed_request_reaches_the_function_and_an_unsigned_or_wrongly_signed_one_does_not(
        served: tuple[LocalPlane, str, str]) -> None:
    local, url, _ = served
    before = local.invocations("signed-echo")
    body = b'{"city": "Nantes"}'

    signed = send(f"{url}user_embeddings", sign(f"{url}user_embeddings", body), body)
    unsigned = send(f"{url}user_embeddings", body=body)
    wrong_secret = send(f"{url}user_embeddings", sign(f"{url}user_embeddings", body, secret="guess"), body)
    tampered = send(f"{url}user_embeddings", sign(f"{url}user_embeddings", body), b'{"city": "Madrid"}')

    assert signed == (200, {"body": '{"city": "Nantes"}', "path": "/user_embeddings", "accessKey": "testing"})
    assert unsigned == (403, {"Message": "Forbidden"})
    assert wrong_secret == tampered == (403, {"Message": SIGNATURE_MISMATCH})
    assert local.invocations("signed-echo") == before + 1


def test_an_open_url_needs_no_signature(served: tuple[LocalPlane, str, str]) -> None:
    _, _, open_url = served

    assert send(f"{open_url}x", body=b"{}") == (200, {"body": "{}", "path": "/x", "accessKey": None})


def test_a_bad_content_length_is_a_400_with_what_to_send(served: tuple[LocalPlane, str, str]) -> None:
    local, url, _ = served
    before = local.invocations("signed-echo")

    status, body = raw_request(url, b"POST /user_embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n{}")

    assert (status, json.loads(body)) == (400, {"Message": "Content-Length '1e3' is not a number of bytes: send the "
                                                           "body's size in bytes, e.g. Content-Length: 42"})
    assert local.invocations("signed-echo") == before


def test_a_body_over_6_mib_is_a_413_and_the_function_never_runs(served: tuple[LocalPlane, str, str]) -> None:
    local, url, open_url = served
    before = local.invocations("open-echo")
    too_large = 413, {"Message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"}

    sent_whole = send(f"{open_url}items_from_user", body=b"[" + b"0," * (BODY_LIMIT_BYTES // 2) + b"0]")
    # A client announcing 10 GB gets its answer at once: the server does not wait for (or keep) the body.
    status, body = raw_request(url, b"POST /user_embeddings HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n"
                                    b"\r\n[0.5")
    # Under the limit is invoked (the event around the body must fit in Lambda's 6 MiB request too).
    large = send(f"{open_url}items_from_user", body=b"[" + b"0," * 3_000_000 + b"0]")

    assert sent_whole == too_large
    assert (status, json.loads(body)) == too_large
    assert large[0] == 200 and len(large[1]["body"]) == 6_000_003
    assert local.invocations("open-echo") == before + 1

