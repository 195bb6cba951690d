"""The Glue job through Glue's API: a real MariaDB source, the AWS emulator (moto server), local Spark.

The job is set up in the emulator as the program deploys it (script in the scripts bucket, a JDBC connection whose
credentials are in Secrets Manager, default arguments), then started by name through the job-run service
(`harness.emulator.glue_runs`, what the control plane answers `StartJobRun` with); its progress and summary are read
from CloudWatch Logs as the workflow reads them. What lands under `ratings-ml-training/` is compared with the same join
computed independently by MariaDB. On the whole local stack, `harness etl run` and plain boto3 calls (what `aws glue
start-job-run` sends) go through the control plane's gateway.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pymysql
import pytest

from harness.emulator.glue_runs import GlueRunService
from harness.emulator.services import MariaDBService, MotoService
from harness.workflows import etl

SCRIPT = Path(__file__).resolve().parents[2] / "glue_scripts" / "ratings_etl.py"
PREFIX = "ratings-ml-training/"
TABLE = "ratings_ml_training"

# The classicmodels columns the job reads, with the source's types (plus a few it does not read).
SCHEMA = """
CREATE TABLE customers (
  customerNumber int NOT NULL PRIMARY KEY, customerName varchar(50) NOT NULL, city varchar(50) NOT NULL,
  state varchar(50) NULL, postalCode varchar(15) NULL, country varchar(50) NOT NULL, creditLimit decimal(10,2) NULL);
CREATE TABLE products (
  productCode varchar(15) NOT NULL PRIMARY KEY, productName varchar(70) NOT NULL, productLine varchar(50) NOT NULL,
  productScale varchar(10) NOT NULL, quantityInStock smallint NOT NULL, buyPrice decimal(10,2) NOT NULL,
  MSRP decimal(10,2) NOT NULL);
CREATE TABLE ratings (
  customerNumber int NOT NULL, productCode varchar(15) NOT NULL, productRating int NOT NULL,
  PRIMARY KEY (customerNumber, productCode));
"""
LINES = ["Classic Cars", "Motorcycles", "Planes", "Ships", "Trains", "Trucks and Buses", "Vintage Cars"]
SCALES = ["1:10", "1:12", "1:18", "1:24", "1:32", "1:50", "1:700", "1:72"]
CITIES = [("Nantes", None, "44000", "France"), ("Las Vegas", "NV", "83030", "USA"), ("Melbourne", "Victoria", "3004",
          "Australia"), ("Warszawa", None, None, "Poland"), ("San Francisco", "CA", "94217", "USA")]

JOINED = """
SELECT r.customerNumber, c.city, c.state, c.postalCode, c.country, c.creditLimit, r.productCode, p.productLine,
       p.productScale, p.quantityInStock, p.buyPrice, p.MSRP, r.productRating
FROM ratings r JOIN customers c ON c.customerNumber = r.customerNumber JOIN products p ON p.productCode = r.productCode
WHERE r.productRating BETWEEN 1 AND 5
"""


def seed_classicmodels(conn: Any, seed: int = 7) -> dict[str, int]:
    """A small classicmodels-shaped source with NULL features, orphan ratings and ratings outside 1-5."""
    rng = random.Random(seed)
    customers = []
    for i in range(40):
        city, state, postal, country = CITIES[i % len(CITIES)]
        credit = None if i % 9 == 0 else Decimal(rng.randrange(0, 20_000_000)) / 100
        customers.append((103 + i * 3, f"Customer {i}", city, state, postal, country, credit))
    products = [(f"S{10 + i % 7}_{1000 + i}", f"Model {i}", LINES[i % len(LINES)], SCALES[i % len(SCALES)],
                 rng.randrange(0, 9999), Decimal(rng.randrange(1000, 10000)) / 100,
                 Decimal(rng.randrange(10000, 25000)) / 100) for i in range(25)]
    ratings = set()
    for number, *_ in customers[:-4]:  # the last four customers rate nothing: no partition for them
        for code, *_ in rng.sample(products, rng.randrange(1, 8)):
            ratings.add((number, code, rng.randrange(1, 6)))
    bad = {(99999, products[0][0], 4), (customers[0][0], "S99_9999", 3),  # orphans
           (customers[1][0], products[5][0], 0), (customers[2][0], products[6][0], 6)}  # outside 1-5
    with conn.cursor() as cur:
        for statement in filter(str.strip, SCHEMA.split(";")):
            cur.execute(statement)
        cur.executemany("INSERT INTO customers VALUES (%s,%s,%s,%s,%s,%s,%s)", customers)
        cur.executemany("INSERT INTO products VALUES (%s,%s,%s,%s,%s,%s,%s)", products)
        cur.executemany("INSERT IGNORE INTO ratings VALUES (%s,%s,%s)", sorted(ratings | bad))
    conn.commit()
    return {"orphans": 2, "out_of_range": 2}


@dataclass(frozen=True)
class DeployedJob:
    moto: MotoService
    job_name: str
    datalake: str
    database: str
    secret_name: str
    source_db: str


def aws(moto: MotoService, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def deployed_job(mariadb_service: MariaDBService, moto_service: MotoService) -> Iterator[DeployedJob]:
    """A seeded source database and the Glue job, connection, secret and buckets as the program creates them."""
    suffix = uuid.uuid4().hex[:8]
    source_db = f"classicmodels_{suffix}"
    admin = mariadb_service.connect()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {source_db}")
    conn = mariadb_service.connect(source_db)
    seed_classicmodels(conn)
    conn.close()

    s3, glue, secrets = aws(moto_service, "s3"), aws(moto_service, "glue"), aws(moto_service, "secretsmanager")
    scripts, datalake = f"scripts-{suffix}", f"datalake-{suffix}"
    for bucket in (scripts, datalake):
        s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(SCRIPT), scripts, "glue/ratings_etl-0123456789abcdef.py")
    secret_name = f"source-db-{suffix}"
    secrets.create_secret(Name=secret_name, SecretString=json.dumps({
        "engine": "mysql", "host": mariadb_service.host, "port": mariadb_service.port, "dbname": source_db,
        "username": mariadb_service.user, "password": mariadb_service.password}))
    database = f"catalog_{suffix}"
    glue.create_database(DatabaseInput={"Name": database})
    connection = f"source-connection-{suffix}"
    glue.create_connection(ConnectionInput={"Name": connection, "ConnectionType": "JDBC", "ConnectionProperties": {
        "JDBC_CONNECTION_URL": f"jdbc:mysql://{mariadb_service.host}:{mariadb_service.port}/{source_db}",
        "SECRET_ID": secret_name, "JDBC_ENFORCE_SSL": "false"}})
    job_name = f"etl-job-{suffix}"
    glue.create_job(
        Name=job_name, Role="arn:aws:iam::123456789012:role/glue-job", GlueVersion="5.0", Timeout=30,
        Command={"Name": "glueetl", "PythonVersion": "3",
                 "ScriptLocation": f"s3://{scripts}/glue/ratings_etl-0123456789abcdef.py"},
        Connections={"Connections": [connection]},
        DefaultArguments={"--job-language": "python", "--enable-metrics": "true", "--connection_name": connection,
                          "--catalog_database": database, "--catalog_table": TABLE,
                          "--target_path": f"s3://{datalake}/{PREFIX}"},
    )
    yield DeployedJob(moto_service, job_name, datalake, database, secret_name, source_db)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {source_db}")
    admin.close()


def published(job: DeployedJob) -> dict[str, str]:
    return objects(aws(job.moto, "s3"), job.datalake)


def objects(s3: Any, bucket: str) -> dict[str, str]:
    """key -> ETag of every object under the table prefix."""
    keys: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        keys |= {o["Key"]: o["ETag"] for o in page.get("Contents", [])}
    return keys


def download(job: DeployedJob, into: Path) -> pa.Table:
    return download_table(aws(job.moto, "s3"), job.datalake, into)


def download_table(s3: Any, bucket: str, into: Path) -> pa.Table:
    for key in objects(s3, bucket):
        (into / key).parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(into / key))
    return pq.read_table(into / PREFIX, partitioning=ds.partitioning(
        pa.schema([("customerNumber", pa.int32())]), flavor="hive"))


def as_rows(table: pa.Table) -> list[tuple[Any, ...]]:
    columns = ["customerNumber", "city", "state", "postalCode", "country", "creditLimit", "productCode",
               "productLine", "productScale", "quantityInStock", "buyPrice", "MSRP", "productRating"]
    return sorted(tuple(row[c] for c in columns) for row in table.to_pylist())


@dataclass(frozen=True)
class Run:
    """A finished run: GetJobRun's JobRun, what its output said (stages, summary), the states seen while polling."""

    job_run: dict[str, Any]
    progress: etl.Progress
    states: list[str]

    @property
    def summary(self) -> dict[str, Any]:
        assert self.progress.summary is not None, self.job_run.get("ErrorMessage")
        return self.progress.summary


def run_job(service: GlueRunService, job: DeployedJob, timeout_s: float = 900) -> Run:
    """StartJobRun, then GetJobRun until it ends, following the run's output in CloudWatch Logs."""
    status, started = service.call("StartJobRun", {"JobName": job.job_name})
    assert status == 200, started
    run_id = started["JobRunId"]
    progress, states = etl.Progress(), []
    tail = etl.LogTail(aws(job.moto, "logs"), "/aws-glue/jobs/output", run_id)
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = service.call("GetJobRun", {"JobName": job.job_name, "RunId": run_id})
        assert status == 200, body
        states.append(body["JobRun"]["JobRunState"])
        progress.read(tail.new_lines())
        if states[-1] not in etl.ACTIVE_STATES:
            progress.read(tail.new_lines())
            return Run(body["JobRun"], progress, states)
        assert time.monotonic() < deadline, f"run {run_id} still {states[-1]}"
        time.sleep(0.5)


@dataclass(frozen=True)
class FirstRun:
    run: Run
    service: GlueRunService


@pytest.fixture(scope="module")
def first_run(deployed_job: DeployedJob, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    """One successful run per module (Spark is the expensive part): both tests start from its output."""
    service = GlueRunService(tmp_path_factory.mktemp("etl-state"), deployed_job.moto.endpoint_url, "us-east-1")
    run = run_job(service, deployed_job)
    assert run.job_run["JobRunState"] == "SUCCEEDED", run.job_run.get("ErrorMessage")
    yield FirstRun(run, service)
    service.close()


def test_the_output_equals_the_sql_join_with_one_partition_per_rated_customer_and_a_rerun_changes_nothing(
    deployed_job: DeployedJob, first_run: FirstRun, mariadb_service: MariaDBService, tmp_path: Path
) -> None:
    run = first_run.run

    conn = mariadb_service.connect(deployed_job.source_db)
    with conn.cursor() as cur:
        cur.execute(JOINED)
        expected = sorted(tuple(row) for row in cur.fetchall())
        cur.execute("SELECT COUNT(*) FROM ratings")
        (ratings_in_source,) = cur.fetchone()
    conn.close()
    first = download(deployed_job, tmp_path / "first")
    assert as_rows(first) == expected
    data_schema = pq.read_schema(next((tmp_path / "first" / PREFIX).rglob("*.parquet")))
    assert [(f.name, str(f.type)) for f in data_schema] == [
        ("city", "string"), ("state", "string"), ("postalCode", "string"), ("country", "string"),
        ("creditLimit", "decimal128(10, 2)"), ("productCode", "string"), ("productLine", "string"),
        ("productScale", "string"), ("quantityInStock", "int32"), ("buyPrice", "decimal128(10, 2)"),
        ("MSRP", "decimal128(10, 2)"), ("productRating", "int32"),
    ]
    rated = sorted({row[0] for row in expected})
    assert sorted({k.split("/")[1] for k in published(deployed_job)}) == [f"customerNumber={n}" for n in rated]
    assert all(k.endswith(".snappy.parquet") for k in published(deployed_job))

    counts = run.summary["counts"]
    assert counts["ratings_read"] == ratings_in_source
    assert counts["rows_written"] == len(expected)
    assert counts["dropped"]["missing_customer"] + counts["dropped"]["missing_product"] == 2
    assert counts["dropped"]["rating_out_of_range"] == 2
    assert run.progress.stages == ["read", "transform", "write", "publish", "catalog", "done"]
    assert run.states[0] == "RUNNING" and run.states[-1] == "SUCCEEDED"
    assert run.job_run["CompletedOn"] >= run.job_run["StartedOn"] and run.job_run["Arguments"] == {}

    glue = aws(deployed_job.moto, "glue")
    table = glue.get_table(DatabaseName=deployed_job.database, Name=TABLE)["Table"]
    assert table["PartitionKeys"] == [{"Name": "customerNumber", "Type": "int"}]
    assert table["StorageDescriptor"]["Location"] == f"s3://{deployed_job.datalake}/{PREFIX}"
    partitions = glue.get_partitions(DatabaseName=deployed_job.database, TableName=TABLE)["Partitions"]
    assert sorted(int(p["Values"][0]) for p in partitions) == rated

    second = run_job(first_run.service, deployed_job)

    assert second.job_run["JobRunState"] == "SUCCEEDED", second.job_run.get("ErrorMessage")
    assert as_rows(download(deployed_job, tmp_path / "second")) == expected
    assert sorted({k.split("/")[1] for k in published(deployed_job)}) == [f"customerNumber={n}" for n in rated]
    assert len(glue.get_partitions(DatabaseName=deployed_job.database, TableName=TABLE)["Partitions"]) == len(rated)
    listed = first_run.service.call("GetJobRuns", {"JobName": deployed_job.job_name})[1]["JobRuns"]
    assert [(r["Id"], r["JobRunState"]) for r in listed] == [(second.job_run["Id"], "SUCCEEDED"),
                                                             (run.job_run["Id"], "SUCCEEDED")]


def test_a_run_that_cannot_log_in_is_failed_with_the_drivers_error_and_keeps_the_previous_output(
    deployed_job: DeployedJob, first_run: FirstRun
) -> None:
    before = published(deployed_job)
    secrets = aws(deployed_job.moto, "secretsmanager")
    original = secrets.get_secret_value(SecretId=deployed_job.secret_name)["SecretString"]
    secrets.put_secret_value(SecretId=deployed_job.secret_name,
                             SecretString=json.dumps({**json.loads(original), "password": "rotated-elsewhere"}))
    try:
        run = run_job(first_run.service, deployed_job).job_run
    finally:
        secrets.put_secret_value(SecretId=deployed_job.secret_name, SecretString=original)

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith("cannot read source table 'customers': ")
    assert "Access denied for user" in run["ErrorMessage"]
    assert "rotated-elsewhere" not in run["ErrorMessage"]
    latest = first_run.service.call("GetJobRuns", {"JobName": deployed_job.job_name, "MaxResults": 1})[1]
    assert latest["JobRuns"][0]["Id"] == run["Id"]
    assert published(deployed_job) == before


def test_etl_run_after_up_and_seed_publishes_the_join_of_the_stacks_own_source_database_and_a_rerun_changes_nothing(
    local_stack: Any, tmp_path: Path
) -> None:
    local_stack.run("seed")

    summary = json.loads(local_stack.run("etl", "run", "--json").stdout)

    conn = pymysql.connect(host=local_stack.output("source_db_host"), port=int(local_stack.output("source_db_port")),
                           user=local_stack.output("source_db_username"),
                           password=local_stack.output("source_db_password"),
                           database=local_stack.output("source_db_name"), connect_timeout=10)
    with conn.cursor() as cur:
        cur.execute(JOINED)
        expected = sorted(tuple(row) for row in cur.fetchall())
    conn.close()
    s3, lake = local_stack.client("s3"), local_stack.output("data_lake_bucket_id")
    assert as_rows(download_table(s3, lake, tmp_path)) == expected
    rated = sorted({row[0] for row in expected})
    assert sorted({k.split("/")[1] for k in objects(s3, lake)}) == [f"customerNumber={n}" for n in rated]
    assert (summary["rows"], summary["partitions"]) == (len(expected), len(rated))
    assert summary["prefix"] == f"s3://{lake}/{PREFIX}"
    run = json.loads(local_stack.run("etl", "get-run", summary["run_id"][:12], "--json").stdout)["JobRun"]
    assert (run["Id"], run["JobRunState"], run["JobName"]) == (
        summary["run_id"], "SUCCEEDED", local_stack.output("glue_job_name"))
    assert run["ExecutionTime"] == summary["execution_time_s"]

    again = json.loads(local_stack.run("etl", "run", "--json").stdout)

    assert as_rows(download_table(s3, lake, tmp_path / "again")) == expected
    assert len(objects(s3, lake)) == again["objects_published"] == summary["objects_published"]
    assert again["objects_deleted"] == summary["objects_published"], "every object of the first run was replaced"


def test_start_job_run_on_the_local_stacks_endpoint_executes_the_job_and_get_job_run_tells_running_then_the_truth(
    local_stack: Any
) -> None:
    """What `aws glue start-job-run` / `aws glue get-job-run` send, against the endpoint `harness env` exports."""
    env = local_stack.env
    glue, logs = (boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                               aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]) for service in ("glue", "logs"))
    job = local_stack.output("glue_job_name")

    def follow(run_id: str) -> tuple[list[str], dict[str, Any]]:
        states: list[str] = []
        deadline = time.monotonic() + 900
        while True:
            run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
            states.append(run["JobRunState"])
            if states[-1] not in etl.ACTIVE_STATES:
                return states, run
            assert time.monotonic() < deadline, f"{run_id} still {states[-1]}"
            time.sleep(0.5)

    refused = glue.start_job_run(JobName=job, Arguments={"--target_path": "ratings-ml-training/"})["JobRunId"]
    refused_states, refused_run = follow(refused)
    good = glue.start_job_run(JobName=job)["JobRunId"]
    with pytest.raises(glue.exceptions.ConcurrentRunsExceededException):
        glue.start_job_run(JobName=job)
    states, run = follow(good)

    assert (refused_states[0], refused_states[-1]) == ("RUNNING", "FAILED")
    assert refused_run["ErrorMessage"] == (
        "--target_path must be an s3://bucket/prefix/ URI, got 'ratings-ml-training/'")
    assert refused_run["Arguments"] == {"--target_path": "ratings-ml-training/"}
    assert (states[0], states[-1]) == ("RUNNING", "SUCCEEDED")
    assert run["CompletedOn"] >= run["StartedOn"] and "ErrorMessage" not in run
    output = [e["message"] for e in logs.get_log_events(logGroupName="/aws-glue/jobs/output", logStreamName=good,
                                                         startFromHead=True)["events"]]
    assert any(" ratings_etl summary {" in line for line in output)
    listed = [r["Id"] for r in glue.get_job_runs(JobName=job)["JobRuns"]]
    assert listed[:2] == [good, refused]
