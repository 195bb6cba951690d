"""The `source-seeder` Lambda: writes the classicmodels source database (plus `ratings`) into the source MySQL.

Only deployed when the program creates the source database itself. Environment (docs/ARCHITECTURE.md): SOURCE_DB_HOST,
SOURCE_DB_PORT, SOURCE_DB_NAME, SOURCE_DB_USER, SOURCE_DB_SECRET_ARN (RDS-style JSON secret with the password).
Events (every key optional):
- `{"action": "seed", "scale": 1, "seed": 42}`: the generated classicmodels-shaped data (the program's post-deploy
  invocation sends `{"action": "seed"}`);
- `{"action": "seed", "classicmodels_dump": {"bucket": B, "key": K}, "seed": 42}`: the public sample's own dump
  (`mysqlsampledatabase.sql`) read from S3, its real rows plus ratings generated over its real orders (`seed` fixes
  the ratings; the dump has its own size, so no `scale`).
The dump is read and checked before the database is touched. The tables are swapped in all at once, so a failed or
repeated invocation never leaves a half-loaded table. Bad input raises ValueError with a one-line message.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from recsys import classicmodels
from recsys.classicmodels.dump import check_size

EVENT_KEYS = ("action", "scale", "seed", "classicmodels_dump")
EXAMPLE = ('{"action": "seed", "scale": 1, "seed": 42} or '
           '{"action": "seed", "classicmodels_dump": {"bucket": ..., "key": ...}}')


@dataclass(frozen=True)
class DumpLocation:
    bucket: str
    key: str

    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class SeedRequest:
    scale: int
    seed: int
    dump: DumpLocation | None = None


def parse_event(event: Any) -> SeedRequest:
    """The event's scale, seed and dump location, defaulted and validated (ValueError says what was wrong)."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise ValueError(f"the event must be a JSON object like {EXAMPLE}, got {type(event).__name__}")
    unknown = sorted(set(event) - set(EVENT_KEYS))
    if unknown:
        raise ValueError(f"unknown event keys {unknown}: only {', '.join(repr(k) for k in EVENT_KEYS)} are accepted")
    if event.get("action", "seed") != "seed":
        raise ValueError(f"unknown action {event['action']!r}: the seeder only does 'seed'")
    dump = _dump_location(event["classicmodels_dump"]) if "classicmodels_dump" in event else None
    if dump is not None and "scale" in event:
        raise ValueError("'scale' does not apply to 'classicmodels_dump': the dump has the sample's own size")
    request = SeedRequest(scale=event.get("scale", 1), seed=event.get("seed", classicmodels.DEFAULT_SEED), dump=dump)
    classicmodels.validate(request.scale, request.seed)
    return request


def _dump_location(value: Any) -> DumpLocation:
    if (not isinstance(value, dict) or set(value) != {"bucket", "key"}
            or not all(isinstance(value[k], str) and value[k] for k in ("bucket", "key"))):
        raise ValueError(f"'classicmodels_dump' must be {{\"bucket\": NAME, \"key\": KEY}} naming the uploaded "
                         f"mysqlsampledatabase.sql, got {json.dumps(value)[:200]}")
    return DumpLocation(bucket=value["bucket"], key=value["key"])


def read_dump(s3: Any, location: DumpLocation) -> bytes:
    """The dump's bytes; a missing object or one far too big for the dump is a ValueError naming it."""
    from botocore.exceptions import ClientError

    try:
        obj = s3.get_object(Bucket=location.bucket, Key=location.key)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise ValueError(f"no object {location.url()} ({code}): upload mysqlsampledatabase.sql there first") \
                from None
        raise
    try:
        check_size(int(obj.get("ContentLength") or 0), location.url())
        return bytes(obj["Body"].read())
    finally:
        obj["Body"].close()


def dataset_for(request: SeedRequest, s3: Any = None) -> classicmodels.Dataset:
    """What to write: the dump's rows (read from S3 through `s3`) or the generated data."""
    if request.dump is None:
        return classicmodels.generate(request.scale, request.seed)
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    data = read_dump(s3, request.dump)
    return classicmodels.dataset_from_dump(data, request.seed, source=request.dump.url())


def _password() -> str:
    import boto3

    secret = boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["SOURCE_DB_SECRET_ARN"])
    return str(json.loads(secret["SecretString"])["password"])


def handler(event: Any, context: Any) -> dict[str, Any]:
    request = parse_event(event)
    dataset = dataset_for(request)  # a file that is not the dump fails here, before the database is touched
    import pymysql

    conn = pymysql.connect(host=os.environ["SOURCE_DB_HOST"], port=int(os.environ.get("SOURCE_DB_PORT", "3306")),
                           user=os.environ["SOURCE_DB_USER"], password=_password(), connect_timeout=10,
                           autocommit=False, charset="utf8mb4")
    database = os.environ.get("SOURCE_DB_NAME", "classicmodels")
    try:
        counts = classicmodels.load(conn, database, dataset)
    finally:
        conn.close()
    result: dict[str, Any] = {"database": database, "scale": dataset.scale, "seed": request.seed, "counts": counts}
    if request.dump is not None:
        result["classicmodels_dump"] = request.dump.url()
    print(json.dumps({"message": "seeded", **result}))
    return result
