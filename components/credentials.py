"""Database credentials: a generated password, an RDS-style Secrets Manager secret (ARCHITECTURE.md, Secrets), and
`DatabaseClient`, what a function that uses a database is given."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import defaults
from components.stack_context import StackContext

Engine = Literal["postgres", "mysql"]


@dataclass(frozen=True)
class DatabaseClient:
    """How a function reaches a database: its environment (host, port, name, user, secret ARN), the secret it may
    read, and the resources the database is not usable before (a post-deploy invocation waits for them)."""

    environment: Mapping[str, pulumi.Input[str]]
    secret_arn: pulumi.Input[str]
    ready: Sequence[pulumi.Resource]


def rds_secret_json(engine: Engine, host: str, port: int, dbname: str, username: str, password: str) -> str:
    return json.dumps({"engine": engine, "host": host, "port": port, "dbname": dbname, "username": username,
                       "password": password}, sort_keys=True)


def generated_password(name: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    password = random.RandomPassword(
        name,
        length=defaults.PASSWORD_LENGTH,
        special=True,
        override_special=defaults.PASSWORD_OVERRIDE_SPECIAL,
        min_lower=1, min_upper=1, min_numeric=1,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.secret(password.result)


def credentials_secret(
    name: str,
    context: StackContext,
    *,
    purpose: str,
    engine: Engine,
    host: pulumi.Input[str],
    port: pulumi.Input[int],
    dbname: str,
    username: str,
    password: pulumi.Input[str],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource] | None = None,
) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]:
    """The secret and its value; depend on the value (not the secret) before anything reads it."""
    child = pulumi.ResourceOptions(parent=parent)
    secret = aws.secretsmanager.Secret(
        name, tags=context.tags,
        name=context.name(purpose, "secret"),
        description=f"recsys {purpose} credentials (RDS-style JSON)",
        # Ephemeral stacks delete at once, so a re-created stack can reuse the name; others keep a recovery window.
        recovery_window_in_days=0 if context.ephemeral else defaults.SECRET_RECOVERY_WINDOW_DAYS_RETAINED,
        opts=child,
    )
    secret_string: pulumi.Output[str] = pulumi.Output.all(host, port, password).apply(
        lambda values: rds_secret_json(engine, str(values[0]), int(values[1]), dbname, username, str(values[2])))
    # Secret even when the password input was not (an attached database's password typed in plain config).
    secret_value: pulumi.Output[str] = pulumi.Output.secret(secret_string)
    version = aws.secretsmanager.SecretVersion(
        f"{name}-value",
        secret_id=secret.id,
        secret_string=secret_value,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on or []),
    )
    return secret, version
