"""The Glue script's staging and publish, on S3 and on local disk. How the emulator turns a job run into a local
process is tested in tests/unit/test_glue_runs.py."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any


def test_staging_left_by_killed_runs_is_removed_on_s3_but_the_own_run_and_the_table_stay(
    etl: ModuleType, aws: dict[str, Any]
) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    for key in ("_staging/ratings-ml-training/jr_old/customerNumber=1/p.parquet",
                "_staging/ratings-ml-training/jr_now/customerNumber=1/p.parquet",
                "ratings-ml-training/customerNumber=1/p.parquet"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    target = etl.parse_s3_uri(f"s3://{bucket}/ratings-ml-training/")
    staged = etl.StagedRun(s3, s3_location=etl.staging_location(target, "jr_now"))

    removed = staged.remove_leftovers()

    assert removed == [f"s3://{bucket}/_staging/ratings-ml-training/jr_old/"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["_staging/ratings-ml-training/jr_now/customerNumber=1/p.parquet",
                    "ratings-ml-training/customerNumber=1/p.parquet"]


def test_staging_left_by_killed_runs_is_removed_locally(etl: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "jr_old" / "customerNumber=1").mkdir(parents=True)
    (tmp_path / "jr_now").mkdir()

    etl.StagedRun(None, local_dir=tmp_path / "jr_now").remove_leftovers()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["jr_now"]


def test_on_glue_a_run_staged_on_s3_is_copied_into_the_table_prefix_and_its_staging_removed(
    etl: ModuleType, aws: dict[str, Any]
) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    target = etl.parse_s3_uri(f"s3://{bucket}/ratings-ml-training/")
    staged = etl.StagedRun(s3, s3_location=etl.staging_location(target, "jr_new"))
    for key, body in (("customerNumber=103/part-new.snappy.parquet", b"new-103"), ("_SUCCESS", b"")):
        s3.put_object(Bucket=bucket, Key=f"{staged.s3_location.prefix}{key}", Body=body)
    for key in ("customerNumber=103/part-old.snappy.parquet", "customerNumber=999/part-old.snappy.parquet"):
        s3.put_object(Bucket=bucket, Key=f"ratings-ml-training/{key}", Body=b"old")

    plan = etl.plan_publish(etl.list_keys(s3, target), staged.keys())
    etl.apply_publish(s3, plan, staged, target)
    staged.remove()

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["ratings-ml-training/customerNumber=103/part-new.snappy.parquet"]
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert body == b"new-103"


