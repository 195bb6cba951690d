"""IAM and bucket policy documents, built by pure functions from ARNs (unit-tested without Pulumi).

Every statement names its resources. The few actions AWS only authorises on `Resource: "*"` are listed, with the
reason, in `RESOURCE_STAR_ACTIONS`; `wildcard_violations` checks a document against that rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]
ServicePrincipal = Literal[
    "lambda.amazonaws.com", "firehose.amazonaws.com", "glue.amazonaws.com", "rds.amazonaws.com",
    "scheduler.amazonaws.com", "events.amazonaws.com",
]

# Actions AWS does not support resource-level permissions for: `Resource: "*"` is the only form IAM accepts.
RESOURCE_STAR_ACTIONS: frozenset[str] = frozenset({
    # Lambda functions in a VPC: the ENI does not exist yet when the policy is evaluated (AWSLambdaVPCAccessExecution).
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    # Glue JDBC connections: Glue inspects the subnet, its route tables and endpoints before starting the job.
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcAttribute",
    # Glue job metrics; narrowed by a namespace condition instead.
    "cloudwatch:PutMetricData",
})

VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


def document(*statements: Statement) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def to_json(policy: PolicyDocument) -> str:
    return json.dumps(policy, sort_keys=True)


def allow(actions: Sequence[str], resources: Sequence[str], sid: str, condition: dict[str, Any] | None = None
          ) -> Statement:
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(resources)}
    if condition:
        statement["Condition"] = condition
    return statement


def assume_role_policy(service: ServicePrincipal, account_id: str | None = None) -> PolicyDocument:
    statement: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if account_id is not None:
        # Confused-deputy guard: only this account's resources may make the service assume the role.
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return document(statement)


# ---- S3 ------------------------------------------------------------------------------------------------------------

def tls_only_bucket_policy(bucket_arn: str) -> PolicyDocument:
    """Deny every request to the bucket that does not use TLS."""
    return document({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })


def s3_read_prefix(bucket_arn: str, prefix: str, sid: str) -> list[Statement]:
    """Read objects under one prefix, and list only that prefix."""
    return [
        allow(["s3:GetObject"], [f"{bucket_arn}/{prefix}*"], f"{sid}Objects"),
        allow(["s3:ListBucket"], [bucket_arn], f"{sid}List", {"StringLike": {"s3:prefix": [f"{prefix}*"]}}),
    ]


def s3_read_bucket(bucket_arn: str, sid: str) -> list[Statement]:
    return [
        allow(["s3:GetObject"], [f"{bucket_arn}/*"], f"{sid}Objects"),
        allow(["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn], f"{sid}List"),
    ]


def s3_read_write_bucket(bucket_arn: str, sid: str) -> list[Statement]:
    return [
        allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"], [f"{bucket_arn}/*"],
              f"{sid}Objects"),
        allow(["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], [bucket_arn], f"{sid}List"),
    ]


def s3_firehose_destination(bucket_arn: str) -> list[Statement]:
    """The S3 permissions Firehose documents for an S3 destination."""
    return [
        allow(["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"], [f"{bucket_arn}/*"], "DeliverObjects"),
        allow(["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], [bucket_arn],
              "DeliverBucket"),
    ]


# ---- Firehose prefixes as IAM patterns ------------------------------------------------------------------------------

FIREHOSE_ERROR_OUTPUT_TYPE = "processing-failed"
# Firehose's error prefix when the delivery stream has none.
FIREHOSE_DEFAULT_ERROR_PREFIX = "processing-failed/"
_FIREHOSE_EXPRESSION = re.compile(r"!\{([^}]*)\}")
# Java pattern fields Firehose prefixes use, by the width of their text; finer ones (mm, ss) end the pattern.
_HOUR_FIELD_WIDTHS = {"yyyy": 4, "yy": 2, "MM": 2, "dd": 2, "HH": 2}
_FINER_FIELDS = ("mm", "ss")


class _PatternEnds(Exception):
    pass


def _timestamp_pattern(pattern: str, out: list[str]) -> None:
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ValueError(f"unterminated quote in timestamp pattern {pattern!r}")
            out.append(pattern[i + 1 : end] or "'")
            i = end + 1
        elif char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            token = pattern[i:j]
            if token in _FINER_FIELDS:
                raise _PatternEnds
            if token not in _HOUR_FIELD_WIDTHS:
                raise ValueError(f"timestamp pattern {pattern!r}: {token!r} is not a Firehose prefix field")
            out.append("?" * _HOUR_FIELD_WIDTHS[token])
            i = j
        else:
            out.append(char)
            i += 1


def firehose_prefix_pattern(template: str, *, error_output_type: str | None) -> str:
    """An IAM pattern (`?` one character, `*` any) for every key Firehose writes under a prefix template.

    Timestamp fields become one `?` per character; the pattern ends with `*` where the template depends on more than
    the hour (minutes, seconds, `!{firehose:random-string}`), exactly where the redrive's hourly listing prefixes end
    (`recsys.redrive.hour_prefix`), so each prefix it lists also matches the pattern (tests/unit/test_redrive.py)."""
    if error_output_type is not None and not template:
        template = FIREHOSE_DEFAULT_ERROR_PREFIX
    out: list[str] = []
    position = 0
    try:
        for match in _FIREHOSE_EXPRESSION.finditer(template):
            out.append(template[position : match.start()])
            position = match.end()
            namespace, _, value = match.group(1).partition(":")
            if namespace == "timestamp":
                _timestamp_pattern(value, out)
            elif namespace == "firehose" and value == "error-output-type" and error_output_type is not None:
                out.append(error_output_type)
            elif namespace == "firehose" and value == "random-string":
                raise _PatternEnds
            else:
                raise ValueError(f"prefix expression !{{{match.group(1)}}} is not a Firehose expression")
        out.append(template[position:])
        if "!{timestamp:" not in template:
            out.append("????/??/??/??/")  # Firehose appends YYYY/MM/DD/HH/ when there is no timestamp expression
    except _PatternEnds:
        pass
    return "".join(out) + "*"


def firehose_prefix_root(template: str) -> str:
    """The literal start of a prefix template (up to its first expression): what every key under it starts with."""
    return template.split("!{", 1)[0]


def s3_redrive(bucket_arn: str, *, error_prefix: str, recommendations_prefix: str, marker_prefix: str
               ) -> list[Statement]:
    """The redrive function's S3 rights: list and read the error output and the delivered output (to skip sessions
    already delivered), write its markers beside the error output, and delete only its lease."""
    errors = firehose_prefix_pattern(error_prefix, error_output_type=FIREHOSE_ERROR_OUTPUT_TYPE)
    delivered = firehose_prefix_pattern(recommendations_prefix, error_output_type=None)
    markers = f"{marker_prefix}*"
    patterns = sorted({errors, delivered, markers})
    return [
        allow(["s3:ListBucket"], [bucket_arn], "ListRedriveInputs", {"StringLike": {"s3:prefix": patterns}}),
        allow(["s3:GetObject"], [f"{bucket_arn}/{p}" for p in patterns], "ReadRedriveInputs"),
        allow(["s3:PutObject"], [f"{bucket_arn}/{markers}"], "WriteRedriveMarkers"),
        allow(["s3:DeleteObject"], [f"{bucket_arn}/{marker_prefix}.lease"], "ReleaseRedriveLease"),
    ]


# ---- other services ------------------------------------------------------------------------------------------------

def logs_write(log_group_arn: str, sid: str = "WriteLogs") -> Statement:
    # The log group is created by the program (with a retention), so the role needs no logs:CreateLogGroup.
    return allow(["logs:CreateLogStream", "logs:PutLogEvents"], [log_group_arn, f"{log_group_arn}:*"], sid)


def secret_read(secret_arns: Sequence[str], sid: str = "ReadSecret") -> Statement:
    return allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], secret_arns, sid)


def vpc_access() -> Statement:
    return allow(VPC_ACCESS_ACTIONS, ["*"], "VpcNetworkInterfaces")


def kinesis_read(stream_arn: str) -> Statement:
    return allow(["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetShardIterator",
                  "kinesis:GetRecords", "kinesis:ListShards"], [stream_arn], "ReadStream")


def kinesis_write(stream_arn: str) -> Statement:
    return allow(["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"], [stream_arn],
                 "WriteStream")


def kinesis_redrive(stream_arn: str) -> Statement:
    """PutRecords only: the redrive sends batches and reads nothing from the stream."""
    return allow(["kinesis:PutRecords"], [stream_arn], "RedriveToStream")


def lambda_invoke(function_arn: str, sid: str = "InvokeFunction") -> Statement:
    return allow(["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                 [function_arn, f"{function_arn}:*"], sid)


def function_url_invoke(function_arn: str) -> Statement:
    return allow(["lambda:InvokeFunctionUrl"], [function_arn], "InvokeInferenceUrl")


# ---- composed policies ---------------------------------------------------------------------------------------------

def lambda_policy(
    log_group_arn: str,
    *,
    in_vpc: bool,
    secret_arns: Sequence[str] = (),
    extra: Sequence[Statement] = (),
) -> PolicyDocument:
    statements: list[Statement] = [logs_write(log_group_arn)]
    if in_vpc:
        statements.append(vpc_access())
    if secret_arns:
        statements.append(secret_read(secret_arns))
    statements.extend(extra)
    return document(*statements)


def firehose_policy(bucket_arn: str, stream_arn: str, processor_arn: str, log_group_arn: str) -> PolicyDocument:
    return document(
        *s3_firehose_destination(bucket_arn),
        kinesis_read(stream_arn),
        lambda_invoke(processor_arn, "InvokeProcessor"),
        allow(["logs:PutLogEvents"], [f"{log_group_arn}:*"], "WriteDeliveryErrors"),
    )


def rds_s3_import_policy(artifacts_bucket_arn: str, embeddings_prefix: str) -> PolicyDocument:
    """What the lab's s3Import role lacked: read access to the embeddings, and nothing else."""
    return document(*s3_read_prefix(artifacts_bucket_arn, embeddings_prefix, "ReadEmbeddings"))


def glue_job_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    scripts_bucket_arn: str,
    datalake_bucket_arn: str,
    catalog_database: str,
    connection_name: str,
    source_secret_arn: str,
) -> PolicyDocument:
    catalog = f"arn:{partition}:glue:{region}:{account_id}"
    log_groups = f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws-glue/*"
    return document(
        *s3_read_bucket(scripts_bucket_arn, "ReadScripts"),
        *s3_read_write_bucket(datalake_bucket_arn, "WriteDataLake"),
        allow(["glue:GetConnection"], [f"{catalog}:catalog", f"{catalog}:connection/{connection_name}"],
              "UseConnection"),
        allow(
            ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
             "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
             "glue:BatchCreatePartition", "glue:UpdatePartition",
             # The job drops the partitions of customers who no longer have ratings.
             "glue:BatchDeletePartition"],
            [f"{catalog}:catalog", f"{catalog}:database/{catalog_database}", f"{catalog}:table/{catalog_database}/*"],
            "UpdateCatalog",
        ),
        secret_read([source_secret_arn], "ReadSourceSecret"),
        allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
              [log_groups, f"{log_groups}:*"], "ContinuousLogging"),
        allow(["cloudwatch:PutMetricData"], ["*"], "JobMetrics",
              {"StringEquals": {"cloudwatch:namespace": "Glue"}}),
        allow(["ec2:DescribeVpcEndpoints", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
               "ec2:DescribeSubnets", "ec2:DescribeVpcAttribute", *VPC_ACCESS_ACTIONS], ["*"], "JdbcConnectionNetwork"),
        allow(["ec2:CreateTags", "ec2:DeleteTags"], [f"arn:{partition}:ec2:*:*:network-interface/*"],
              "TagGlueNetworkInterfaces",
              {"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}}),
    )


def scheduler_invoke_policy(function_arn: str) -> PolicyDocument:
    return document(allow(["lambda:InvokeFunction"], [function_arn, f"{function_arn}:*"], "InvokeProducer"))


# ---- checks --------------------------------------------------------------------------------------------------------

def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_violations(policy: PolicyDocument) -> list[str]:
    """Allow statements whose action is `*`/`service:*`, or whose resource is `*` outside `RESOURCE_STAR_ACTIONS`."""
    problems: list[str] = []
    for statement in _as_list(policy.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", "<no Sid>")
        actions = [str(a) for a in _as_list(statement.get("Action", []))]
        if "NotAction" in statement:
            problems.append(f"{sid}: uses NotAction")
        for action in actions:
            if action == "*" or action.endswith(":*") or "*" in action.partition(":")[2]:
                problems.append(f"{sid}: wildcard action {action}")
        if "*" in _as_list(statement.get("Resource", [])):
            for action in actions:
                if action not in RESOURCE_STAR_ACTIONS:
                    problems.append(f"{sid}: {action} on Resource *")
    return problems
