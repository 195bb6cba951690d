"""The connection the Lambda functions use: settings from VECTOR_DB_*, the password from Secrets Manager when no
plaintext one is set, autocommit, and an optional pinned `hnsw.ef_search`."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.extensions


class VectorDbConfigError(ValueError):
    """The vector database settings in the environment are missing or malformed."""


@dataclass(frozen=True)
class ConnectionSettings:
    host: str
    port: int
    dbname: str
    user: str
    password: str | None
    secret_arn: str | None

    def __repr__(self) -> str:  # the password never reaches a log line through repr()
        return (f"ConnectionSettings(host={self.host!r}, port={self.port}, dbname={self.dbname!r}, user={self.user!r}, "
                f"password={'***' if self.password else None}, secret_arn={self.secret_arn!r})")


def settings_from_env(env: Mapping[str, str]) -> ConnectionSettings:
    """Read VECTOR_DB_* as docs/ARCHITECTURE.md defines them; raise with the variable's name when one is wrong."""
    missing = [name for name in ("VECTOR_DB_HOST", "VECTOR_DB_USER") if not env.get(name)]
    if not env.get("VECTOR_DB_PASSWORD") and not env.get("VECTOR_DB_SECRET_ARN"):
        missing.append("VECTOR_DB_SECRET_ARN (or VECTOR_DB_PASSWORD)")
    if missing:
        raise VectorDbConfigError(f"vector database environment incomplete: set {', '.join(missing)}")
    port_text = env.get("VECTOR_DB_PORT", "5432")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise VectorDbConfigError(f"VECTOR_DB_PORT must be a port number 1-65535, got {port_text!r}")
    return ConnectionSettings(
        host=env["VECTOR_DB_HOST"],
        port=int(port_text),
        dbname=env.get("VECTOR_DB_NAME") or "postgres",
        user=env["VECTOR_DB_USER"],
        password=env.get("VECTOR_DB_PASSWORD") or None,
        secret_arn=env.get("VECTOR_DB_SECRET_ARN") or None,
    )


@functools.cache
def _secret_password(secret_arn: str) -> str:
    """The password from the RDS-style JSON secret, fetched once per container (Secrets Manager calls cost time)."""
    import boto3

    raw = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        password = json.loads(raw)["password"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise VectorDbConfigError(f"secret {secret_arn} is not RDS-style JSON with a 'password' field") from exc
    return str(password)


class VectorDbConnection(psycopg2.extensions.connection):
    """A psycopg2 connection that can pin `hnsw.ef_search` for its queries (tests that need exact answers, benchmarks);
    unpinned, every query uses the value the loader calibrated for the index it searches."""

    pinned_ef_search: int | None = None


def connect(settings: ConnectionSettings, *, ef_search: int | None = None,
            application_name: str = "recsys") -> psycopg2.extensions.connection:
    password = settings.password if settings.password is not None else _secret_password(str(settings.secret_arn))
    conn = psycopg2.connect(
        host=settings.host, port=settings.port, dbname=settings.dbname, user=settings.user, password=password,
        connect_timeout=10, application_name=application_name, connection_factory=VectorDbConnection,
    )
    conn.pinned_ef_search = None if ef_search is None else int(ef_search)
    conn.autocommit = True
    return conn


def connect_from_env(env: Mapping[str, str] | None = None, **kwargs: Any) -> psycopg2.extensions.connection:
    """A new autocommit connection from VECTOR_DB_* (plaintext password when set, else the secret, cached)."""
    return connect(settings_from_env(os.environ if env is None else env), **kwargs)
