"""The JSON-protocol services the platform's code calls (`X-Amz-Target: <prefix>.<Operation>`, a JSON body naming
the resource): Kinesis, Firehose, Glue, Secrets Manager, CloudWatch Logs. The IAM action is the service's prefix and
the operation's name; the resources are those the Service Authorization Reference marks required for it.

Two requests do not name their resource in a form IAM's ARN can be built from, and are resolved through `Lookups`:
Kinesis `GetRecords` (only the shard iterator, which names its stream inside) and Secrets Manager calls by secret
name (the ARN ends in a random suffix only the service knows).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.emulator.iam.calls import Authorization, Call, Unmapped
from harness.emulator.iam.operations.http import BodyError, HttpRequest, json_body


class Lookups(Protocol):
    """What a request does not say and the emulator knows."""

    def secret_arn(self, secret_id: str) -> str | None: ...

    def stream_of_iterator(self, iterator: str) -> str | None: ...


@dataclass(frozen=True)
class Scope:
    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"


class MotoLookups:
    """Lookups from the request alone, for moto: a secret named by its full ARN; moto's shard iterators
    (base64 of `<stream>:<shard>:<sequence>`). Anything else is not resolved (and the call is reported)."""

    def secret_arn(self, secret_id: str) -> str | None:
        return secret_id if secret_id.startswith("arn:") and ":secretsmanager:" in secret_id else None

    def stream_of_iterator(self, iterator: str) -> str | None:
        try:
            decoded = base64.b64decode(iterator.encode(), validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        stream, _, rest = decoded.partition(":")
        return stream if stream and rest else None


Resolver = Callable[[dict[str, Any], Scope, Lookups], tuple[str, ...] | str]


def _field(body: dict[str, Any], *names: str) -> str:
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and value:
            return value
    raise BodyError(f"the body has no {' or '.join(names)}")


def _stream(body: dict[str, Any], scope: Scope, lookups: Lookups) -> str:
    if isinstance(body.get("StreamARN"), str) and body["StreamARN"]:
        return str(body["StreamARN"])
    if "StreamName" not in body and isinstance(body.get("ShardIterator"), str):
        name = lookups.stream_of_iterator(body["ShardIterator"])
        if name is None:
            raise BodyError("the shard iterator does not say which stream it reads")
        return scope.arn("kinesis", f"stream/{name}")
    return scope.arn("kinesis", f"stream/{_field(body, 'StreamName')}")


def _delivery_stream(body: dict[str, Any], scope: Scope, lookups: Lookups) -> str:
    return scope.arn("firehose", f"deliverystream/{_field(body, 'DeliveryStreamName')}")


def _secret(body: dict[str, Any], scope: Scope, lookups: Lookups) -> str:
    secret_id = _field(body, "SecretId")
    arn = lookups.secret_arn(secret_id)
    if arn is None:
        raise BodyError(f"the secret {secret_id!r} is not named by its ARN and could not be resolved")
    return arn


def _catalog(body: dict[str, Any], scope: Scope) -> str:
    catalog = body.get("CatalogId")
    if catalog not in (None, "", scope.account):
        raise BodyError(f"CatalogId {catalog!r} is another account's catalog")
    return scope.arn("glue", "catalog")


def _glue_table(*table_fields: str) -> Resolver:
    def resolve(body: dict[str, Any], scope: Scope, lookups: Lookups) -> tuple[str, ...]:
        database = _field(body, "DatabaseName")
        table = body.get("TableInput", {}).get("Name") if "TableInput" in body else _field(body, *table_fields)
        if not isinstance(table, str) or not table:
            raise BodyError("the body has no TableInput.Name")
        return (_catalog(body, scope), scope.arn("glue", f"database/{database}"),
                scope.arn("glue", f"table/{database}/{table}"))
    return resolve


def _glue_database(body: dict[str, Any], scope: Scope, lookups: Lookups) -> tuple[str, ...]:
    return _catalog(body, scope), scope.arn("glue", f"database/{_field(body, 'Name')}")


def _glue_connection(body: dict[str, Any], scope: Scope, lookups: Lookups) -> tuple[str, ...]:
    return _catalog(body, scope), scope.arn("glue", f"connection/{_field(body, 'Name')}")


def _glue_job(body: dict[str, Any], scope: Scope, lookups: Lookups) -> str:
    return scope.arn("glue", f"job/{_field(body, 'JobName')}")


def _log_group_name(body: dict[str, Any]) -> str:
    identifier = body.get("logGroupIdentifier")
    if isinstance(identifier, str) and identifier.startswith("arn:"):
        return identifier.split(":log-group:", 1)[-1].removesuffix(":*")
    return _field(body, "logGroupName", "logGroupIdentifier")


def _log_group(body: dict[str, Any], scope: Scope, lookups: Lookups) -> str:
    return scope.arn("logs", f"log-group:{_log_group_name(body)}")


def _log_stream(body: dict[str, Any], scope: Scope, lookups: Lookups) -> str:
    return scope.arn("logs", f"log-group:{_log_group_name(body)}:log-stream:{_field(body, 'logStreamName')}")


def _anything(body: dict[str, Any], scope: Scope, lookups: Lookups) -> str:
    return "*"


_TABLE = _glue_table("TableName")
# target prefix -> (IAM service prefix, signing name, {operation: resolver of its resources})
SERVICES: dict[str, tuple[str, str, dict[str, Resolver]]] = {
    "Kinesis_20131202": ("kinesis", "kinesis", {
        **dict.fromkeys(("PutRecord", "PutRecords", "GetRecords", "GetShardIterator", "ListShards", "DescribeStream",
                         "DescribeStreamSummary"), _stream),
        "ListStreams": _anything,
    }),
    "Firehose_20150804": ("firehose", "firehose", {
        **dict.fromkeys(("PutRecord", "PutRecordBatch", "DescribeDeliveryStream"), _delivery_stream),
        "ListDeliveryStreams": _anything,
    }),
    "AWSGlue": ("glue", "glue", {
        "GetTable": _glue_table("Name"), "DeleteTable": _glue_table("Name"),
        "CreateTable": _TABLE, "UpdateTable": _TABLE,
        **dict.fromkeys(("GetPartitions", "GetPartition", "BatchCreatePartition", "BatchDeletePartition",
                         "BatchGetPartition", "CreatePartition", "UpdatePartition", "DeletePartition"), _TABLE),
        "GetDatabase": _glue_database, "GetConnection": _glue_connection,
        **dict.fromkeys(("GetJob", "StartJobRun", "GetJobRun", "GetJobRuns", "BatchStopJobRun"), _glue_job),
    }),
    "secretsmanager": ("secretsmanager", "secretsmanager", {
        "GetSecretValue": _secret, "DescribeSecret": _secret,
    }),
    "Logs_20140328": ("logs", "logs", {
        "CreateLogGroup": _log_group, "DescribeLogStreams": _log_group, "FilterLogEvents": _log_group,
        "AssociateKmsKey": _log_group, "PutRetentionPolicy": _log_group,
        "CreateLogStream": _log_stream, "PutLogEvents": _log_stream, "GetLogEvents": _log_stream,
        "DescribeLogGroups": _anything,
    }),
}


def _request_keys(service: str, body: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    if service == "secretsmanager":
        keys: dict[str, tuple[str, ...]] = {"secretsmanager:secretid": (str(body.get("SecretId", "")),)}
        if isinstance(body.get("VersionStage"), str):
            keys["secretsmanager:versionstage"] = (body["VersionStage"],)
        return keys
    return {}


def json_call(request: HttpRequest, scope: Scope, lookups: Lookups) -> Call | Unmapped:
    target = request.target
    if target is None:
        return Unmapped(None, None, "a JSON-protocol request without X-Amz-Target", "json")
    prefix, operation = target
    entry = SERVICES.get(prefix)
    if entry is None:
        return Unmapped(None, operation, f"X-Amz-Target prefix {prefix!r} is not a service the IAM mapping knows",
                        "json")
    action_prefix, service, operations = entry
    resolver = operations.get(operation)
    if resolver is None:
        return Unmapped(service, operation, f"{service} {operation} is not an operation the IAM mapping knows", "json")
    try:
        body = json_body(request)
        resources = resolver(body, scope, lookups)
    except BodyError as exc:
        return Unmapped(service, operation, f"{service} {operation}: {exc}", "json")
    keys = _request_keys(service, body)
    arns = (resources,) if isinstance(resources, str) else resources
    return Call(service, operation, tuple(Authorization(f"{action_prefix}:{operation}", arn, keys) for arn in arns),
                "json")
