"""`python -m harness demo` on the session's local stack: every stage done, and the report's numbers match what the
source database, the data lake, pgvector and the recommendations bucket hold."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

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
