"""A denied call answered the way its service answers it on AWS, in the service's wire protocol, so the SDK raises
what it raises on AWS (`AccessDenied` for S3, STS and CloudWatch; `AccessDeniedException` for the JSON services and
Lambda) with AWS's message: `User: <caller> is not authorized to perform: <action> on resource: <arn> because no
identity-based policy allows the <action> action` (or `with an explicit deny in an identity-based policy`)."""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from harness.emulator.iam.calls import WireProtocol


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def access_denied_message(principal_arn: str, action: str, resource: str, reason: str, *, quoted: bool = False
                          ) -> str:
    shown = f'"{resource}"' if quoted else resource  # S3 quotes the resource in its messages
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {shown} {reason}"


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    return _cbor_head(3, len(data)) + data


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 1 << 8:
        return bytes([major << 5 | 24, length])
    if length < 1 << 16:
        return bytes([major << 5 | 25]) + struct.pack(">H", length)
    return bytes([major << 5 | 26]) + struct.pack(">I", length)


def cbor_map(values: dict[str, str]) -> bytes:
    """A CBOR map of text to text (all an error body needs)."""
    out = _cbor_head(5, len(values))
    for key, value in values.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def error_answer(protocol: WireProtocol | None, service: str | None, message: str, json_version: str = "1.1"
                 ) -> ErrorAnswer:
    request_id = str(uuid.uuid4())
    if protocol == "rest-xml":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>{escape(message)}'
                f"</Message><RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>")
        return ErrorAnswer(403, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body.encode())
    if protocol == "query":
        namespace = "https://sts.amazonaws.com/doc/2011-06-15/" if service == "sts" else \
            "http://monitoring.amazonaws.com/doc/2010-08-01/"
        body = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>AccessDenied</Code>'
                f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        return ErrorAnswer(403, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode())
    if protocol == "smithy-rpc-v2-cbor":
        return ErrorAnswer(403, {"Content-Type": "application/cbor", "Smithy-Protocol": "rpc-v2-cbor",
                                 "x-amzn-RequestId": request_id},
                           cbor_map({"__type": "AccessDenied", "message": message}))
    if protocol == "rest-json":
        return ErrorAnswer(403, {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException",
                                 "x-amzn-RequestId": request_id},
                           json.dumps({"Type": "User", "Message": message}).encode())
    code = "AccessDenied" if service == "monitoring" else "AccessDeniedException"
    return ErrorAnswer(403 if service == "monitoring" else 400,
                       {"Content-Type": f"application/x-amz-json-{json_version}", "x-amzn-ErrorType": code,
                        "x-amzn-RequestId": request_id},
                       json.dumps({"__type": code, "message": message}).encode())
