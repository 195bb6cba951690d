"""IAM roles and policies, Secrets Manager, CloudWatch log groups/streams, EventBridge rules/targets, and
`random` passwords (generated here, honouring the provider's character-class options)."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from harness.emulator.materializers import (
    Context,
    MaterializeError,
    Request,
    Result,
    materializes,
    tags_list,
    without_none,
)


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@materializes("aws:iam/role:Role")
def role(context: Context, request: Request) -> Result:
    iam = context.client("iam")
    name = request.physical_name("name")
    try:
        current = iam.get_role(RoleName=name)["Role"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=_document(request.get("assumeRolePolicy")))
        if request.get("description") or request.get("maxSessionDuration"):
            iam.update_role(**without_none({"RoleName": name, "Description": request.get("description"),
                                            "MaxSessionDuration": request.get("maxSessionDuration")}))
    except iam.exceptions.NoSuchEntityException:
        current = iam.create_role(**without_none({
            "RoleName": name, "Path": request.get("path", "/"),
            "AssumeRolePolicyDocument": _document(request.get("assumeRolePolicy")),
            "Description": request.get("description"), "MaxSessionDuration": request.get("maxSessionDuration"),
            "PermissionsBoundary": request.get("permissionsBoundary"), "Tags": tags_list(request.get("tags")),
        }))["Role"]
    for policy in request.get("inlinePolicies") or []:
        if policy.get("name") and policy.get("policy"):
            iam.put_role_policy(RoleName=name, PolicyName=policy["name"], PolicyDocument=_document(policy["policy"]))
    for policy_arn in request.get("managedPolicyArns") or []:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return Result(name, {"name": name, "arn": current["Arn"], "uniqueId": current["RoleId"],
                         "createDate": str(current.get("CreateDate", ""))})


@materializes("aws:iam/rolePolicy:RolePolicy")
def role_policy(context: Context, request: Request) -> Result:
    role_name = request.get("role")
    name = request.physical_name("name")
    context.client("iam").put_role_policy(RoleName=role_name, PolicyName=name,
                                          PolicyDocument=_document(request.get("policy")))
    return Result(f"{role_name}:{name}", {"name": name})


@materializes("aws:iam/policy:Policy")
def policy(context: Context, request: Request) -> Result:
    iam = context.client("iam")
    name = request.physical_name("name")
    arn = f"arn:aws:iam::{context.account_id}:policy{request.get('path', '/')}{name}"
    try:
        iam.get_policy(PolicyArn=arn)
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        for version in versions:
            if not version["IsDefaultVersion"] and len(versions) >= 5:
                iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=_document(request.get("policy")), SetAsDefault=True)
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_policy(**without_none({
            "PolicyName": name, "Path": request.get("path", "/"), "PolicyDocument": _document(request.get("policy")),
            "Description": request.get("description"), "Tags": tags_list(request.get("tags"))}))["Policy"]["Arn"]
    return Result(arn, {"arn": arn, "name": name})


@materializes("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def role_policy_attachment(context: Context, request: Request) -> Result:
    context.client("iam").attach_role_policy(RoleName=request.get("role"), PolicyArn=request.get("policyArn"))
    return Result(f"{request.get('role')}-{request.physical_name('id')}")


@materializes("aws:secretsmanager/secret:Secret")
def secret(context: Context, request: Request) -> Result:
    manager = context.client("secretsmanager")
    name = request.physical_name("name")
    try:
        current = manager.describe_secret(SecretId=name)
        manager.update_secret(**without_none({"SecretId": name, "Description": request.get("description"),
                                              "KmsKeyId": request.get("kmsKeyId")}))
        arn = current["ARN"]
    except manager.exceptions.ResourceNotFoundException:
        arn = manager.create_secret(**without_none({
            "Name": name, "Description": request.get("description"), "KmsKeyId": request.get("kmsKeyId"),
            "Tags": tags_list(request.get("tags"))}))["ARN"]
    if request.get("policy"):
        manager.put_resource_policy(SecretId=arn, ResourcePolicy=_document(request.get("policy")))
    return Result(arn, {"arn": arn, "name": name})


@materializes("aws:secretsmanager/secretVersion:SecretVersion")
def secret_version(context: Context, request: Request) -> Result:
    secret_id = request.get("secretId")
    value: dict[str, Any] = {"SecretString": request.get("secretString")} if request.get("secretString") is not None \
        else {"SecretBinary": request.get("secretBinary")}
    response = context.client("secretsmanager").put_secret_value(
        SecretId=secret_id, **value, **({"VersionStages": list(request.get("versionStages"))}
                                        if request.get("versionStages") else {}))
    return Result(f"{response['ARN']}|{response['VersionId']}",
                  {"arn": response["ARN"], "versionId": response["VersionId"],
                   "versionStages": response.get("VersionStages", ["AWSCURRENT"])})


@materializes("aws:cloudwatch/logGroup:LogGroup")
def log_group(context: Context, request: Request) -> Result:
    logs = context.client("logs")
    name = request.physical_name("name")
    try:
        logs.create_log_group(**without_none({"logGroupName": name, "kmsKeyId": request.get("kmsKeyId"),
                                              "tags": request.get("tags")}))
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    if request.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(request.get("retentionInDays")))
    else:
        logs.delete_retention_policy(logGroupName=name)
    return Result(name, {"name": name, "arn": context.arn("logs", f"log-group:{name}")})


@materializes("aws:cloudwatch/logStream:LogStream")
def log_stream(context: Context, request: Request) -> Result:
    logs = context.client("logs")
    group, name = request.get("logGroupName"), request.physical_name("name")
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    return Result(name, {"name": name, "arn": context.arn("logs", f"log-group:{group}:log-stream:{name}")})


@materializes("aws:cloudwatch/eventRule:EventRule")
def event_rule(context: Context, request: Request) -> Result:
    name = request.physical_name("name")
    state = request.get("state") or ("DISABLED" if request.get("isEnabled") is False else "ENABLED")
    arn = context.client("events").put_rule(**without_none({
        "Name": name, "ScheduleExpression": request.get("scheduleExpression"),
        "EventPattern": request.get("eventPattern"), "State": state, "Description": request.get("description"),
        "RoleArn": request.get("roleArn"), "EventBusName": request.get("eventBusName"),
        "Tags": tags_list(request.get("tags"))}))["RuleArn"]
    return Result(name, {"name": name, "arn": arn})


@materializes("aws:cloudwatch/eventTarget:EventTarget")
def event_target(context: Context, request: Request) -> Result:
    rule_name = request.get("rule")
    target_id = request.physical_name("targetId")
    response = context.client("events").put_targets(Rule=rule_name, Targets=[without_none({
        "Id": target_id, "Arn": request.get("arn"), "Input": request.get("input"),
        "InputPath": request.get("inputPath"), "RoleArn": request.get("roleArn")})])
    if response.get("FailedEntryCount"):
        raise MaterializeError(f"event target {target_id} on rule {rule_name}: {response.get('FailedEntries')}")
    return Result(f"{rule_name}-{target_id}", {"targetId": target_id})


# ---- random ----------------------------------------------------------------------------------------------------------

DEFAULT_SPECIAL = "!@#$%&*()-_=+[]{}<>:?"


def generate_password(inputs: dict[str, Any]) -> str:
    """A password as `random.RandomPassword` makes it: `length` characters from the enabled classes, at least the
    `min*` of each, `overrideSpecial` replacing the special set (pure apart from the system's CSPRNG)."""
    length = int(inputs.get("length", 0))
    classes: list[tuple[str, int]] = []
    for enabled_key, minimum_key, alphabet in (
            ("upper", "minUpper", string.ascii_uppercase), ("lower", "minLower", string.ascii_lowercase),
            ("numeric", "minNumeric", string.digits),
            ("special", "minSpecial", inputs.get("overrideSpecial") or DEFAULT_SPECIAL)):
        if inputs.get(enabled_key, True) is not False and alphabet:
            classes.append((alphabet, int(inputs.get(minimum_key, 0) or 0)))
    if length < 1 or not classes:
        raise MaterializeError("random password: length must be at least 1 and some character class enabled")
    if sum(minimum for _, minimum in classes) > length:
        raise MaterializeError(f"random password: the min_* counts exceed length {length}")
    chosen = [secrets.choice(alphabet) for alphabet, minimum in classes for _ in range(minimum)]
    everything = "".join(alphabet for alphabet, _ in classes)
    chosen += [secrets.choice(everything) for _ in range(length - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


@materializes("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString")
def random_password(context: Context, request: Request) -> Result:
    # Kept stable across deploys: the engine reuses the recorded result while the inputs (and keepers) are unchanged.
    result = generate_password(request.inputs)
    return Result(secrets.token_hex(8), {"result": result})
