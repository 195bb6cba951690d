"""Calling a stack's functions by hand, as a user does on AWS: `aws lambda invoke` for a function, and a Function URL
with AWS_IAM auth signed with SigV4 like awscurl does (botocore's own signer, the stack's credentials). Behind
`harness invoke`; the same code reaches the local stack and a deployed one."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from harness.workflows.handle import INVOKE_TIMEOUT_S, StackHandle

# Function URLs sign as the Lambda service (AWS_IAM auth type).
SIGNING_SERVICE = "lambda"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


class InvokeError(RuntimeError):
    """A call that could not be made (no such output, the endpoint unreachable, no credentials); one line."""


@dataclass(frozen=True)
class FunctionAnswer:
    """What `aws lambda invoke` shows: the status, the function error if any, the payload, the log tail."""

    status_code: int
    function_error: str | None
    payload: bytes
    log_tail: str | None

    def payload_json(self) -> Any:
        try:
            return json.loads(self.payload)
        except ValueError:
            return None


@dataclass(frozen=True)
class UrlAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def function_name(handle: StackHandle, function: str) -> str:
    """`function` as an output name (`inference_function_name`, `redrive_function_name`, ... or its short form
    `inference`) or as the function's own name/ARN."""
    for output in (function, f"{function}_function_name", f"{function.replace('-', '_')}_function_name"):
        value = handle.outputs.get(output)
        if isinstance(value, str) and output.endswith("function_name") and value:
            return value
    return function


def invoke_function(handle: StackHandle, function: str, payload: bytes, *, log_tail: bool = False,
                    invocation_type: str = "RequestResponse") -> FunctionAnswer:
    from botocore.exceptions import BotoCoreError, ClientError

    client = handle.client("lambda", read_timeout=INVOKE_TIMEOUT_S)
    name = function_name(handle, function)
    try:
        response = client.invoke(FunctionName=name, Payload=payload, InvocationType=invocation_type,
                                 LogType="Tail" if log_tail else "None")
    except (BotoCoreError, ClientError) as err:
        raise InvokeError(f"Lambda did not invoke {name}: {err}") from None
    tail = response.get("LogResult")
    return FunctionAnswer(status_code=int(response.get("StatusCode", 0)), function_error=response.get("FunctionError"),
                          payload=response["Payload"].read() if "Payload" in response else b"",
                          log_tail=base64.b64decode(tail).decode("utf-8", errors="replace") if tail else None)


def function_url(handle: StackHandle, path: str) -> str:
    """The stack's inference Function URL joined with `path` (`/items_from_item?item_id=S10_1678`); a full URL
    (`https://...`) is taken as it is."""
    if urllib.parse.urlsplit(path).scheme in ("http", "https"):
        return path
    base = str(handle.output("inference_function_url"))
    return base.rstrip("/") + "/" + path.lstrip("/")


def _credentials(handle: StackHandle) -> Any:
    from botocore.credentials import Credentials

    if handle.aws.credentials:
        return Credentials(*handle.aws.credentials)
    import boto3

    found = boto3.session.Session().get_credentials()
    if found is None:
        raise InvokeError("no AWS credentials to sign the request with: configure them as for the aws CLI "
                          "(aws configure, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    return found.get_frozen_credentials()


def signed_request(handle: StackHandle, method: str, url: str, body: bytes = b"",
                   headers: dict[str, str] | None = None) -> urllib.request.Request:
    """The request with SigV4 headers for the Lambda service in the stack's region (what awscurl sends)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    method = method.upper()
    if method not in HTTP_METHODS:
        raise InvokeError(f"unknown HTTP method {method!r}: use one of {', '.join(HTTP_METHODS)}")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if body and "Content-Type" not in request.headers:
        request.headers["Content-Type"] = "application/json"
    SigV4Auth(_credentials(handle), SIGNING_SERVICE, handle.aws.region).add_auth(request)
    return urllib.request.Request(url, data=body if body or method not in ("GET", "HEAD") else None,
                                  headers=dict(request.headers.items()), method=method)


def call_function_url(handle: StackHandle, path: str, *, method: str = "GET", body: bytes = b"",
                      headers: dict[str, str] | None = None, timeout_s: float = INVOKE_TIMEOUT_S) -> UrlAnswer:
    """The Function URL's answer to a signed request; HTTP error statuses are answers, not exceptions."""
    url = function_url(handle, path)
    request = signed_request(handle, method, url, body, headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (the stack's own URL)
            return UrlAnswer(status=response.status, headers=dict(response.headers.items()), body=response.read())
    except urllib.error.HTTPError as err:
        return UrlAnswer(status=err.code, headers=dict(err.headers.items()), body=err.read())
    except (urllib.error.URLError, OSError) as err:
        raise InvokeError(f"cannot reach {url}: {getattr(err, 'reason', err)}") from None
