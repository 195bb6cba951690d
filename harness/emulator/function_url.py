"""What a Lambda Function URL does with an HTTP request, as pure functions the control plane's URL servers call.

- `request_body_length`: the body's length from `Content-Length`, or the 4xx a Function URL answers instead: 400 for a
  value that is not a number of bytes, 413 for a body over Lambda's 6 MiB request quota (decided before the body is
  read), 411 for a chunked body (the local server needs a length).
- `check_sigv4`: for an `AWS_IAM` URL, the request's SigV4 signature recomputed with botocore's signer from the
  method, path, query, the signed headers and the body, and compared in constant time against the stack's credentials
  (the harness's fake `testing`/`testing`); anything else is a 403 with the service's message.
- `function_url_event` / `function_url_response`: the payload format 2.0 event and Lambda's response mapping.

Errors are `{"Message": "..."}`, the shape Function URLs answer with. Not emulated: signature expiry (a signed request
stays valid), resource policies (any valid signature of the stack's credentials may invoke), CORS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.emulator.lambda_runtime import REQUEST_PAYLOAD_LIMIT_BYTES, InvocationResult

# The largest body a Function URL accepts: Lambda's synchronous request quota.
BODY_LIMIT_BYTES = REQUEST_PAYLOAD_LIMIT_BYTES
SIGNING_SERVICE = "lambda"
SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
                      "Secret Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
_DIGITS = re.compile(r"[0-9]{1,19}")
_AUTH_PREFIX = "AWS4-HMAC-SHA256 "


@dataclass(frozen=True)
class Rejection:
    """A request the Function URL answers itself, without invoking the function."""

    status: int
    message: str

    def body(self) -> bytes:
        return json.dumps({"Message": self.message}).encode()


# ---- the body's length ------------------------------------------------------------------------------------------

def request_body_length(content_lengths: Iterable[str], transfer_encoding: str | None,
                        limit: int | None = BODY_LIMIT_BYTES) -> int | Rejection:
    """The body's length in bytes, or the answer to a request whose body cannot or must not be read (over `limit`)."""
    values = {value.strip() for value in content_lengths}
    if transfer_encoding and transfer_encoding.strip().lower() != "identity":
        return Rejection(411, f"Transfer-Encoding {transfer_encoding.strip()!r} is not supported here: send the body "
                              "with a Content-Length header")
    if not values:
        return 0
    if len(values) > 1:
        return Rejection(400, f"Content-Length is given twice with different values ({', '.join(sorted(values))}): "
                              "send one Content-Length, the body's size in bytes")
    (value,) = values
    if not _DIGITS.fullmatch(value):
        return Rejection(400, f"Content-Length {value[:40]!r} is not a number of bytes: send the body's size in bytes, "
                              "e.g. Content-Length: 42")
    length = int(value)
    if limit is not None and length > limit:
        return Rejection(413, f"Request must be smaller than {limit} bytes for the InvokeFunction operation")
    return length


# ---- SigV4 -----------------------------------------------------------------------------------------------------------

def _authorization_parameters(authorization: str) -> dict[str, str] | Rejection:
    if not authorization.startswith(_AUTH_PREFIX):
        return Rejection(403, "Forbidden")
    parameters: dict[str, str] = {}
    for part in authorization[len(_AUTH_PREFIX):].split(","):
        name, _, value = part.strip().partition("=")
        parameters[name] = value
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not parameters.get(name):
            return Rejection(403, f"Authorization header requires '{name}' parameter. Authorization=" + authorization)
    return parameters


def sigv4_access_key(authorization: str) -> str | None:
    """The access key id a SigV4 Authorization header names (not verified: `check_sigv4` does that), or None."""
    match = re.match(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/", authorization)
    return match.group(1) if match else None


def check_sigv4(*, method: str, raw_path: str, raw_query: str, headers: Iterable[tuple[str, str]], body: bytes,
                credentials: Mapping[str, str], region: str) -> str | Rejection:
    """The access key of a correctly signed request, or the 403 Lambda answers: no or malformed signature, unknown
    access key, a scope for another region or service, a body that is not the one signed, a wrong signature."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    items = list(headers)
    lowered: dict[str, list[str]] = {}
    for name, value in items:
        lowered.setdefault(name.lower(), []).append(value)
    parameters = _authorization_parameters(",".join(lowered.get("authorization", [])))
    if isinstance(parameters, Rejection):
        return parameters
    scope = parameters["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return Rejection(403, f"Credential should be scoped to a valid region, service and date: "
                              f"<access key>/<yyyymmdd>/{region}/{SIGNING_SERVICE}/aws4_request, got "
                              f"{parameters['Credential']!r}")
    access_key, scope_date, scope_region, scope_service, _ = scope
    secret = credentials.get(access_key)
    if secret is None:
        return Rejection(403, INVALID_TOKEN)
    if scope_region != region:
        return Rejection(403, f"Credential should be scoped to a valid region. This URL is in {region}, the request "
                              f"was signed for {scope_region}.")
    if scope_service != SIGNING_SERVICE:
        return Rejection(403, f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'.")
    amz_date = (lowered.get("x-amz-date") or [""])[0].strip()
    if not amz_date:
        return Rejection(403, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if amz_date[:8] != scope_date:
        return Rejection(403, f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
                              f"HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.")
    content_sha256 = lowered.get("x-amz-content-sha256")
    if content_sha256 is not None and content_sha256[0].strip() != hashlib.sha256(body).hexdigest():
        # botocore signs this header's value instead of hashing the body: a changed body must not slip through.
        return Rejection(403, "The provided 'x-amz-content-sha256' header does not match what was computed.")

    signed = set(parameters["SignedHeaders"].lower().split(";"))
    host = (lowered.get("host") or ["localhost"])[0]
    request = AWSRequest(method=method.upper(), url=f"http://{host}{raw_path}" + (f"?{raw_query}" if raw_query else ""),
                         data=body)
    for name, value in items:
        if name.lower() in signed:
            request.headers[name] = value  # HTTPHeaders appends: repeated headers stay repeated
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, secret), SIGNING_SERVICE, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(signed)) or \
            not hmac.compare_digest(expected, parameters["Signature"]):
        return Rejection(403, SIGNATURE_MISMATCH)
    return access_key


# ---- the event and the response ----------------------------------------------------------------------------------

def function_url_event(*, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
                       source_ip: str, account_id: str, url_id: str, region: str, auth_type: str, now: float,
                       request_id: str) -> dict[str, Any]:
    """The payload format version 2.0 event a Function URL hands its function."""
    lowered: dict[str, str] = {}
    for key, value in headers.items():
        name = key.lower()
        lowered[name] = f"{lowered[name]},{value}" if name in lowered else value
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    query: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    content_type = lowered.get("content-type", "")
    is_text = not body or content_type.startswith("text/") or any(
        kind in content_type for kind in ("json", "xml", "javascript", "x-www-form-urlencoded"))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous" if auth_type == "NONE" else account_id,
            "apiId": url_id,
            "domainName": f"{url_id}.lambda-url.{region}.on.aws",
            "domainPrefix": url_id,
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": lowered.get("user-agent", "")},
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = body.decode("utf-8", errors="replace") if is_text else base64.b64encode(body).decode()
    if auth_type == "AWS_IAM":
        access_key = sigv4_access_key(lowered.get("authorization", "")) or ""
        event["requestContext"]["authorizer"] = {"iam": {
            "accessKey": access_key, "accountId": account_id, "callerId": access_key, "cognitoIdentity": None,
            "principalOrgId": None, "userArn": f"arn:aws:iam::{account_id}:user/local", "userId": access_key}}
    return event


def function_url_response(result: InvocationResult) -> tuple[int, dict[str, str], bytes]:
    """Lambda's response mapping: a dict with statusCode is taken apart, anything else is a 200 JSON body."""
    if result.function_error is not None:
        return 502, {"Content-Type": "application/json"}, b'{"Message":"Internal Server Error"}'
    try:
        value = json.loads(result.payload)
    except ValueError:
        return 502, {"Content-Type": "application/json"}, b'{"Message":"Internal Server Error"}'
    if not isinstance(value, dict) or "statusCode" not in value:
        return 200, {"Content-Type": "application/json"}, result.payload
    headers = {str(k): str(v) for k, v in (value.get("headers") or {}).items()}
    headers.setdefault("Content-Type", "application/json")
    raw_body = value.get("body")
    if raw_body is None:
        body = b""
    elif not isinstance(raw_body, str):
        body = json.dumps(raw_body).encode()
    elif value.get("isBase64Encoded"):
        body = base64.b64decode(raw_body)
    else:
        body = raw_body.encode("utf-8")
    for index, cookie in enumerate(value.get("cookies") or []):
        headers[f"Set-Cookie{'' if index == 0 else ' ' * index}"] = str(cookie)
    return int(value["statusCode"]), headers, body
