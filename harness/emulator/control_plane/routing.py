"""Which part of the gateway answers a request: pure functions of its method, path, query and headers.

An AWS client names the service it calls in the SigV4 credential scope it signs with
(`Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/glue/aws4_request, ...`), or, for an S3 presigned
URL, in the `X-Amz-Credential` query parameter; a JSON-protocol service also names the operation in `X-Amz-Target`
(`AWSGlue.StartJobRun`). The gateway answers itself what the emulator performs (Lambda Invoke, Glue job runs, its own
`/_harness/` API) and passes everything else to moto unchanged. The scope is read, never verified: moto accepts any
signature, and so does the gateway for what it forwards.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

CONTROL_PREFIX = "/_harness/"
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
# CreateFunction (POST .../functions) and UpdateFunctionCode (PUT .../functions/{name}/code) carry a package.
CODE_UPLOAD_PATH = re.compile(r"^/2015-03-31/functions(/[^/]+/code)?/?$")
# Unsigned JSON-protocol requests name their service only in the target's prefix (the API's versioned name).
TARGET_SERVICES = {
    "AWSGlue": "glue", "Kinesis_20131202": "kinesis", "Firehose_20150804": "firehose", "AWSEvents": "events",
    "Logs_20140328": "logs", "secretsmanager": "secretsmanager", "AmazonSSM": "ssm", "TrentService": "kms",
    "DynamoDB_20120810": "dynamodb", "AWSStepFunctions": "states", "GraniteServiceVersion20100801": "monitoring",
}
_CREDENTIAL = re.compile(r"\bCredential=([^,\s]+)")

RouteKind = Literal["control", "lambda_invoke", "lambda_code", "lambda", "glue_runs", "moto"]


@dataclass(frozen=True)
class Route:
    """`kind` says who answers; `service` is the AWS service the request is for (None: it does not say);
    `name` is the function of a Lambda invocation or the operation of a Glue job-run call."""

    kind: RouteKind
    service: str | None = None
    name: str | None = None


def scope_service(credential: str) -> str | None:
    """The service of a credential scope: `AKID/date/region/service/aws4_request` (SigV4) or
    `AKID/date/service/aws4_request` (SigV4a, no region)."""
    parts = credential.split("/")
    if len(parts) not in (4, 5) or parts[-1] != "aws4_request" or not parts[-2]:
        return None
    return parts[-2]


def header_service(authorization: str) -> str | None:
    """The service an `Authorization` header's credential scope names, or None (no or another kind of signature)."""
    match = _CREDENTIAL.search(authorization)
    return scope_service(match.group(1)) if match and authorization.startswith("AWS4-") else None


def presigned_service(query: str) -> str | None:
    """The service a presigned URL's `X-Amz-Credential` names, or None."""
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key == "X-Amz-Credential":
            return scope_service(value)
    return None


def target_operation(target: str) -> tuple[str, str] | None:
    """`X-Amz-Target: AWSGlue.StartJobRun` -> ("AWSGlue", "StartJobRun"); None for anything else."""
    prefix, dot, operation = target.strip().rpartition(".")
    return (prefix, operation) if dot and prefix and operation else None


def request_service(query: str, headers: Mapping[str, str]) -> str | None:
    """The service a request is for: the signature's scope, a presigned URL's scope, or an unsigned JSON request's
    target prefix."""
    service = header_service(headers.get("authorization", "")) or presigned_service(query)
    if service is None:
        target = target_operation(headers.get("x-amz-target", ""))
        service = TARGET_SERVICES.get(target[0]) if target else None
    return service


def lowered(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header names lower-cased (the first value of a repeated header)."""
    result: dict[str, str] = {}
    for name, value in headers:
        result.setdefault(name.lower(), value)
    return result


def route(method: str, path: str, query: str, headers: Mapping[str, str],
          glue_operations: frozenset[str] = frozenset()) -> Route:
    """Who answers this request. `headers` has lower-cased names (see `lowered`); `glue_operations` are the Glue
    operations the emulator answers itself (its job-run service), every other Glue call goes to moto."""
    if path.startswith(CONTROL_PREFIX):
        return Route("control", None, path[len(CONTROL_PREFIX):])
    service = request_service(query, headers)
    if service in ("lambda", None) and method == "POST" and (match := INVOKE_PATH.match(path)):
        # Unsigned invocations (curl, tests) are Lambda's too: no other API the stack uses has this path.
        return Route("lambda_invoke", "lambda", match.group("name"))
    if service == "lambda":
        if method in ("POST", "PUT") and CODE_UPLOAD_PATH.match(path):
            return Route("lambda_code", service)
        return Route("lambda", service)
    if service == "glue":
        target = target_operation(headers.get("x-amz-target", ""))
        if method == "POST" and target is not None and target[0] == "AWSGlue" and target[1] in glue_operations:
            return Route("glue_runs", service, target[1])
    return Route("moto", service)
