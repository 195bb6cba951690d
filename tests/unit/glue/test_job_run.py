"""A whole run of the job on local Spark against an in-process AWS emulator: what lands in S3 and the catalog, what a
re-run does, and what a failed run leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame, SparkSession

PREFIX = "ratings-ml-training/"
CUSTOMERS = ("customerNumber int, city string, state string, postalCode string, country string, "
             "creditLimit decimal(10,2)")
PRODUCTS = ("productCode string, productLine string, productScale string, quantityInStock smallint, "
            "buyPrice decimal(10,2), MSRP decimal(10,2)")
RATINGS = "customerNumber int, productCode string, productRating int"


def source(spark: SparkSession, rating_rows: list[tuple[Any, ...]]) -> Callable[[str], DataFrame]:
    tables = {
        "customers": spark.createDataFrame([
            (103, "Nantes", None, "44000", "France", Decimal("21000.00")),
            (112, "Las Vegas", "NV", "83030", "USA", Decimal("71800.50")),
            (125, "Warszawa", None, None, "Poland", None),
        ], CUSTOMERS),
        "products": spark.createDataFrame([
            ("S10_1678", "Motorcycles", "1:10", 7933, Decimal("48.81"), Decimal("95.70")),
            ("S18_2248", "Vintage Cars", "1:18", 540, Decimal("33.30"), Decimal("60.54")),
        ], PRODUCTS),
        "ratings": spark.createDataFrame(rating_rows, RATINGS),
    }
    return tables.__getitem__


ALL_RATINGS = [(103, "S10_1678", 5), (112, "S10_1678", 3), (112, "S18_2248", 1), (125, "S18_2248", 4), (999, "X", 4)]


def run(etl: ModuleType, aws: dict[str, Any], tmp_path: Path, read: Callable[[str], DataFrame], run_id: str) -> Any:
    settings = etl.JobSettings("test-etl-job", run_id, etl.parse_s3_uri(f"s3://{aws['bucket']}/{PREFIX}"),
                               aws["database"])
    staged = etl.StagedRun(aws["s3"], local_dir=tmp_path / "staging" / run_id)
    return etl.run_job(read, settings, staged, aws["s3"], aws["glue"])


def published(aws: dict[str, Any]) -> dict[str, str]:
    """key -> ETag of every object under the table prefix."""
    response = aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=PREFIX)
    return {o["Key"]: o["ETag"] for o in response.get("Contents", [])}


def read_back(aws: dict[str, Any], into: Path) -> list[tuple[Any, ...]]:
    for key in published(aws):
        path = into / key
        path.parent.mkdir(parents=True, exist_ok=True)
        aws["s3"].download_file(aws["bucket"], key, str(path))
    table = pq.read_table(into / PREFIX, partitioning="hive")
    rows = table.to_pylist()
    return sorted((int(r["customerNumber"]), r["productCode"], r["productRating"], r["creditLimit"]) for r in rows)


def catalog_partitions(aws: dict[str, Any]) -> list[str]:
    parts = aws["glue"].get_partitions(DatabaseName=aws["database"], TableName="ratings_ml_training")["Partitions"]
    return sorted(p["StorageDescriptor"]["Location"] for p in parts)


def test_a_run_publishes_one_snappy_partition_per_rated_customer_and_catalogs_it(
    etl: ModuleType, spark: SparkSession, aws: dict[str, Any], tmp_path: Path
) -> None:
    result = run(etl, aws, tmp_path, source(spark, ALL_RATINGS), "jr_first")

    keys = published(aws)
    assert sorted({k.split("/")[1] for k in keys}) == ["customerNumber=103", "customerNumber=112", "customerNumber=125"]
    assert all(k.endswith(".snappy.parquet") for k in keys)
    assert read_back(aws, tmp_path / "read") == [
        (103, "S10_1678", 5, Decimal("21000.00")),
        (112, "S10_1678", 3, Decimal("71800.50")),
        (112, "S18_2248", 1, Decimal("71800.50")),
        (125, "S18_2248", 4, None),
    ]
    assert (result.counts.rows_written, result.partitions, result.counts.dropped["missing_customer"]) == (4, 3, 1)
    assert catalog_partitions(aws) == [f"s3://datalake/{PREFIX}customerNumber={n}/" for n in (103, 112, 125)]
    table = aws["glue"].get_table(DatabaseName=aws["database"], Name="ratings_ml_training")["Table"]
    assert table["StorageDescriptor"]["Location"] == f"s3://datalake/{PREFIX}"
    assert not (tmp_path / "staging" / "jr_first").exists(), "the staging area is removed after publishing"


def test_a_second_run_on_the_same_data_replaces_the_output_without_duplicates(
    etl: ModuleType, spark: SparkSession, aws: dict[str, Any], tmp_path: Path
) -> None:
    read = source(spark, ALL_RATINGS)
    run(etl, aws, tmp_path, read, "jr_first")
    first_keys, first_rows = published(aws), read_back(aws, tmp_path / "first")

    run(etl, aws, tmp_path, read, "jr_second")

    assert read_back(aws, tmp_path / "second") == first_rows
    assert len(published(aws)) == len(first_keys)
    assert not set(published(aws)) & set(first_keys), "every object of the first run was replaced"
    assert len(catalog_partitions(aws)) == 3


def test_a_customer_without_ratings_now_loses_its_partition_in_s3_and_the_catalog(
    etl: ModuleType, spark: SparkSession, aws: dict[str, Any], tmp_path: Path
) -> None:
    run(etl, aws, tmp_path, source(spark, ALL_RATINGS), "jr_first")

    run(etl, aws, tmp_path, source(spark, [r for r in ALL_RATINGS if r[0] != 125]), "jr_second")

    assert not [k for k in published(aws) if "customerNumber=125/" in k]
    assert catalog_partitions(aws) == [f"s3://datalake/{PREFIX}customerNumber={n}/" for n in (103, 112)]


@pytest.mark.parametrize("failure", ["source unreachable", "duplicated customer", "nothing to write"])
def test_a_failed_run_leaves_the_previous_output_and_catalog_exactly_as_they_were(
    etl: ModuleType, spark: SparkSession, aws: dict[str, Any], tmp_path: Path, failure: str
) -> None:
    good = source(spark, ALL_RATINGS)
    run(etl, aws, tmp_path, good, "jr_good")
    before, partitions_before = published(aws), catalog_partitions(aws)

    def broken(table: str) -> DataFrame:
        if failure == "source unreachable" and table == "ratings":
            raise ConnectionError("Could not connect to address=(host=127.0.0.1)(port=1)")
        if failure == "duplicated customer" and table == "customers":
            return good(table).unionByName(good(table).limit(1))
        if failure == "nothing to write" and table == "ratings":
            return spark.createDataFrame([(103, "S10_1678", 9)], RATINGS)
        return good(table)

    with pytest.raises((etl.SourceUnavailableError, etl.EtlInputError)):
        run(etl, aws, tmp_path, broken, "jr_bad")

    assert published(aws) == before
    assert catalog_partitions(aws) == partitions_before
    assert not (tmp_path / "staging" / "jr_bad").exists()
