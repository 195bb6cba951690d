"""Lambda: functions (the real deployment package), layer versions, Function URLs, permissions and invocations.

moto stores the configuration; the package is also kept in the daemon's code store so the function's worker runs exactly
that code. A Function URL's output is the daemon's local URL; an Invocation runs the function through the daemon.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from harness.emulator import control_plane
from harness.emulator.materializers import (
    Context,
    MaterializeError,
    Request,
    Result,
    archive_bytes,
    materializes,
    without_none,
)


def _code_bytes(context: Context, request: Request, what: str) -> bytes | None:
    code = request.get("code")
    if code is not None:
        return archive_bytes(code)
    if request.get("s3Bucket") and request.get("s3Key"):
        obj = context.client("s3").get_object(**without_none({
            "Bucket": request.get("s3Bucket"), "Key": request.get("s3Key"),
            "VersionId": request.get("s3ObjectVersion")}))
        return bytes(obj["Body"].read())
    if request.get("imageUri"):
        raise MaterializeError(f"{what}: container images cannot run locally; package the function as a zip")
    return None


def _function_configuration(request: Request, name: str) -> dict[str, Any]:
    vpc = request.get("vpcConfig") or {}
    logging_config = request.get("loggingConfig") or {}
    return without_none({
        "FunctionName": name,
        "Role": request.get("role"),
        "Handler": request.get("handler"),
        "Runtime": request.get("runtime"),
        "Description": request.get("description"),
        "Timeout": request.get("timeout", 3),
        "MemorySize": request.get("memorySize", 128),
        "Environment": {"Variables": dict((request.get("environment") or {}).get("variables") or {})},
        "Layers": list(request.get("layers") or []),
        "VpcConfig": without_none({"SubnetIds": list(vpc.get("subnetIds") or []),
                                   "SecurityGroupIds": list(vpc.get("securityGroupIds") or [])}) if vpc else None,
        "LoggingConfig": without_none({"LogFormat": logging_config.get("logFormat"),
                                       "LogGroup": logging_config.get("logGroup"),
                                       "ApplicationLogLevel": logging_config.get("applicationLogLevel"),
                                       "SystemLogLevel": logging_config.get("systemLogLevel")}) or None,
        "TracingConfig": {"Mode": request.get("tracingConfig")["mode"]} if request.get("tracingConfig") else None,
        "KMSKeyArn": request.get("kmsKeyArn"),
    })


@materializes("aws:lambda/function:Function")
def function(context: Context, request: Request) -> Result:
    lambda_client = context.client("lambda")
    name = request.physical_name("name")
    zip_bytes = _code_bytes(context, request, f"function {name}")
    if zip_bytes is None:
        raise MaterializeError(f"function {name}: no code (set code=pulumi.FileArchive(...) or s3_bucket/s3_key)")
    code_sha = control_plane.store_code(context.state_dir, zip_bytes)
    configuration = _function_configuration(request, name)
    try:
        current = lambda_client.get_function_configuration(FunctionName=name)
    except lambda_client.exceptions.ResourceNotFoundException:
        current = None
    if current is None:
        response = lambda_client.create_function(
            **configuration, Code={"ZipFile": zip_bytes},
            Architectures=list(request.get("architectures") or ["x86_64"]),
            PackageType=request.get("packageType", "Zip"), Publish=bool(request.get("publish", False)),
            **({"Tags": dict(request.get("tags"))} if request.get("tags") else {}))
    else:
        configuration.pop("FunctionName")
        response = lambda_client.update_function_configuration(FunctionName=name, **configuration)
        if current.get("CodeSha256") != code_sha:
            response = lambda_client.update_function_code(FunctionName=name, ZipFile=zip_bytes)
    arn = response["FunctionArn"]
    return Result(name, {
        "name": name, "arn": arn, "qualifiedArn": f"{arn}:$LATEST", "version": "$LATEST",
        "invokeArn": f"arn:aws:apigateway:{context.region}:lambda:path/2015-03-31/functions/{arn}/invocations",
        "qualifiedInvokeArn": f"arn:aws:apigateway:{context.region}:lambda:path/2015-03-31/functions/{arn}:$LATEST/"
                              "invocations",
        "sourceCodeHash": request.get("sourceCodeHash") or code_sha, "codeSha256": code_sha,
        "sourceCodeSize": len(zip_bytes), "lastModified": response.get("LastModified", ""),
    })


@materializes("aws:lambda/layerVersion:LayerVersion")
def layer_version(context: Context, request: Request) -> Result:
    name = request.physical_name("layerName")
    zip_bytes = _code_bytes(context, request, f"layer {name}")
    if zip_bytes is None:
        raise MaterializeError(f"layer {name}: no code (set code=pulumi.FileArchive(...) or s3_bucket/s3_key)")
    response = context.client("lambda").publish_layer_version(**without_none({
        "LayerName": name, "Description": request.get("description"), "Content": {"ZipFile": zip_bytes},
        "CompatibleRuntimes": list(request.get("compatibleRuntimes") or []),
        "CompatibleArchitectures": list(request.get("compatibleArchitectures") or []),
        "LicenseInfo": request.get("licenseInfo"),
    }))
    return Result(response["LayerVersionArn"], {
        "arn": response["LayerVersionArn"], "layerArn": response["LayerArn"], "version": str(response["Version"]),
        "layerName": name, "codeSha256": response.get("Content", {}).get("CodeSha256", ""),
        "sourceCodeSize": len(zip_bytes), "createdDate": response.get("CreatedDate", ""),
    })


@materializes("aws:lambda/functionUrl:FunctionUrl")
def function_url(context: Context, request: Request) -> Result:
    lambda_client = context.client("lambda")
    function_name = request.get("functionName")
    cors = request.get("cors") or {}
    parameters = without_none({
        "FunctionName": function_name, "Qualifier": request.get("qualifier"),
        "AuthType": request.get("authorizationType"), "InvokeMode": request.get("invokeMode"),
        "Cors": without_none({"AllowCredentials": cors.get("allowCredentials"),
                              "AllowHeaders": cors.get("allowHeaders"), "AllowMethods": cors.get("allowMethods"),
                              "AllowOrigins": cors.get("allowOrigins"), "ExposeHeaders": cors.get("exposeHeaders"),
                              "MaxAge": cors.get("maxAge")}) or None,
    })
    try:
        lambda_client.get_function_url_config(FunctionName=function_name)
        response = lambda_client.update_function_url_config(**parameters)
    except lambda_client.exceptions.ResourceNotFoundException:
        response = lambda_client.create_function_url_config(**parameters)
    # moto answers with an https://<id>.lambda-url... address nobody can reach; the daemon serves it on 127.0.0.1.
    local_url = control_plane.ControlPlaneClient(context.daemon_url).register_function_url(str(function_name))
    url_id = str(response["FunctionUrl"]).split("//", 1)[-1].split(".", 1)[0]
    return Result(str(function_name), {"functionUrl": local_url, "urlId": url_id,
                                       "functionArn": response["FunctionArn"]})


@materializes("aws:lambda/permission:Permission")
def permission(context: Context, request: Request) -> Result:
    lambda_client = context.client("lambda")
    function_name = request.get("function")
    statement_id = request.get("statementId") or (request.prior.id if request.prior else None) or \
        request.physical_name("statementId")
    try:
        lambda_client.remove_permission(**without_none({"FunctionName": function_name, "StatementId": statement_id,
                                                        "Qualifier": request.get("qualifier")}))
    except lambda_client.exceptions.ResourceNotFoundException:
        pass
    lambda_client.add_permission(**without_none({
        "FunctionName": function_name, "StatementId": statement_id, "Action": request.get("action"),
        "Principal": request.get("principal"), "SourceArn": request.get("sourceArn"),
        "SourceAccount": request.get("sourceAccount"), "EventSourceToken": request.get("eventSourceToken"),
        "Qualifier": request.get("qualifier"), "PrincipalOrgID": request.get("principalOrgId"),
        "FunctionUrlAuthType": request.get("functionUrlAuthType"),
    }))
    return Result(str(statement_id), {"statementId": statement_id})


@materializes("aws:lambda/invocation:Invocation")
def invocation(context: Context, request: Request) -> Result:
    """Runs the function through the daemon (its real worker), as the provider's Invoke does; an error fails the
    deploy with the function's own error and log tail. The engine skips it when its triggers and input are unchanged."""
    function_name = str(request.get("functionName"))
    payload = request.get("input", "{}")
    control_plane.ControlPlaneClient(context.daemon_url).refresh()
    response = context.client("lambda-invoke").invoke(**without_none({
        "FunctionName": function_name, "Payload": payload.encode("utf-8"), "LogType": "Tail",
        "Qualifier": request.get("qualifier")}))
    result = response["Payload"].read().decode("utf-8")
    if response.get("FunctionError"):
        error = json.loads(result) if result.startswith("{") else {"errorMessage": result}
        log_tail = base64.b64decode(response.get("LogResult", "")).decode("utf-8", errors="replace")
        raise MaterializeError(
            f"the invocation of {function_name} failed: {error.get('errorType', 'Error')}: "
            f"{error.get('errorMessage')}\n--- last lines of its log ---\n{log_tail.strip()[-2000:]}")
    return Result(f"{function_name}_{response['ResponseMetadata'].get('RequestId', '')}", {"result": result})
