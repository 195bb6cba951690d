"""The `source-seeder` Lambda: writes the classicmodels-shaped source database (plus `ratings`) into the source MySQL.

Only deployed when the program creates the source database itself. Environment (docs/ARCHITECTURE.md): SOURCE_DB_HOST,
SOURCE_DB_PORT, SOURCE_DB_NAME, SOURCE_DB_USER, SOURCE_DB_SECRET_ARN (RDS-style JSON secret with the password).
Event (all optional): {"action": "seed", "scale": 1, "seed": 42} (the program's post-deploy invocation sends
{"action": "seed"}). The tables are swapped in all at once, so a failed or repeated
invocation never leaves a half-loaded table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from recsys import classicmodels


@dataclass(frozen=True)
class SeedRequest:
    scale: int
    seed: int


def parse_event(event: Any) -> SeedRequest:
    """The event's scale and seed, defaulted and validated (ValueError says what was wrong)."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise ValueError('the event must be a JSON object like {"action": "seed", "scale": 1, "seed": 42}, '
                         f"got {type(event).__name__}")
    unknown = sorted(set(event) - {"action", "scale", "seed"})
    if unknown:
        raise ValueError(f"unknown event keys {unknown}: only 'action', 'scale' and 'seed' are accepted")
    if event.get("action", "seed") != "seed":
        raise ValueError(f"unknown action {event['action']!r}: the seeder only does 'seed'")
    request = SeedRequest(scale=event.get("scale", 1), seed=event.get("seed", classicmodels.DEFAULT_SEED))
    classicmodels.validate(request.scale, request.seed)
    return request


def _password() -> str:
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["SOURCE_DB_SECRET_ARN"])
    return str(json.loads(secret["SecretString"])["password"])


def handler(event: Any, context: Any) -> dict[str, Any]:
    request = parse_event(event)
    import pymysql

    conn = pymysql.connect(host=os.environ["SOURCE_DB_HOST"], port=int(os.environ.get("SOURCE_DB_PORT", "3306")),
                           user=os.environ["SOURCE_DB_USER"], password=_password(), connect_timeout=10,
                           autocommit=False, charset="utf8mb4")
    database = os.environ.get("SOURCE_DB_NAME", "classicmodels")
    try:
        counts = classicmodels.load(conn, database, classicmodels.generate(request.scale, request.seed))
    finally:
        conn.close()
    print(json.dumps({"message": "seeded", "database": database, "scale": request.scale, "seed": request.seed,
                      "counts": counts}))
    return {"database": database, "scale": request.scale, "seed": request.seed, "counts": counts}
