"""The streaming path against real services: the transformation Lambda on a real PostgreSQL + pgvector with a tiny
serving bundle, and (when the whole local stack is available) events through Kinesis, the runner and S3.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import psycopg2.extensions
import pytest
import transformation
from recsys import vectordb
from recsys.model import BUNDLE_FORMAT, ServingModel
from safetensors.numpy import save_file

DIM = 32
CITIES = ["Pasadena", "Nantes", "Madrid", "Singapore"]
COUNTRIES = ["USA", "France", "Spain", "Singapore"]
ITEMS = [f"S{line}_{n:04d}" for line in (10, 12, 18, 24) for n in range(1000, 1010)]


def write_bundle(directory: Path) -> None:
    """A two-layer user tower over city, country (one-hot) and credit limit (scaled), random but fixed weights."""
    rng = np.random.default_rng(11)
    n_in = len(CITIES) + len(COUNTRIES) + 1
    weights = {
        "user_tower.0.weight": rng.normal(size=(16, n_in)).astype(np.float32),
        "user_tower.0.bias": rng.normal(size=16).astype(np.float32),
        "user_tower.2.weight": rng.normal(size=(DIM, 16)).astype(np.float32),
        "user_tower.2.bias": rng.normal(size=DIM).astype(np.float32),
        "item_tower.0.weight": rng.normal(size=(DIM, 1)).astype(np.float32),
        "item_tower.0.bias": rng.normal(size=DIM).astype(np.float32),
    }
    spec = {
        "format": BUNDLE_FORMAT,
        "embedding_dim": DIM,
        "rating_offset": 3.0,
        "towers": {
            "user": {
                "categorical": [
                    {"name": "city", "keys": ["city"], "categories": CITIES},
                    {"name": "country", "keys": ["country"], "categories": COUNTRIES},
                ],
                "numeric": [{"name": "credit_limit", "keys": ["credit_limit", "creditlimit", "creditLimit"],
                             "mean": 80000.0, "scale": 40000.0}],
                "layers": [{"tensor": "user_tower.0", "activation": "relu"},
                           {"tensor": "user_tower.2", "activation": "none"}],
            },
            "item": {
                "categorical": [],
                "numeric": [{"name": "msrp", "keys": ["msrp", "MSRP"], "mean": 100.0, "scale": 10.0}],
                "layers": [{"tensor": "item_tower.0", "activation": "none"}],
            },
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(directory / "model.safetensors"))
    (directory / "preprocessing.json").write_text(json.dumps(spec))


def item_vectors() -> np.ndarray:
    return np.random.default_rng(5).normal(size=(len(ITEMS), DIM)).astype(np.float32)


class CountingCursor(psycopg2.extensions.cursor):
    executed = 0

    def execute(self, query: Any, vars: Any = None) -> Any:
        CountingCursor.executed += 1
        return super().execute(query, vars)


@pytest.fixture(scope="module")
def vector_db(postgres_service: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh database with item_emb/user_emb loaded by the vectors package's own loader; yields VECTOR_DB_* env."""
    name = f"streaming_{uuid.uuid4().hex[:8]}"
    admin = postgres_service.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    tmp = tmp_path_factory.mktemp("embeddings")
    items_csv, users_csv = tmp / "item_embeddings.csv", tmp / "user_embeddings.csv"
    vectors = item_vectors()
    items_csv.write_text("id,embedding\n" + "".join(
        f'{code},"[{",".join(repr(float(v)) for v in vec)}]"\n' for code, vec in zip(ITEMS, vectors, strict=True)))
    users_csv.write_text("id,embedding\n" + "".join(
        f'{100 + i},"[{",".join(["0.5"] * DIM)}]"\n' for i in range(5)))
    env = {"VECTOR_DB_HOST": postgres_service.host, "VECTOR_DB_PORT": str(postgres_service.port),
           "VECTOR_DB_NAME": name, "VECTOR_DB_USER": postgres_service.user,
           "VECTOR_DB_PASSWORD": postgres_service.password}
    conn = vectordb.connect_from_env(env)
    vectordb.load_embeddings(conn, [vectordb.file_source("item_emb", str(items_csv)),
                                    vectordb.file_source("user_emb", str(users_csv))])
    conn.close()
    yield env
    admin = postgres_service.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def warm_container(vector_db: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in vector_db.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TOP_K", "4")
    write_bundle(tmp_path / "serving")
    model = ServingModel.from_dir(tmp_path / "serving")
    monkeypatch.setattr(transformation.container, "model", model)
    conn = vectordb.connect_from_env(vector_db)
    conn.cursor_factory = CountingCursor
    monkeypatch.setattr(transformation.container, "conn", conn)
    yield model
    transformation.container.forget_connection()


def session(i: int, history: list[tuple[str, bool]]) -> dict[str, Any]:
    return {"session_id": str(uuid.UUID(int=i)), "customer_number": 100 + i, "city": CITIES[i % 4],
            "country": COUNTRIES[i % 4], "credit_limit": 20000 + 7000 * i,
            "browse_history": [{"product_code": code, "quantity": str(1 + i % 5), "in_shopping_cart": cart}
                               for code, cart in history]}


def firehose_event(payloads: list[Any]) -> dict[str, Any]:
    def data(p: Any) -> str:
        return p if isinstance(p, str) else base64.b64encode(json.dumps(p).encode()).decode()

    return {"invocationId": str(uuid.uuid4()), "region": "us-east-1",
            "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/d",
            "records": [{"recordId": f"r{i}", "approximateArrivalTimestamp": 0, "data": data(p)}
                        for i, p in enumerate(payloads)]}


def test_a_batch_gets_exact_recommendations_from_real_pgvector_in_two_statements(warm_container: Any) -> None:
    sessions = [session(i, [(ITEMS[i % 40], False), (ITEMS[(3 * i + 1) % 40], i % 2 == 0)]) for i in range(60)]
    payloads: list[Any] = [*sessions, session(99, []), "bm90IGpzb24=",
                           session(98, [("NOT_IN_CATALOGUE", True)])]
    transformation.handler(firehose_event(sessions[:1]), None)  # a warm container has read the small catalogue
    CountingCursor.executed = 0

    response = transformation.handler(firehose_event(payloads), None)

    # Per batch, whatever its size: each of the two searches asks which load is live (one row); the catalogue itself
    # is read again only after a new load.
    assert CountingCursor.executed == 2
    results = response["records"]
    assert [r["recordId"] for r in results] == [f"r{i}" for i in range(len(payloads))]
    assert [r["result"] for r in results] == ["Ok"] * 60 + ["ProcessingFailed"] * 3

    vectors = item_vectors().astype(np.float64)
    users = warm_container.user_embeddings([s | {"creditlimit": s["credit_limit"]} for s in sessions])
    exact_ip = np.asarray(users, dtype=np.float64) @ vectors.T
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact_cos = unit @ unit.T
    for s, r, scores in zip(sessions, results[:60], exact_ip, strict=True):
        text = base64.b64decode(r["data"]).decode()
        assert text.endswith("\n")
        out = json.loads(text)
        assert {k: out[k] for k in s} == s
        assert [i["id"] for i in out["recommended_items"]] == [ITEMS[j] for j in np.argsort(-scores)[:4]]
        in_cart = [h["product_code"] for h in s["browse_history"] if h["in_shopping_cart"]]
        chosen = (in_cart or [s["browse_history"][0]["product_code"]])[0]
        assert out["similar_items"]["product_code"] == chosen
        row = exact_cos[ITEMS.index(chosen)]
        expected = [ITEMS[j] for j in np.argsort(-row) if ITEMS[j] != chosen][:4]
        assert [n["id"] for n in out["similar_items"]["similar_items"]] == expected
        assert [n["distance"] for n in out["similar_items"]["similar_items"]] == pytest.approx(
            [1 - row[ITEMS.index(code)] for code in expected], abs=1e-5)


def test_an_unreachable_database_raises_so_firehose_retries_and_the_next_batch_reconnects(
    warm_container: Any, vector_db: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    transformation.container.forget_connection()
    monkeypatch.setenv("VECTOR_DB_PORT", "1")  # nothing listens there
    with pytest.raises(psycopg2.OperationalError):
        transformation.handler(firehose_event([session(1, [(ITEMS[0], True)])]), None)

    monkeypatch.setenv("VECTOR_DB_PORT", vector_db["VECTOR_DB_PORT"])
    response = transformation.handler(firehose_event([session(1, [(ITEMS[0], True)])]), None)
    assert [r["result"] for r in response["records"]] == ["Ok"]


# ---- sessions from the source database --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source_db(mariadb_service: Any) -> Iterator[dict[str, Any]]:
    """The seeder's classicmodels data (scale 1, seed 7) in a real MariaDB database of its own."""
    import pymysql

    from harness.workflows.seed import SeedTarget, seed_target

    database = f"cm_{uuid.uuid4().hex[:8]}"
    seed_target(SeedTarget(mariadb_service.host, mariadb_service.port, mariadb_service.user,
                           mariadb_service.password, database, external=False), scale=1, seed=7)
    settings = {"host": mariadb_service.host, "port": mariadb_service.port, "user": mariadb_service.user,
                "password": mariadb_service.password, "database": database}
    yield settings
    conn = pymysql.connect(**settings)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE `{database}`")
    conn.close()


@pytest.fixture(scope="module")
def catalogue(source_db: dict[str, Any]) -> Any:
    """Customers and products read back by the producer's own query."""
    import pymysql
    from recsys import events

    conn = pymysql.connect(**source_db)
    try:
        return events.load_catalogue(conn)
    finally:
        conn.close()


def test_sessions_are_the_lab_s_events_made_from_real_customers_and_products(catalogue: Any) -> None:
    from recsys import events, firehose

    sessions = list(events.generate_sessions(catalogue, 300, seed=1))
    assert sessions == list(events.generate_sessions(catalogue, 300, seed=1)), "same seed, same sessions"
    assert sessions != list(events.generate_sessions(catalogue, 300, seed=2))
    known = {c.number for c in catalogue.customers}
    places = {(c.city, c.country) for c in catalogue.customers}
    products = {p.code for p in catalogue.products}
    for s in sessions:
        assert list(s) == ["session_id", "customer_number", "city", "country", "credit_limit", "browse_history"]
        firehose.parse_session(s)  # the transformation accepts every one of them
        assert (s["city"], s["country"]) in places and isinstance(s["credit_limit"], int)
        assert {h["product_code"] for h in s["browse_history"]} <= products
    new = [s for s in sessions if s["customer_number"] not in known]
    assert 0 < len(new) < 60, "a few sessions come from people who are not customers yet"
    assert any(h["in_shopping_cart"] for s in sessions for h in s["browse_history"])


def test_the_rate_is_held_in_small_batches_and_a_bad_rate_is_a_clear_error() -> None:
    from harness.workflows import stream

    assert stream.parse_rate("20/s") == 20.0 and stream.parse_rate("2.5") == 2.5 and stream.parse_rate("max") is None
    with pytest.raises(ValueError, match="--rate must look like 50/s"):
        stream.parse_rate("fast")
    plan = list(stream.pacing(23, 10.0))
    assert sum(n for _, n in plan) == 23 and max(n for _, n in plan) == 2
    assert [t for t, _ in plan] == sorted(t for t, _ in plan) and plan[-1][0] == pytest.approx(2.2)
    assert list(stream.pacing(1200, None)) == [(0.0, 500), (0.0, 500), (0.0, 200)]


def test_refused_kinesis_records_are_resent_and_never_silently_dropped() -> None:
    from recsys import events

    class Throttled:
        def __init__(self, refuse: int) -> None:
            self.refuse, self.calls = refuse, []

        def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls.append(len(Records))
            out = []
            for _ in Records:
                if self.refuse:
                    self.refuse -= 1
                    out.append({"ErrorCode": "ProvisionedThroughputExceededException"})
                else:
                    out.append({"SequenceNumber": "1", "ShardId": "shardId-000000000000"})
            return {"Records": out, "FailedRecordCount": sum(1 for r in out if "ErrorCode" in r)}

    entries = [{"Data": b"x", "PartitionKey": str(i)} for i in range(700)]
    client = Throttled(refuse=30)
    assert events.put_all(client, "s", entries, sleep=lambda _: None) == 700
    assert client.calls == [500, 30, 200]
    with pytest.raises(events.PutRecordsError, match="refused 5 record"):
        events.put_all(Throttled(refuse=10**6), "s", entries[:5], attempts=3, sleep=lambda _: None)


def test_the_producer_lambda_sends_sessions_from_its_source_database_to_its_stream(
    source_db: dict[str, Any], moto_service: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import producer
    from recsys import firehose

    stream_name = f"producer-{uuid.uuid4().hex[:6]}"
    for key, value in {"AWS_ENDPOINT_URL": moto_service.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "SOURCE_DB_HOST": source_db["host"], "SOURCE_DB_PORT": str(source_db["port"]),
                       "SOURCE_DB_NAME": source_db["database"], "SOURCE_DB_USER": source_db["user"],
                       "SOURCE_DB_PASSWORD": source_db["password"], "KINESIS_STREAM_NAME": stream_name,
                       "EVENTS_PER_INVOCATION": "7"}.items():
        monkeypatch.setenv(key, value)
    producer.catalogue.cache_clear()
    producer.kinesis.cache_clear()
    kinesis = boto3.client("kinesis")
    kinesis.create_stream(StreamName=stream_name, ShardCount=1)

    assert producer.handler({"events": 25, "seed": 3}, None) == {"events_sent": 25, "stream": stream_name}
    assert producer.handler({}, None)["events_sent"] == 7  # EVENTS_PER_INVOCATION, as the schedule invokes it

    iterator = kinesis.get_shard_iterator(StreamName=stream_name, ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=100)["Records"]
    assert len(records) == 32
    for record in records:
        session = firehose.parse_session(json.loads(record["Data"]))
        assert record["PartitionKey"] == session.session_id
    monkeypatch.setenv("EVENTS_PER_INVOCATION", "lots")
    with pytest.raises(producer.ProducerConfigError, match="EVENTS_PER_INVOCATION .* must be an integer from 1"):
        producer.handler({}, None)
    producer.catalogue.cache_clear()
    producer.kinesis.cache_clear()


# ---- the pipeline without the daemon: Kinesis -> runner -> transformation (real PG) -> S3 -------------------------
def test_every_session_sent_comes_out_once_even_when_the_database_goes_away_mid_stream(
    catalogue: Any, moto_service: Any, warm_container: Any, vector_db: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from recsys import events

    from harness.emulator import firehose_runner as fr

    # The catalogue's products are not in this tiny item_emb: map them onto it, so most sessions are servable.
    codes = {p.code: ITEMS[i % len(ITEMS)] for i, p in enumerate(catalogue.products)}
    sessions = list(events.generate_sessions(catalogue, 400, seed=3,
                                             mix=events.SessionMix(empty_history_rate=0.05)))
    for s in sessions:
        for h in s["browse_history"]:
            h["product_code"] = codes[h["product_code"]]
    kw = {"endpoint_url": moto_service.endpoint_url, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    kinesis, s3, fh = boto3.client("kinesis", **kw), boto3.client("s3", **kw), boto3.client("firehose", **kw)
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    s3.create_bucket(Bucket=name)
    role = "arn:aws:iam::123456789012:role/firehose"
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": arn, "RoleARN": role},
        ExtendedS3DestinationConfiguration={
            "RoleARN": role, "BucketARN": f"arn:aws:s3:::{name}", "BufferingHints": {"SizeInMBs": 1,
                                                                                       "IntervalInSeconds": 10},
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/",
            "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:123456789012:function:t"},
                {"ParameterName": "BufferSizeInMBs", "ParameterValue": "0.2"},
                {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "10"},
                {"ParameterName": "NumberOfRetries", "ParameterValue": "3"}]}]},
        })

    def invoke(function_arn: str, event: dict[str, Any]) -> Any:
        # A JSON round trip, as the Lambda service does: the runner sees what a real invocation would return.
        return json.loads(json.dumps(transformation.handler(json.loads(json.dumps(event)), None)))

    now = [1_900_000_000.0]
    runner = fr.FirehoseRunner(fh.describe_delivery_stream(DeliveryStreamName=name), kinesis, s3, invoke,
                               lambda: now[0])
    entries = list(events.kinesis_entries(sessions))
    events.put_all(kinesis, name, entries[:200])
    runner.poll_once()
    now[0] += 10
    runner.poll_once()

    # The database goes away for a while: batches fail and are retried, none is lost.
    transformation.container.forget_connection()
    monkeypatch.setenv("VECTOR_DB_PORT", "1")
    events.put_all(kinesis, name, entries[200:])
    runner.poll_once()
    for step in (11, 1.5):  # the processor interval elapses, then the first retry's backoff
        now[0] += step
        runner.poll_once()
    assert runner.counters.invocation_failures == 2
    monkeypatch.setenv("VECTOR_DB_PORT", vector_db["VECTOR_DB_PORT"])
    for _ in range(60):
        now[0] += 5
        runner.poll_once()
        if runner.records_buffered == 0 and runner.events_read == len(sessions):
            break

    delivered: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        body = s3.get_object(Bucket=name, Key=obj["Key"])["Body"].read().decode()
        target = failed if obj["Key"].startswith("errors/processing-failed/") else delivered
        target.extend(json.loads(line) for line in body.splitlines())
    failed_sessions = [json.loads(base64.b64decode(e["rawData"])) for e in failed]
    out_ids = sorted([d["session_id"] for d in delivered] + [f["session_id"] for f in failed_sessions])
    assert out_ids == sorted(s["session_id"] for s in sessions), "every session exactly once, delivered or failed"
    assert all(f["browse_history"] == [] for f in failed_sessions)
    assert {e["errorCode"] for e in failed} == {"Lambda.ProcessingFailed"}, "the outage cost retries, not records"
    assert len(failed_sessions) == sum(1 for s in sessions if not s["browse_history"])
    assert all(len(d["recommended_items"]) == 4 for d in delivered)
    c = runner.counters
    assert c.events_read == c.records_delivered + c.records_failed == len(sessions)


def test_the_streaming_benchmark_runs_at_its_quick_size() -> None:
    """Proves bench/benchmarks/streaming.py still works end to end; its numbers are not judged here (shared, noisy
    machines)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "bench.benchmarks.streaming", "--quick"], capture_output=True,
                          text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    scale1 = result["streaming"]["scale1"]
    for key in ("ours_records_per_s", "baseline_records_per_s", "ratio"):
        assert scale1[key] > 0, key
    assert scale1["items"] == 110 and scale1["batch_size"] == 500
    assert {"cores", "memory_mb", "cpu_model"} <= set(result["machine"])


# ---- end to end through the local stack: the engine's deployment, the daemon's runner and Lambda workers -----------
@pytest.fixture(scope="module")
def streaming_stack(tmp_path_factory: pytest.TempPathFactory, postgres_service: Any,
                    mariadb_service: Any) -> Iterator[Any]:
    """The real program deployed by the engine into its own moto, the session's PostgreSQL and MariaDB; the source is
    the seeder's data (scale 1, seed 42) and the artifacts the trainer's layout for it (fixed random weights)."""
    import io

    from rich.console import Console

    from bench.benchmarks import streaming as bench
    from harness.emulator import control_plane, engine, services
    from harness.emulator import state as st
    from harness.workflows.seed import SeedTarget, seed_target

    base = tmp_path_factory.mktemp("streaming-stack")
    bench.write_artifacts(base / "artifacts", 1)
    database = f"stream_{uuid.uuid4().hex[:8]}"
    seed_target(SeedTarget(mariadb_service.host, mariadb_service.port, mariadb_service.user,
                           mariadb_service.password, database, external=False), scale=1, seed=42)
    moto = services.start_moto(base / "moto")
    running = services.RunningServices(moto=moto, postgres=postgres_service, mariadb=mariadb_service)
    state_dir = base / "state"
    st.update_state(state_dir, lambda s: s.update(stack="local", services=running.to_dict(), source={
        "external": True, "host": mariadb_service.host, "port": mariadb_service.port, "database": database,
        "username": mariadb_service.user, "password": mariadb_service.password}))
    try:
        outputs = engine.deploy("local", state_dir, running, console=Console(file=io.StringIO()),
                                config_overrides={"recsys:artifactsDir": str(base / "artifacts")})
        st.update_state(state_dir, lambda s: s.update(outputs=outputs))  # as `harness up` records them
        yield state_dir, outputs
    finally:
        from harness.emulator.materializers.databases import stop_instances

        control_plane.stop(state_dir)
        stop_instances(state_dir, remove_data=True)
        services.stop_moto(moto)


def test_n_sessions_in_n_records_out_even_when_the_database_stops_mid_stream(streaming_stack: Any) -> None:
    import re
    import time

    from recsys import events

    from harness.cli import stream as stream_command
    from harness.cli.target import local_handle
    from harness.emulator.control_plane import runner_state_path
    from harness.workflows import stream

    state_dir, outputs = streaming_stack
    handle = local_handle(state_dir)
    catalogue = stream.load_catalogue(handle)

    first = stream.produce_and_wait(handle, 150, None, timeout_s=240, seed=11, empty_history_rate=0.05)
    assert first.events_sent == 150 and first.records_delivered + first.records_failed == 150
    assert first.objects >= 1 and first.duplicates == 0 and first.without_recommendations == 0

    # The vector database (the engine's PostgreSQL for the RDS instance) stops mid-stream and restarts on its port.
    from harness.emulator import services
    from harness.emulator.materializers.databases import rds_dir

    port = int(outputs["vector_db_port"]["value"])
    record = next(p for p in rds_dir(state_dir).glob("*/service.json") if json.loads(p.read_text())["port"] == port)
    server = services.PostgresService(**json.loads(record.read_text()))
    services.stop_postgres(server)
    try:
        produced = stream.produce(handle, 150, None, seed=12, empty_history_rate=0.05)
        assert len(produced.session_ids) == 150
        time.sleep(3)
    finally:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(services, "free_port", lambda host=services.HOST: port)
            restarted = services.start_postgres(Path(server.data_dir).parent, log_dir=Path(server.log_path).parent)
        record.write_text(json.dumps({**json.loads(record.read_text()), "pid": restarted.pid}))
    second = stream.wait_for_delivery(handle, produced, 240)
    assert second.records_delivered + second.records_failed == 150
    delivery_stream = outputs["delivery_stream_name"]["value"]
    stats = json.loads(runner_state_path(state_dir, delivery_stream).read_text())
    assert stats["invocation_failures"] >= 1, "the outage was felt by the processor"
    print(f"\nfirst: {first.counts()}\nsecond: {second.counts()}\nrunner: {stats}")

    # The control plane gives its runners CloudWatch: the records delivered to S3 show as Firehose's own metric.
    import datetime as dt

    cloudwatch = handle.client("cloudwatch")
    metric_sum = -1.0
    for _ in range(30):
        now = dt.datetime.now(dt.UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Firehose", MetricName="DeliveryToS3.Records", Statistics=["Sum"], Period=60,
            Dimensions=[{"Name": "DeliveryStreamName", "Value": delivery_stream}],
            StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=1))["Datapoints"]
        metric_sum = sum(point["Sum"] for point in points)
        stats = json.loads(runner_state_path(state_dir, delivery_stream).read_text())
        if metric_sum == stats["records_delivered"]:
            break
        time.sleep(1)
    assert metric_sum == stats["records_delivered"] >= first.records_delivered + second.records_delivered

    import os
    import subprocess
    import sys

    stream_command.remember(produced, state_dir)  # as `harness stream produce` does
    cli = subprocess.run([sys.executable, "-m", "harness", "stream", "status", "--json"], capture_output=True,
                         text=True, timeout=120, cwd=Path(__file__).parents[2],
                         env={**os.environ, "RECSYS_LOCAL_DIR": str(state_dir)})
    assert cli.returncode == 0, cli.stderr
    shown = json.loads(cli.stdout)
    assert (shown["kinesis_status"], shown["delivery_status"]) == ("ACTIVE", "ACTIVE")
    assert shown["last_produce"] == second.counts()

    expected = [s["session_id"] for seed in (11, 12) for s in events.generate_sessions(
        catalogue, 150, seed=seed, mix=events.SessionMix(empty_history_rate=0.05))]
    s3 = handle.client("s3")
    bucket = outputs["recommendations_bucket_id"]["value"]
    delivered, errors = [], []
    name = re.escape(delivery_stream) + r"-\d+-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}"
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        lines = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode().splitlines()
        if obj["Key"].startswith("errors/"):
            assert re.fullmatch(r"errors/processing-failed/\d{4}/\d{2}/\d{2}/\d{2}/" + name, obj["Key"])
            errors.extend(json.loads(line) for line in lines)
        else:
            assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\d{2}/" + name, obj["Key"])
            delivered.extend(json.loads(line) for line in lines)
    failed_sessions = [json.loads(base64.b64decode(e["rawData"])) for e in errors]
    assert sorted([d["session_id"] for d in delivered] + [f["session_id"] for f in failed_sessions]) == sorted(
        expected), "every session sent is in exactly one delivered record or one error record"
    for d in delivered:
        assert len(d["recommended_items"]) == 5 and d["similar_items"]["similar_items"]
    for e, f in zip(errors, failed_sessions, strict=True):
        # Failed on its own merits (nothing browsed), or its batch outlived the retries during the outage.
        assert (e["errorCode"] == "Lambda.ProcessingFailed" and f["browse_history"] == []) or (
            e["errorCode"] == "Lambda.FunctionError")
