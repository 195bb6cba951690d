"""`seed_stack`: a stack's source seeded through its seeder function, with only a `StackHandle` (issue 16).

The handle's S3 is moto's (in process); its Lambda API runs the real seeder handler (lambda_src/seeder.py) in process,
with the database connection and the swap recorded, so the event the workflow sends is the one the function accepts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import seeder  # lambda_src/seeder.py
from moto import mock_aws
from recsys import classicmodels as cm

from harness.workflows import seed as seeding
from harness.workflows.handle import INVOKE_TIMEOUT_S, AwsEndpoints, StackHandle

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mysqlsampledatabase-excerpt.sql"
BUCKET = "de-c1w4-123456789012-us-east-1-ml-artifacts"
FUNCTION = "de-c1w4-source-seeder-lambda"


@dataclass
class FakeLambda:
    """The Lambda API's Invoke, answering with the real seeder handler (or a prepared error)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    loads: list[cm.Dataset] = field(default_factory=list)
    function_error: dict[str, str] | None = None

    def invoke(self, FunctionName: str, Payload: bytes, InvocationType: str, LogType: str) -> dict[str, Any]:  # noqa: N803
        assert (FunctionName, InvocationType) == (FUNCTION, "RequestResponse")
        event = json.loads(Payload)
        self.events.append(event)
        if self.function_error is not None:
            return {"StatusCode": 200, "FunctionError": "Unhandled",
                    "Payload": io.BytesIO(json.dumps(self.function_error).encode())}
        try:
            answer = seeder.handler(event, None)
        except ValueError as err:  # what the Lambda runtime reports for a handler's exception
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(
                {"errorType": type(err).__name__, "errorMessage": str(err)}).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer, default=str).encode())}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StackHandle, FakeLambda]]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "SOURCE_DB_HOST": "db.internal",
                        "SOURCE_DB_NAME": "classicmodels", "SOURCE_DB_USER": "admin"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(Name="src", SecretString=json.dumps({"password": "pw"}))
        monkeypatch.setenv("SOURCE_DB_SECRET_ARN", secret["ARN"])
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        fake = FakeLambda()

        class Connection:
            def close(self) -> None:
                pass

        import pymysql

        monkeypatch.setattr(pymysql, "connect", lambda **kwargs: Connection())

        def load(conn: Any, database: str, dataset: cm.Dataset, **kwargs: Any) -> dict[cm.TableName, int]:
            fake.loads.append(dataset)
            return dataset.counts()

        monkeypatch.setattr(cm, "load", load)
        handle = StackHandle(name="dev", outputs={"source_seeder_function_name": FUNCTION,
                                                  "artifacts_bucket_id": BUCKET},
                             aws=AwsEndpoints(credentials=("testing", "testing")))
        handle._clients[("lambda", INVOKE_TIMEOUT_S)] = fake
        yield handle, fake


def test_the_generated_data_is_seeded_by_invoking_the_stacks_seeder(stack: tuple[StackHandle, FakeLambda]) -> None:
    handle, fake = stack
    heard: list[str] = []

    summary = seeding.seed_stack(handle, scale=2, seed=7, on_progress=heard.append)

    assert fake.events == [{"action": "seed", "seed": 7, "scale": 2}]
    assert fake.loads[0].tables == cm.generate(2, 7).tables
    assert summary.counts == dict(cm.generate(2, 7).counts())
    assert (summary.target, summary.scale, summary.seed, summary.classicmodels_dump) == (
        f"classicmodels through {FUNCTION}", 2, 7, None)
    assert heard == [f"invoking {FUNCTION} (scale 2, seed 7)"]


def test_the_dump_is_uploaded_to_the_artifacts_bucket_and_named_in_the_event(
        stack: tuple[StackHandle, FakeLambda]) -> None:
    handle, fake = stack

    summary = seeding.seed_stack(handle, seed=3, classicmodels_dump=FIXTURE)

    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key="seed/mysqlsampledatabase.sql")["Body"].read()
    assert stored == FIXTURE.read_bytes()
    assert fake.events == [{"action": "seed", "seed": 3, "classicmodels_dump": {
        "bucket": BUCKET, "key": "seed/mysqlsampledatabase.sql"}}]
    expected = cm.dataset_from_dump(FIXTURE.read_bytes(), 3)
    assert fake.loads[0].tables == expected.tables
    assert summary.counts["customers"] == 7 and summary.counts["ratings"] == 22
    assert summary.classicmodels_dump == f"s3://{BUCKET}/seed/mysqlsampledatabase.sql"


def test_a_file_that_is_not_the_dump_is_refused_before_anything_is_uploaded_or_invoked(
        stack: tuple[StackHandle, FakeLambda], tmp_path: Path) -> None:
    handle, fake = stack
    wrong = tmp_path / "orders.csv"
    wrong.write_text("orderNumber,status\n10100,Shipped\n")
    with pytest.raises(seeding.SeedError) as refused:
        seeding.seed_stack(handle, classicmodels_dump=wrong)
    assert str(refused.value) == (
        f"{wrong} holds no INSERT into any classicmodels table: expected mysqlsampledatabase.sql from "
        "mysqltutorial.org (the classicmodels sample's CREATE TABLE and INSERT statements)")
    with pytest.raises(seeding.SeedError, match=r"no such file; download mysqlsampledatabase.sql"):
        seeding.seed_stack(handle, classicmodels_dump=tmp_path / "missing.sql")
    with pytest.raises(seeding.SeedError, match=r"is a directory: pass the mysqlsampledatabase.sql file inside it"):
        seeding.seed_stack(handle, classicmodels_dump=tmp_path)
    assert fake.events == []
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scale": 0}, "scale must be a whole number from 1 to 1000 (got 0)"),
    ({"seed": -1}, "seed must be a whole number >= 0 (got -1)"),
    ({"scale": 2, "classicmodels_dump": FIXTURE},
     "scale 2 does not apply to the classicmodels dump: it has the sample's own size"),
])
def test_bad_arguments_change_nothing(stack: tuple[StackHandle, FakeLambda], kwargs: dict[str, Any],
                                      message: str) -> None:
    handle, fake = stack
    with pytest.raises(seeding.SeedError) as refused:
        seeding.seed_stack(handle, **kwargs)
    assert str(refused.value).startswith(message)
    assert fake.events == []


def test_the_functions_own_error_is_one_line_with_its_type(stack: tuple[StackHandle, FakeLambda]) -> None:
    handle, fake = stack
    fake.function_error = {"errorType": "OperationalError", "errorMessage": "(2003, \"Can't connect to MySQL\")"}
    with pytest.raises(seeding.SeedError) as failed:
        seeding.seed_stack(handle)
    assert str(failed.value) == (f"the seeder function {FUNCTION} failed, the source database is unchanged: "
                                 "OperationalError: (2003, \"Can't connect to MySQL\")")


def test_a_stack_attached_to_its_users_mysql_is_only_overwritten_when_asked(
        stack: tuple[StackHandle, FakeLambda], monkeypatch: pytest.MonkeyPatch) -> None:
    _, fake = stack
    attached = StackHandle(name="lab", outputs={
        "source_db_host": "lab-db.example", "source_db_port": 3306, "source_db_username": "admin",
        "source_db_password": "pw", "source_db_name": "classicmodels", "artifacts_bucket_id": BUCKET})
    with pytest.raises(seeding.SeedError) as refused:
        seeding.seed_stack(attached)
    assert str(refused.value) == (
        "the stack lab has no seeder function (no `source_seeder_function_name` output): its source is a MySQL the "
        "program attaches to (`harness up --source-url`, config sourceDbHost), which holds your own data; pass "
        "--overwrite-external to replace its classicmodels tables from here")
    assert fake.loads == []

    connected: list[dict[str, Any]] = []
    import pymysql

    class Connection:
        def close(self) -> None:
            pass

    def connect(**kwargs: Any) -> Connection:
        connected.append(kwargs)
        return Connection()

    monkeypatch.setattr(pymysql, "connect", connect)
    summary = seeding.seed_stack(attached, classicmodels_dump=FIXTURE, seed=5, overwrite_external=True)

    assert (connected[0]["host"], connected[0]["port"], connected[0]["user"]) == ("lab-db.example", 3306, "admin")
    assert fake.loads[0].tables == cm.dataset_from_dump(FIXTURE.read_bytes(), 5).tables
    assert summary.target == "admin@lab-db.example:3306/classicmodels (external)"
    assert fake.events == []


def test_env_points_the_mysql_client_at_an_external_source() -> None:
    # `harness env` once asked the seed workflow where the source was; it reads the recorded state itself now.
    from harness.cli.stack import mysql_client_settings

    state = {"source": {"external": True, "host": "lab-db.example", "port": 3307, "database": "classicmodels",
                        "username": "admin", "password": "pw"},
             "outputs": {"source_db_host": {"value": "ignored"}}}
    assert mysql_client_settings(state) == {"host": "lab-db.example", "port": "3307", "user": "admin",
                                            "password": "pw", "database": "classicmodels"}
