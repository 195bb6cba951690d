"""The optional scheduled producer: writes shoppers' sessions to the Kinesis stream, as the lab's producer did.

Each invocation sends `EVENTS_PER_INVOCATION` sessions (default 10; an event `{"events": N, "seed": S}` overrides
both) made from the source database's customers and products, which are read once per container.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from recsys import events

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "producer"))

DEFAULT_EVENTS = 10
MAX_EVENTS = 10_000


class ProducerConfigError(ValueError):
    """The function's environment or event is wrong: the message names the variable and what it should be."""


def events_requested(event: Mapping[str, Any] | None, environ: Mapping[str, str]) -> int:
    raw: Any = (event or {}).get("events", environ.get("EVENTS_PER_INVOCATION") or DEFAULT_EVENTS)
    text = str(raw).strip()
    if isinstance(raw, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_EVENTS:
        raise ProducerConfigError(
            f"EVENTS_PER_INVOCATION (or the event's 'events') must be an integer from 1 to {MAX_EVENTS}, got {raw!r}"
        )
    return int(text)


def source_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    missing = [name for name in ("SOURCE_DB_HOST", "SOURCE_DB_USER", "SOURCE_DB_NAME") if not environ.get(name)]
    if not environ.get("SOURCE_DB_PASSWORD") and not environ.get("SOURCE_DB_SECRET_ARN"):
        missing.append("SOURCE_DB_SECRET_ARN")
    if missing:
        raise ProducerConfigError(f"source database environment incomplete: set {', '.join(missing)}")
    port = environ.get("SOURCE_DB_PORT", "3306")
    if not port.isdigit():
        raise ProducerConfigError(f"SOURCE_DB_PORT must be a port number, got {port!r}")
    return {"host": environ["SOURCE_DB_HOST"], "port": int(port), "user": environ["SOURCE_DB_USER"],
            "database": environ["SOURCE_DB_NAME"]}


@functools.cache
def _secret_password(secret_arn: str) -> str:
    import boto3

    secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    return str(secret["password"])


@functools.cache
def catalogue() -> events.Catalogue:
    import pymysql

    settings = source_settings(os.environ)
    password = os.environ.get("SOURCE_DB_PASSWORD") or _secret_password(os.environ["SOURCE_DB_SECRET_ARN"])
    conn = pymysql.connect(password=password, connect_timeout=10, charset="utf8mb4", **settings)
    try:
        return events.load_catalogue(conn)
    finally:
        conn.close()


@functools.cache
def kinesis() -> Any:
    import boto3

    return boto3.client("kinesis")


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    count = events_requested(event, os.environ)
    stream = os.environ.get("KINESIS_STREAM_NAME")
    if not stream:
        raise ProducerConfigError("KINESIS_STREAM_NAME is not set")
    seed = (event or {}).get("seed")
    seed = int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else time.time_ns()
    sessions = list(events.generate_sessions(catalogue(), count, seed=seed))
    written = events.put_all(kinesis(), stream, list(events.kinesis_entries(sessions)))
    logger.info("sessions sent", extra={"events": written, "stream": stream})
    return {"events_sent": written, "stream": stream}
