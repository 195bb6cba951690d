"""Publishing a run: which objects go in and out, in which order, and how the catalog describes the result."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st


def test_new_files_go_in_before_the_partitions_old_files_go_out(etl: ModuleType) -> None:
    existing = ["customerNumber=103/part-old.parquet", "customerNumber=112/part-old.parquet"]
    staged = ["customerNumber=103/part-new.parquet", "customerNumber=112/part-new.parquet", "_SUCCESS"]

    plan = etl.plan_publish(existing, staged)

    assert plan.steps == (
        ("put", "customerNumber=103/part-new.parquet"),
        ("delete", "customerNumber=103/part-old.parquet"),
        ("put", "customerNumber=112/part-new.parquet"),
        ("delete", "customerNumber=112/part-old.parquet"),
    )
    assert plan.partitions == (103, 112)


def test_the_plan_splits_into_partitions_each_putting_before_deleting_and_removals_kept_for_last(
        etl: ModuleType) -> None:
    plan = etl.plan_publish(
        ["customerNumber=103/old.parquet", "customerNumber=999/old.parquet", "customerNumber=112/old.parquet"],
        ["customerNumber=112/new.parquet", "customerNumber=103/new.parquet", "customerNumber=103/new2.parquet"],
    )

    written, removed = etl.partition_steps(plan)

    assert [(p.folder, p.puts, p.deletes) for p in written] == [
        ("customerNumber=103", ("customerNumber=103/new.parquet", "customerNumber=103/new2.parquet"),
         ("customerNumber=103/old.parquet",)),
        ("customerNumber=112", ("customerNumber=112/new.parquet",), ("customerNumber=112/old.parquet",)),
    ]
    assert [(p.folder, p.puts, p.deletes) for p in removed] == [
        ("customerNumber=999", (), ("customerNumber=999/old.parquet",))]


def test_a_parallel_publish_of_many_partitions_leaves_exactly_the_staged_files(
        etl: ModuleType, aws: dict[str, Any], tmp_path: Path) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    target = etl.parse_s3_uri(f"s3://{bucket}/ratings-ml-training/")
    for n in range(100, 160):  # the previous run: 60 partitions, 10 of which the new run no longer writes
        s3.put_object(Bucket=bucket, Key=f"ratings-ml-training/customerNumber={n}/part-old.parquet", Body=b"old")
    staged_dir = tmp_path / "staged"
    for n in range(110, 200):
        folder = staged_dir / f"customerNumber={n}"
        folder.mkdir(parents=True)
        (folder / "part-new.parquet").write_bytes(f"new-{n}".encode())
    staged = etl.StagedRun(s3, local_dir=staged_dir)

    plan = etl.plan_publish(etl.list_keys(s3, target), staged.keys())
    etl.apply_publish(s3, plan, staged, target, workers=8)

    assert sorted(etl.list_keys(s3, target)) == sorted(f"customerNumber={n}/part-new.parquet" for n in range(110, 200))
    assert s3.get_object(Bucket=bucket, Key="ratings-ml-training/customerNumber=150/part-new.parquet")[
        "Body"].read() == b"new-150"


def test_the_first_failed_upload_stops_the_publish_and_is_raised(etl: ModuleType, aws: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    target = etl.parse_s3_uri(f"s3://{bucket}/ratings-ml-training/")
    staged_dir = tmp_path / "staged"
    for n in range(100, 140):
        (staged_dir / f"customerNumber={n}").mkdir(parents=True)
        (staged_dir / f"customerNumber={n}" / "part.parquet").write_bytes(b"x")
    staged = etl.StagedRun(s3, local_dir=staged_dir)
    plan = etl.plan_publish([], staged.keys())
    (staged_dir / "customerNumber=100" / "part.parquet").unlink()  # vanishes between staging and publish

    with pytest.raises(FileNotFoundError):
        etl.apply_publish(s3, plan, staged, target, workers=1)
    # With one worker, nothing after the failed partition was started.
    assert etl.list_keys(s3, target) == []


def test_partitions_of_customers_without_ratings_now_are_removed(etl: ModuleType) -> None:
    plan = etl.plan_publish(
        ["customerNumber=103/a.parquet", "customerNumber=999/a.parquet", "customerNumber=999/.a.parquet.crc"],
        ["customerNumber=103/b.parquet"],
    )

    assert plan.deletes == [
        "customerNumber=103/a.parquet", "customerNumber=999/.a.parquet.crc", "customerNumber=999/a.parquet",
    ]
    assert plan.partitions == (103,)


def test_spark_bookkeeping_files_and_foreign_keys_are_never_published_or_deleted(etl: ModuleType) -> None:
    plan = etl.plan_publish(
        ["README.txt", "other/x.parquet"],
        ["_SUCCESS", "customerNumber=103/.part-0.parquet.crc", "customerNumber=103/part-0.parquet"],
    )

    assert plan.steps == (("put", "customerNumber=103/part-0.parquet"),)


def test_partitions_are_ordered_by_customer_number_not_by_text(etl: ModuleType) -> None:
    plan = etl.plan_publish([], ["customerNumber=1000/p", "customerNumber=99/p", "customerNumber=103/p"])

    assert plan.partitions == (99, 103, 1000)
    assert plan.puts == ["customerNumber=99/p", "customerNumber=103/p", "customerNumber=1000/p"]


def test_staging_is_outside_the_table_prefix(etl: ModuleType) -> None:
    target = etl.parse_s3_uri("s3://lake/ratings-ml-training/")

    assert etl.staging_location(target, "jr_1").uri == "s3://lake/_staging/ratings-ml-training/jr_1/"
    nested = etl.parse_s3_uri("s3://lake/ml/ratings-ml-training")
    assert etl.staging_location(nested, "jr_1").uri == "s3://lake/ml/_staging/ratings-ml-training/jr_1/"


@pytest.mark.parametrize("bad", ["lake/ratings-ml-training", "s3://", "s3:///x", "/tmp/out"])
def test_a_target_that_is_not_an_s3_uri_is_refused_with_the_argument_named(etl: ModuleType, bad: str) -> None:
    with pytest.raises(etl.EtlInputError, match=r"--target_path must be an s3://bucket/prefix/ URI"):
        etl.parse_s3_uri(bad)


def test_the_catalog_table_is_partitioned_by_customer_with_parquet_columns_of_the_contract(etl: ModuleType) -> None:
    table = etl.catalog_table_input("ratings_ml_training", etl.parse_s3_uri("s3://lake/ratings-ml-training/"), "jr_1")

    assert table["PartitionKeys"] == [{"Name": "customerNumber", "Type": "int"}]
    assert table["StorageDescriptor"]["Columns"] == [
        {"Name": "city", "Type": "string"}, {"Name": "state", "Type": "string"},
        {"Name": "postalCode", "Type": "string"}, {"Name": "country", "Type": "string"},
        {"Name": "creditLimit", "Type": "decimal(10,2)"}, {"Name": "productCode", "Type": "string"},
        {"Name": "productLine", "Type": "string"}, {"Name": "productScale", "Type": "string"},
        {"Name": "quantityInStock", "Type": "int"}, {"Name": "buyPrice", "Type": "decimal(10,2)"},
        {"Name": "MSRP", "Type": "decimal(10,2)"}, {"Name": "productRating", "Type": "int"},
    ]
    assert table["StorageDescriptor"]["Location"] == "s3://lake/ratings-ml-training/"
    assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert table["Parameters"]["classification"] == "parquet"


def test_credentials_come_from_the_secret_unless_given_explicitly(etl: ModuleType) -> None:
    secret = '{"engine": "mysql", "username": "etl", "password": "s3cret"}'

    assert etl.jdbc_credentials(None, None, "arn:secret", lambda _: secret) == ("etl", "s3cret")
    assert etl.jdbc_credentials("admin", None, "arn:secret", lambda _: secret) == ("admin", "s3cret")
    assert etl.jdbc_credentials("admin", "pw", None, lambda _: pytest.fail("no secret needed")) == ("admin", "pw")


def test_without_password_or_secret_the_error_says_which_argument_to_give(etl: ModuleType) -> None:
    with pytest.raises(etl.EtlInputError, match=r"--jdbc_secret_id <secret arn> or --jdbc_password"):
        etl.jdbc_credentials("admin", None, None, lambda _: "{}")


partition_keys = st.builds(lambda n, f: f"customerNumber={n}/part-{f}.snappy.parquet",
                           st.integers(100, 110), st.sampled_from(["a", "b", "c"]))
foreign_keys = st.sampled_from(["README.txt", "_SUCCESS", "notes/x.parquet"])


@given(existing=st.sets(partition_keys | foreign_keys, max_size=12), staged=st.sets(partition_keys, max_size=12))
def test_applying_the_plan_leaves_exactly_the_staged_files_and_never_empties_a_kept_partition(
    etl: ModuleType, existing: set[str], staged: set[str]
) -> None:
    plan = etl.plan_publish(sorted(existing), sorted(staged))

    current = set(existing)
    new_partitions = {k.split("/")[0] for k in staged}
    for action, key in plan.steps:
        if action == "put":
            current.add(key)
        else:
            current.discard(key)
            folder = key.split("/")[0]
            if folder in new_partitions:
                assert any(k.startswith(f"{folder}/") for k in current), f"{folder} was empty while replaced"
    ours = {k for k in current if k.startswith("customerNumber=")}
    assert ours == staged
    assert current - ours == existing - {k for k in existing if k.startswith("customerNumber=")}
