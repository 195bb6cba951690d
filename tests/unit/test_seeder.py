"""The seeder Lambda's events: generated data or the public dump read from S3, checked before the database is touched.

S3 and Secrets Manager are moto's (in process); the database connection and the swap are recorded, not run (the real
load is tests/integration/test_seed.py's)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import seeder  # lambda_src/seeder.py, as the Lambda runtime imports it
from moto import mock_aws
from recsys import classicmodels as cm

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mysqlsampledatabase-excerpt.sql"
BUCKET = "de-c1w4-123456789012-us-east-1-ml-artifacts"
KEY = "seed/mysqlsampledatabase.sql"


# --- events -------------------------------------------------------------------------------------------------------
def test_the_default_event_seeds_generated_data_at_scale_one() -> None:
    assert seeder.parse_event(None) == seeder.parse_event({"action": "seed"}) == seeder.SeedRequest(1, 42, None)
    assert seeder.parse_event({"scale": 3, "seed": 7}) == seeder.SeedRequest(3, 7, None)


def test_a_dump_event_names_the_object_and_may_fix_the_ratings_seed() -> None:
    request = seeder.parse_event({"action": "seed", "classicmodels_dump": {"bucket": BUCKET, "key": KEY}, "seed": 9})
    assert request == seeder.SeedRequest(scale=1, seed=9, dump=seeder.DumpLocation(BUCKET, KEY))
    assert request.dump is not None and request.dump.url() == f"s3://{BUCKET}/{KEY}"


@pytest.mark.parametrize(("event", "message"), [
    ({"scael": 2}, "unknown event keys ['scael']: only 'action', 'scale', 'seed', 'classicmodels_dump' are accepted"),
    ({"action": "drop"}, "unknown action 'drop': the seeder only does 'seed'"),
    ({"classicmodels_dump": {"bucket": BUCKET, "key": KEY}, "scale": 2},
     "'scale' does not apply to 'classicmodels_dump': the dump has the sample's own size"),
    ({"classicmodels_dump": f"s3://{BUCKET}/{KEY}"},
     '\'classicmodels_dump\' must be {"bucket": NAME, "key": KEY} naming the uploaded mysqlsampledatabase.sql, got '
     f'"s3://{BUCKET}/{KEY}"'),
    ({"classicmodels_dump": {"bucket": BUCKET, "key": ""}}, "'classicmodels_dump' must be {\"bucket\": NAME"),
    ({"classicmodels_dump": {"bucket": BUCKET}}, "'classicmodels_dump' must be {\"bucket\": NAME"),
    ({"scale": 0}, "scale must be a whole number from 1 to 1000 (got 0)"),
    ([1], "the event must be a JSON object like"),
])
def test_bad_events_are_refused_in_one_line(event: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        seeder.parse_event(event)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


# --- the handler --------------------------------------------------------------------------------------------------
class Recorded:
    def __init__(self) -> None:
        self.connects: list[dict[str, Any]] = []
        self.loads: list[tuple[str, cm.Dataset]] = []
        self.closed = 0


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorded]:
    """The seeder's environment, a secret in moto, and a database whose connection and swap are recorded."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    recorded = Recorded()
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(Name="src", SecretString=json.dumps({"password": "pw"}))
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        for name, value in {"SOURCE_DB_HOST": "db.internal", "SOURCE_DB_PORT": "3306",
                            "SOURCE_DB_NAME": "classicmodels", "SOURCE_DB_USER": "admin",
                            "SOURCE_DB_SECRET_ARN": secret["ARN"]}.items():
            monkeypatch.setenv(name, value)

        class Connection:
            def close(self) -> None:
                recorded.closed += 1

        def connect(**kwargs: Any) -> Connection:
            recorded.connects.append(kwargs)
            return Connection()

        def load(conn: Any, database: str, dataset: cm.Dataset) -> dict[cm.TableName, int]:
            recorded.loads.append((database, dataset))
            return dataset.counts()

        import pymysql

        monkeypatch.setattr(pymysql, "connect", connect)
        monkeypatch.setattr(cm, "load", load)
        yield recorded


def put(body: bytes, key: str = KEY) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)


def test_a_dump_event_loads_the_dumps_rows_and_ratings_over_its_orders(lambda_env: Recorded) -> None:
    put(FIXTURE.read_bytes())

    result = seeder.handler({"action": "seed", "classicmodels_dump": {"bucket": BUCKET, "key": KEY}, "seed": 4}, None)

    expected = cm.dataset_from_dump(FIXTURE.read_bytes(), 4)
    [(database, dataset)] = lambda_env.loads
    assert database == "classicmodels" and dataset.tables == expected.tables
    assert [row[0] for row in dataset.tables["customers"]] == [103, 112, 114, 124, 125, 167, 172]
    assert result == {"database": "classicmodels", "scale": 1, "seed": 4, "counts": expected.counts(),
                      "classicmodels_dump": f"s3://{BUCKET}/{KEY}"}
    assert lambda_env.connects[0]["host"] == "db.internal" and lambda_env.connects[0]["password"] == "pw"
    assert lambda_env.closed == 1


def test_the_generated_data_is_still_the_default(lambda_env: Recorded) -> None:
    result = seeder.handler({"action": "seed", "scale": 1, "seed": 3}, None)
    [(_, dataset)] = lambda_env.loads
    assert dataset.tables == cm.generate(1, 3).tables
    assert result == {"database": "classicmodels", "scale": 1, "seed": 3, "counts": cm.generate(1, 3).counts()}


def test_a_file_that_is_not_the_dump_fails_before_the_database_is_touched(lambda_env: Recorded) -> None:
    put(b"SELECT 1;\n")
    with pytest.raises(cm.DumpError, match=rf"^s3://{BUCKET}/{KEY} holds no INSERT into any classicmodels table"):
        seeder.handler({"classicmodels_dump": {"bucket": BUCKET, "key": KEY}}, None)
    assert lambda_env.connects == [] and lambda_env.loads == []


def test_a_missing_object_says_to_upload_the_dump(lambda_env: Recorded) -> None:
    with pytest.raises(ValueError) as caught:
        seeder.handler({"classicmodels_dump": {"bucket": BUCKET, "key": "seed/nothing.sql"}}, None)
    assert str(caught.value) == (f"no object s3://{BUCKET}/seed/nothing.sql (NoSuchKey): upload "
                                 "mysqlsampledatabase.sql there first")
    assert lambda_env.connects == []


def test_an_object_far_bigger_than_the_dump_is_not_read(lambda_env: Recorded, monkeypatch: pytest.MonkeyPatch) -> None:
    put(FIXTURE.read_bytes())
    monkeypatch.setattr("recsys.classicmodels.dump.MAX_DUMP_BYTES", 1000)

    def parse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the object was read and parsed")

    monkeypatch.setattr(cm, "dataset_from_dump", parse)
    with pytest.raises(cm.DumpError, match=rf"^s3://{BUCKET}/{KEY} is [\d,]+ bytes, far more than the classicmodels"):
        seeder.handler({"classicmodels_dump": {"bucket": BUCKET, "key": KEY}}, None)
    assert lambda_env.connects == []
