"""The documents as the emulator holds them, read through boto3 clients on moto: a role's inline and attached managed
policies and its trust policy, a bucket's policy, a function's resource policy; and who an access key belongs to.

`MotoPolicies` is a `PolicySource` that caches what it read for `ttl_s` seconds (a policy changed on a running stack
is in force within that time) and can be told to forget at once (`forget`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.emulator.iam.calls import resource_owner
from harness.emulator.iam.context import Principal
from harness.emulator.iam.documents import Policy, parse_policy


def role_name(role: str) -> str:
    """A role's name from its name or ARN (`arn:aws:iam::1:role/path/Name` -> `Name`)."""
    return role.rsplit("/", 1)[-1] if role.startswith("arn:") else role


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def role_policies(iam: Any, role: str) -> list[Policy]:
    """The role's identity policies: every inline policy, then every attached managed policy's default version."""
    name = role_name(role)
    found: list[Policy] = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for policy_name in page.get("PolicyNames", []):
            document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            found.append(parse_policy(document, f"role/{name}/inline/{policy_name}", "identity"))
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for attached in page.get("AttachedPolicies", []):
            arn = attached["PolicyArn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            found.append(parse_policy(document, f"role/{name}/attached/{arn}", "identity"))
    return found


def trust_policy(iam: Any, role: str) -> Policy:
    name = role_name(role)
    document = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    return parse_policy(document, f"role/{name}/trust", "resource")


def bucket_policy(s3: Any, bucket: str) -> Policy | None:
    """The bucket's policy; None when it has none (or the bucket does not exist: the call itself will say so)."""
    try:
        document = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    except Exception as exc:  # noqa: BLE001 - botocore's ClientError, told apart by its code
        if _error_code(exc) in ("NoSuchBucketPolicy", "NoSuchBucket"):
            return None
        raise
    return parse_policy(document, f"bucket/{bucket}", "resource")


def function_policy(lambda_client: Any, function: str) -> Policy | None:
    try:
        document = lambda_client.get_policy(FunctionName=function)["Policy"]
    except Exception as exc:  # noqa: BLE001
        if _error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return parse_policy(document, f"function/{function.rsplit(':', 1)[-1]}", "resource")


def principal_for_access_key(access_key: str, sts_for_key: Callable[[str], Any], iam: Any) -> Principal | None:
    """The role session an access key was issued to (moto answers GetCallerIdentity by the signing key, as STS
    does); None for a key that is no role session's (the stack's admin credentials, an IAM user's)."""
    arn = str(sts_for_key(access_key).get_caller_identity()["Arn"])
    parts = arn.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("assumed-role/"):
        return None
    _, name, session = parts[5].split("/", 2)
    role_arn = str(iam.get_role(RoleName=name)["Role"]["Arn"])
    return Principal.role_session(role_arn, session)


class MotoPolicies:
    """A `PolicySource` over moto, cached for `ttl_s`. `extra` adds resource policies moto does not hold (by the
    owning resource's ARN): the engine keeps a bucket policy's conditional Deny statements out of moto, whose own
    evaluation would misread them (docs/engine.md), so the full documents come from the stack's state."""

    def __init__(self, iam: Any, s3: Any, lambda_client: Any = None, *, ttl_s: float = 2.0,
                 extra: Mapping[str, Sequence[Policy]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.iam, self.s3, self.lambda_client = iam, s3, lambda_client
        self.ttl_s, self.extra, self.clock = ttl_s, dict(extra or {}), clock
        self._cache: dict[str, tuple[float, tuple[Policy, ...]]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def _cached(self, key: str, load: Callable[[], Sequence[Policy]]) -> tuple[Policy, ...]:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        value = tuple(load())
        with self._lock:
            self._cache[key] = (now, value)
        return value

    def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        if principal.role_arn is None:
            return ()
        role = principal.role_arn
        return self._cached(f"identity {role}", lambda: role_policies(self.iam, role))

    def resource_policies(self, resource: str) -> Sequence[Policy]:
        owner = resource_owner(resource)
        return self._cached(f"resource {owner}", lambda: (*self._held_by(owner), *self.extra.get(owner, ())))

    def _held_by(self, owner: str) -> list[Policy]:
        parts = owner.split(":", 5)
        if len(parts) != 6:
            return []
        service, resource = parts[2], parts[5]
        if service == "s3" and "/" not in resource:
            policy = bucket_policy(self.s3, resource)
        elif service == "iam" and resource.startswith("role/"):
            policy = trust_policy(self.iam, owner)
        elif service == "lambda" and self.lambda_client is not None and resource.startswith("function:"):
            policy = function_policy(self.lambda_client, owner)
        else:
            policy = None
        return [policy] if policy is not None else []
