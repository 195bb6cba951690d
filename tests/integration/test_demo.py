"""`harness demo` on the session's local stack: every stage done, and the report's numbers match what the source
database, the data lake, pgvector and the recommendations bucket hold. Then the same demo as on a stack deployed to
AWS: `harness demo --outputs FILE` with the local stack's outputs in the file and only the emulator's endpoint
configuration in the environment (no state directory to read), which must give the same report."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.emulator.endpoints import aws_environment, stack_outputs
from tests.integration.conftest import ROOT, UP_TIMEOUT_S, tail

EVENTS = 20


@pytest.fixture(scope="module")
def demo_report(local_stack: Any) -> Iterator[dict[str, Any]]:
    local_stack.run("demo", "--events", str(EVENTS))
    yield json.loads((local_stack.state_dir / "demo-report.json").read_text())


def source_query(local_stack: Any, sql: str) -> Any:
    import pymysql

    conn = pymysql.connect(host=local_stack.output("source_db_host"), port=int(local_stack.output("source_db_port")),
                           user=local_stack.output("source_db_username"),
                           password=local_stack.output("source_db_password"),
                           database=local_stack.output("source_db_name"), connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_every_stage_is_done(demo_report: dict[str, Any]) -> None:
    assert {name: stage["status"] for name, stage in demo_report["stages"].items()} == {
        "up": "done", "seed": "done", "etl": "done", "train": "done", "load": "done", "stream": "done"}
    assert demo_report["ok"] is True


def test_source_numbers_are_the_source_databases(local_stack: Any, demo_report: dict[str, Any]) -> None:
    assert demo_report["source"] == {
        "customers": source_query(local_stack, "SELECT COUNT(*) FROM customers"),
        "products": source_query(local_stack, "SELECT COUNT(*) FROM products"),
        "ratings": source_query(local_stack, "SELECT COUNT(*) FROM ratings"),
    }


def test_etl_numbers_are_the_data_lakes(local_stack: Any, demo_report: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    bucket = local_stack.output("data_lake_bucket_id")
    assert demo_report["etl"]["prefix"].startswith(f"s3://{bucket}/ratings-ml-training")
    prefix = demo_report["etl"]["prefix"].removeprefix(f"s3://{bucket}/")
    s3 = local_stack.client("s3")
    rows, partitions = 0, set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".parquet"):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                rows += pq.read_table(io.BytesIO(body)).num_rows
                partitions.add(obj["Key"].split("customerNumber=")[1].split("/")[0])
    assert demo_report["etl"]["rows"] == rows == source_query(local_stack, "SELECT COUNT(*) FROM ratings")
    assert demo_report["etl"]["partitions"] == len(partitions)


def test_embeddings_cover_the_rated_products_and_customers(local_stack: Any, demo_report: dict[str, Any]) -> None:
    assert demo_report["embeddings"] == {
        "items": source_query(local_stack, "SELECT COUNT(DISTINCT productCode) FROM ratings"),
        "users": source_query(local_stack, "SELECT COUNT(DISTINCT customerNumber) FROM ratings"),
        "dim": 32,
    }


def test_every_streamed_event_is_delivered_or_failed_and_the_sample_is_real(
    local_stack: Any, demo_report: dict[str, Any],
) -> None:
    stream = demo_report["stream"]
    assert stream["events_sent"] == EVENTS
    assert stream["records_delivered"] + stream["records_failed"] == EVENTS
    assert stream["records_delivered"] > 0
    bucket = local_stack.output("recommendations_bucket_id")
    objects = local_stack.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0)
    assert objects >= stream["objects"] > 0
    sample = demo_report["sample_recommendation"]
    assert sample["recommended_items"], sample
    codes = [item["id"] for item in sample["recommended_items"]]
    in_source = source_query(local_stack, "SELECT COUNT(*) FROM products WHERE productCode IN ("
                             + ", ".join(f"'{code}'" for code in codes) + ")")
    assert in_source == len(codes)


# ---- the same demo through the outputs alone, as on a stack deployed with `pulumi up` -------------------------------

def outputs_only_environment(local_stack: Any, work: Path) -> dict[str, str]:
    """This process's environment without any AWS, database or harness setting, plus the emulator's endpoint
    configuration; the harness's state directory points at an empty one, so nothing local can be read."""
    kept = {name: value for name, value in os.environ.items()
            if not name.startswith(("AWS_", "RECSYS_", "PG", "MYSQL", "BOTO"))}
    return {**kept, **aws_environment(local_stack.state_dir), "RECSYS_LOCAL_DIR": str(work / "no-state"),
            "COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def deployed_report(local_stack: Any, demo_report: dict[str, Any],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path, str]]:
    work = tmp_path_factory.mktemp("deployed-demo")
    outputs = work / "local-stack-outputs.json"
    outputs.write_text(json.dumps(stack_outputs(local_stack.state())))  # what `pulumi stack output --json` prints
    report = work / "report.json"
    done = subprocess.run([sys.executable, "-m", "harness", "demo", "--outputs", str(outputs), "--events", str(EVENTS),
                           "--report", str(report)], cwd=ROOT, env=outputs_only_environment(local_stack, work),
                          capture_output=True, text=True, timeout=UP_TIMEOUT_S)
    if done.returncode != 0:
        pytest.fail(f"`harness demo --outputs` exited {done.returncode}:\n{tail(done)}", pytrace=False)
    yield json.loads(report.read_text()), work, done.stdout


def test_the_outputs_alone_give_the_same_report_as_the_local_demo(
    local_stack: Any, demo_report: dict[str, Any], deployed_report: tuple[dict[str, Any], Path, str],
) -> None:
    report, work, printed = deployed_report
    assert {name: stage["status"] for name, stage in report["stages"].items()} == {
        name: stage["status"] for name, stage in demo_report["stages"].items()}
    assert report["ok"] is True and report["stack"] == "local-stack-outputs"
    for key in ("source", "etl", "embeddings"):
        assert report[key] == demo_report[key], key
    # The same rows; the ETL may write them in another order, which the trainer's seeded split sees differently.
    assert report["training"]["rows"] == demo_report["training"]["rows"]
    assert report["training"]["test_rmse"] < report["training"]["baseline_rmse"]
    assert report["stages"]["up"]["detail"] == demo_report["stages"]["up"]["detail"]
    stream = report["stream"]
    assert stream["events_sent"] == EVENTS and stream["records_delivered"] + stream["records_failed"] == EVENTS
    assert stream["records_delivered"] > 0 and stream["objects"] > 0
    codes = [item["id"] for item in report["sample_recommendation"]["recommended_items"]]
    assert codes and source_query(local_stack, "SELECT COUNT(*) FROM products WHERE productCode IN ("
                                  + ", ".join(f"'{code}'" for code in codes) + ")") == len(codes)
    # A deployed stack's report says what the demo wrote and how to destroy it; nothing was read or written locally.
    assert any(line.startswith("the ETL output s3://") for line in report["created"])
    assert "pulumi destroy --stack local-stack-outputs" in printed
    assert not (work / "no-state").exists()


def test_a_deployed_stack_is_not_changed_without_a_confirmation(local_stack: Any, tmp_path: Path) -> None:
    outputs = tmp_path / "dev.json"
    outputs.write_text(json.dumps(stack_outputs(local_stack.state())))
    env = {**outputs_only_environment(local_stack, tmp_path), "AWS_ENDPOINT_URL": ""}  # as on AWS: no emulator
    done = subprocess.run([sys.executable, "-m", "harness", "demo", "--outputs", str(outputs)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stdout.strip().endswith("costs money or changes data: pass --yes to go ahead (there is no terminal "
                                        "to ask on)")
    assert "stack outputs" not in done.stdout, "no stage ran"
