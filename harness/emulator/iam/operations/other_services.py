"""Lambda (REST, the function in the path), STS (query protocol, a form-encoded body) and CloudWatch (Smithy RPC v2
CBOR from boto3, also its JSON and query protocols) -> IAM actions."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from harness.emulator.iam.calls import Authorization, Call, Unmapped, WireProtocol
from harness.emulator.iam.operations.http import CBOR_PATH, BodyError, HttpRequest, cbor_body, form_body, json_body
from harness.emulator.iam.operations.json_services import Scope

_FUNCTION_PATH = re.compile(r"^/(?P<version>\d{4}-\d{2}-\d{2})/functions/(?P<name>[^/]+)(?P<rest>/[^?]*)?$")
_FUNCTIONS_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/functions/?$")
# (method, path after the function) -> (operation, IAM action)
_FUNCTION_OPERATIONS = {
    ("POST", "/invocations"): ("Invoke", "lambda:InvokeFunction"),
    ("GET", "/configuration"): ("GetFunctionConfiguration", "lambda:GetFunctionConfiguration"),
    ("PUT", "/configuration"): ("UpdateFunctionConfiguration", "lambda:UpdateFunctionConfiguration"),
    ("GET", ""): ("GetFunction", "lambda:GetFunction"),
    ("DELETE", ""): ("DeleteFunction", "lambda:DeleteFunction"),
    ("GET", "/policy"): ("GetPolicy", "lambda:GetPolicy"),
    ("GET", "/url"): ("GetFunctionUrlConfig", "lambda:GetFunctionUrlConfig"),
}


def function_arn(name: str, scope: Scope, qualifier: str | None = None) -> str:
    """A function as Lambda's API accepts it (name, `name:qualifier`, `account:function:name`, full ARN) -> its ARN
    (with the qualifier when there is one: IAM authorizes the qualified ARN)."""
    if name.startswith("arn:"):
        arn = name
    elif ":function:" in name:
        arn = f"arn:{scope.partition}:lambda:{scope.region}:{name}"
    else:
        arn = scope.arn("lambda", f"function:{name}")
    if qualifier and arn.count(":") == 6:
        arn = f"{arn}:{qualifier}"
    return arn


def function_url_call(arn: str, auth_type: str) -> Call:
    """A Function URL request (`lambda:InvokeFunctionUrl`, keyed by `lambda:FunctionUrlAuthType`), for the Function
    URL servers, which are not the gateway."""
    return Call("lambda", "InvokeFunctionUrl",
                (Authorization("lambda:InvokeFunctionUrl", arn, {"lambda:functionurlauthtype": (auth_type,),
                                                                 "lambda:functionarn": (arn,)}),), "rest-json")


def invoke_call(arn: str) -> Call:
    """`lambda:InvokeFunction` made in-process (the delivery runner invoking its processor, a schedule)."""
    return Call("lambda", "Invoke", (Authorization("lambda:InvokeFunction", arn),), "rest-json")


def lambda_call(request: HttpRequest, scope: Scope) -> Call | Unmapped:
    path = request.path
    method = request.method.upper()
    if _FUNCTIONS_PATH.match(path) and method == "GET":
        return Call("lambda", "ListFunctions", (Authorization("lambda:ListFunctions", "*"),), "rest-json")
    match = _FUNCTION_PATH.match(path)
    entry = _FUNCTION_OPERATIONS.get((method, (match.group("rest") or "").rstrip("/"))) if match else None
    if match is None or entry is None:
        return Unmapped("lambda", None, f"{method} {path} is not a Lambda operation the IAM mapping knows",
                        "rest-json")
    qualifier = request.params().get("Qualifier")
    arn = function_arn(urllib.parse.unquote(match.group("name")), scope, qualifier)
    return Call("lambda", entry[0], (Authorization(entry[1], arn),), "rest-json")


def sts_call(request: HttpRequest, scope: Scope) -> Call | Unmapped:
    params = form_body(request)
    operation = params.get("Action", "")
    if operation == "GetCallerIdentity":
        return Call("sts", operation, (), "query")  # no permission is needed (STS API Reference)
    if operation == "AssumeRole":
        role = params.get("RoleArn", "")
        if not role:
            return Unmapped("sts", operation, "AssumeRole without RoleArn", "query")
        keys = {"sts:rolesessionname": (params.get("RoleSessionName", ""),)}
        if params.get("ExternalId"):
            keys["sts:externalid"] = (params["ExternalId"],)
        return Call("sts", operation, (Authorization("sts:AssumeRole", role, keys),), "query")
    return Unmapped("sts", operation or None, f"sts {operation or '(no Action)'} is not an operation the IAM mapping "
                                              "knows", "query")


_CLOUDWATCH_STAR = frozenset({"PutMetricData", "GetMetricData", "GetMetricStatistics", "ListMetrics"})


def cloudwatch_call(request: HttpRequest, scope: Scope) -> Call | Unmapped:
    """Its three wire forms: CBOR (`/service/GraniteServiceVersion20100801/operation/<Op>`, boto3's default), JSON
    1.0 (`X-Amz-Target`) and query (`Action=<Op>`)."""
    body: dict[str, Any]
    protocol: WireProtocol
    cbor = CBOR_PATH.match(request.path)
    try:
        if cbor is not None:
            protocol, operation, version = "smithy-rpc-v2-cbor", cbor.group("operation"), "1.0"
            body = cbor_body(request)
        elif request.target is not None:
            protocol, operation, version = "json", request.target[1], "1.0"
            body = json_body(request)
        else:
            protocol, version = "query", "1.0"
            body = dict(form_body(request))
            operation = str(body.get("Action", ""))
    except BodyError as exc:
        return Unmapped("monitoring", None, f"cloudwatch: {exc}")
    if operation not in _CLOUDWATCH_STAR:
        return Unmapped("monitoring", operation or None, f"cloudwatch {operation or '(no operation)'} is not an "
                                                         "operation the IAM mapping knows", protocol, version)
    keys: dict[str, tuple[str, ...]] = {}
    if operation == "PutMetricData" and isinstance(body.get("Namespace"), str):
        keys["cloudwatch:namespace"] = (str(body["Namespace"]),)
    return Call("monitoring", operation, (Authorization(f"cloudwatch:{operation}", "*", keys),), protocol, version)
