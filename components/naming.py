"""Physical names: `<prefix>-<stack-slug>-<purpose>`, valid for each AWS service and distinct across stacks.

Pure functions. When a name is too long it is cut and a hash of the full name is appended, so two different full names
never shorten to the same physical name (see docs/ARCHITECTURE.md, "Physical names").
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

NameKind = Literal[
    "s3", "lambda", "iam-role", "iam-policy", "firehose", "kinesis", "rds", "rds-subnet-group", "glue", "glue-database",
    "log-group", "secret", "security-group", "layer", "event-rule",
]

# AWS length limits per kind of name.
MAX_LENGTH: dict[NameKind, int] = {
    "s3": 63,
    "lambda": 64,
    "iam-role": 64,
    "iam-policy": 128,
    "firehose": 64,
    "kinesis": 128,
    "rds": 63,
    "rds-subnet-group": 255,
    "glue": 255,
    "glue-database": 255,
    "log-group": 512,
    "secret": 512,
    "security-group": 255,
    "layer": 64,
    "event-rule": 64,
}

HASH_LENGTH = 6
_INVALID_SLUG_CHARS = re.compile(r"[^a-z0-9]+")


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def stack_slug(stack: str) -> str:
    """The stack name lowercased with runs of other characters turned into one hyphen; a hash marks any change."""
    slug = _INVALID_SLUG_CHARS.sub("-", stack.lower()).strip("-") or "stack"
    if slug != stack:
        slug = f"{slug}-{short_hash(stack)}"
    return slug


def shorten(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    head = name[: limit - HASH_LENGTH - 1].rstrip("-._")
    return f"{head}-{short_hash(name)}"


def physical_name(prefix: str, stack: str, purpose: str, kind: NameKind) -> str:
    name = shorten(f"{prefix}-{stack_slug(stack)}-{purpose}", MAX_LENGTH[kind])
    if kind == "glue-database":
        # Athena and Spark SQL only accept lowercase letters, digits and underscores in database names.
        return name.replace("-", "_")
    return name


def bucket_name(prefix: str, stack: str, account_id: str, region: str, purpose: str) -> str:
    """`<prefix>-<stack-slug>-<account>-<region>-<purpose>` within S3's 3-63 lowercase characters."""
    return shorten(f"{prefix}-{stack_slug(stack)}-{account_id}-{region}-{purpose}", MAX_LENGTH["s3"])


class Namer:
    """Binds prefix and stack so components say only what a name is for."""

    def __init__(self, prefix: str, stack: str) -> None:
        self.prefix = prefix
        self.stack = stack

    @property
    def tags(self) -> dict[str, str]:
        """On every taggable resource: find and cost a stack's resources in the console and the bill."""
        return {"project": "recsys", "recsys-prefix": self.prefix, "recsys-stack": self.stack, "managed-by": "pulumi"}

    def __call__(self, purpose: str, kind: NameKind) -> str:
        return physical_name(self.prefix, self.stack, purpose, kind)

    def bucket(self, account_id: str, region: str, purpose: str) -> str:
        return bucket_name(self.prefix, self.stack, account_id, region, purpose)
