"""Who calls, and the request context IAM evaluates: the action, one resource ARN, and the condition keys.

Condition key names are case-insensitive in IAM: they are stored lower-cased. Every value is a tuple of strings (one
for a single-valued key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

Keys = Mapping[str, tuple[str, ...]]


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Principal:
    """The caller. A role session (`arn` the `assumed-role` ARN, `role_arn` the role whose identity policies apply)
    or an AWS service acting through a trust policy (`service`, e.g. `firehose.amazonaws.com`, no identity policies).
    """

    arn: str
    account: str
    partition: str = "aws"
    role_arn: str | None = None
    service: str | None = None

    @classmethod
    def role_session(cls, role_arn: str, session_name: str) -> Principal:
        """`arn:aws:iam::123456789012:role/path/Name` + session -> `arn:aws:sts::123456789012:assumed-role/Name/s`."""
        parts = role_arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
            raise ValueError(f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        name = parts[5].rsplit("/", 1)[-1]
        return cls(arn=f"arn:{parts[1]}:sts::{parts[4]}:assumed-role/{name}/{session_name}", account=parts[4],
                   partition=parts[1], role_arn=role_arn)

    @classmethod
    def aws_service(cls, service: str, account: str, partition: str = "aws") -> Principal:
        return cls(arn=service, account=account, partition=partition, service=service)

    @property
    def account_root(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:root"

    @property
    def principal_type(self) -> str:
        return "AssumedRole" if self.role_arn else "Service" if self.service else "User"


def lowered(keys: Mapping[str, Sequence[str] | str]) -> dict[str, tuple[str, ...]]:
    return {name.lower(): (value,) if isinstance(value, str) else tuple(value) for name, value in keys.items()}


def global_keys(principal: Principal, *, region: str, secure_transport: bool, now: datetime | None = None,
                source_ip: str | None = None, extra: Mapping[str, Sequence[str] | str] | None = None
                ) -> dict[str, tuple[str, ...]]:
    """The global condition keys AWS adds to every request of this caller (`extra`: keys the caller or the service
    sets, such as `aws:SourceArn` and `aws:SourceAccount` when a service assumes a role for a resource)."""
    moment = now or datetime.now(UTC)
    keys: dict[str, tuple[str, ...]] = {
        "aws:principalaccount": (principal.account,),
        "aws:principaltype": (principal.principal_type,),
        "aws:securetransport": ("true" if secure_transport else "false",),
        "aws:requestedregion": (region,),
        "aws:currenttime": (moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),),
        "aws:epochtime": (str(int(moment.timestamp())),),
    }
    if principal.role_arn:
        keys["aws:principalarn"] = (principal.role_arn,)
    if principal.service:
        keys["aws:principalservicename"] = (principal.service,)
    if source_ip:
        keys["aws:sourceip"] = (source_ip,)
    keys.update(lowered(extra or {}))
    return keys


@dataclass(frozen=True)
class Request:
    """One authorization: `action` on `resource` (an ARN, or `*` for actions without resource-level permissions)."""

    action: str
    resource: str
    principal: Principal
    keys: Keys = field(default_factory=dict)
