"""A request as the gateway sees it, and what every mapping reads from it: the service and caller's access key from
the SigV4 credential scope, the query, and the body in each wire protocol (JSON, form-encoded query, CBOR)."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_CREDENTIAL = re.compile(r"\bCredential=([^,\s]+)")
# Requests without a signature name their service only in the JSON target's prefix.
TARGET_SERVICES = {
    "AWSGlue": "glue", "Kinesis_20131202": "kinesis", "Firehose_20150804": "firehose", "Logs_20140328": "logs",
    "secretsmanager": "secretsmanager", "GraniteServiceVersion20100801": "monitoring",
}
CBOR_PATH = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<operation>[^/]+)$")


class BodyError(ValueError):
    """A body the mapping needs cannot be read."""


@dataclass(frozen=True)
class HttpRequest:
    """`path` and `query` as sent (percent-encoded), `headers` with lower-cased names, `body` when read (None: the
    gateway did not read it; `needs_body` says when it must)."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] | None = None
    body: bytes | None = None

    def header(self, name: str) -> str | None:
        return (self.headers or {}).get(name.lower())

    def params(self) -> dict[str, str]:
        """Query parameters; a key without a value (`?uploads`, `?delete`) is present with "" as its value."""
        return dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))

    @property
    def target(self) -> tuple[str, str] | None:
        """`X-Amz-Target: Kinesis_20131202.PutRecords` -> ("Kinesis_20131202", "PutRecords")."""
        prefix, dot, operation = (self.header("x-amz-target") or "").strip().rpartition(".")
        return (prefix, operation) if dot and prefix and operation else None


def credential_scope(request: HttpRequest) -> list[str] | None:
    """`AKID/date/region/service/aws4_request` from the Authorization header or a presigned URL, split."""
    authorization = request.header("authorization") or ""
    match = _CREDENTIAL.search(authorization) if authorization.startswith("AWS4-") else None
    credential = match.group(1) if match else request.params().get("X-Amz-Credential")
    if not credential:
        return None
    parts = credential.split("/")
    return parts if len(parts) in (4, 5) and parts[-1] == "aws4_request" else None


def access_key(request: HttpRequest) -> str | None:
    """The access key id the request was signed with (None: unsigned)."""
    scope = credential_scope(request)
    return scope[0] if scope else None


def signing_region(request: HttpRequest) -> str | None:
    scope = credential_scope(request)
    return scope[2] if scope and len(scope) == 5 else None


def service_of(request: HttpRequest) -> str | None:
    """The service the request is for: the signature's scope, else the JSON target's prefix, else the CBOR path's."""
    scope = credential_scope(request)
    if scope:
        return scope[-2]
    target = request.target
    if target:
        return TARGET_SERVICES.get(target[0])
    match = CBOR_PATH.match(request.path)
    return TARGET_SERVICES.get(match.group("service")) if match else None


def json_body(request: HttpRequest) -> dict[str, Any]:
    if request.body is None:
        raise BodyError("the body was not read")
    try:
        value = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise BodyError(f"the body is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BodyError("the body is not a JSON object")
    return value


def form_body(request: HttpRequest) -> dict[str, str]:
    """A query-protocol request's parameters: the form-encoded body, or the query string of a GET."""
    text = request.body.decode("utf-8", "replace") if request.body else request.query
    return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))


def cbor_body(request: HttpRequest) -> dict[str, Any]:
    """A Smithy RPC v2 CBOR body, decoded with botocore's own CBOR reader (the one that reads the responses)."""
    from botocore.parsers import RpcV2CBORParser

    if request.body is None:
        raise BodyError("the body was not read")
    if not request.body:
        return {}
    try:
        parser = RpcV2CBORParser()
        value = parser.parse_data_item(parser.get_peekable_stream_from_bytes(request.body))
    except Exception as exc:  # noqa: BLE001 - botocore raises its own parser errors or struct/Index errors
        raise BodyError(f"the body is not CBOR ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise BodyError("the body is not a CBOR map")
    return value
