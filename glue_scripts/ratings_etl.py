"""Glue job: every rating joined with the rating customer's and the rated product's features, as training data.

Reads `customers`, `products` and `ratings` from the source MySQL database, writes one row per valid rating as snappy
Parquet partitioned by `customerNumber` under `--target_path` (`s3://<datalake>/ratings-ml-training/`), and points the
Glue Data Catalog table (`--catalog_table` in `--catalog_database`) at it.

The same file runs in two places (see docs/batch.md):
- on AWS Glue 5.0 (Spark 3.5): reads through the job's Glue connection (`--connection_name`); `awsglue` is imported only
  inside `run_on_glue`, so tests and the local harness never need it;
- locally (`python -m harness etl run`): reads through a JDBC URL (`--jdbc_url`, MariaDB Connector/J), stages the
  Parquet in a local directory (`--local_output`) and publishes it to S3 (the local AWS emulator) with boto3.

Atomicity: S3 has no rename, so a job that overwrote `ratings-ml-training/` in place and failed half-way would leave a
half-written table. Instead the whole new output is written first to a staging location outside the table's prefix;
only after Spark committed it completely are the objects copied into `customerNumber=N/`, partition by partition
(new files in, then that partition's old files out), customers that no longer have ratings removed, and the catalog
partitions set to exactly the new set. Any failure before the publish (JDBC, bad input, Spark) leaves the previous
output and catalog untouched; a failure during the publish leaves every partition complete (old or new) and the next
run converges. Re-running replaces the output: keys that the new run did not write are deleted, so no duplicates.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DataType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    NumericType,
    StringType,
    StructField,
    StructType,
)

LOG = logging.getLogger("ratings_etl")

OUTPUT_FOLDER = "ratings-ml-training"
DEFAULT_CATALOG_TABLE = "ratings_ml_training"
PARTITION_COLUMN = "customerNumber"
MONEY = DecimalType(10, 2)

# The training table's contract (docs/ARCHITECTURE.md): names, order and types. Types keep the source's meaning:
# MySQL int/smallint stay integers, decimal(10,2) money keeps its cents. Every Parquet column Spark writes is nullable;
# the keys and the rating are never NULL because such ratings are dropped before the join.
OUTPUT_SCHEMA = StructType(
    [
        StructField("customerNumber", IntegerType(), True),
        StructField("city", StringType(), True),
        StructField("state", StringType(), True),
        StructField("postalCode", StringType(), True),
        StructField("country", StringType(), True),
        StructField("creditLimit", MONEY, True),
        StructField("productCode", StringType(), True),
        StructField("productLine", StringType(), True),
        StructField("productScale", StringType(), True),
        StructField("quantityInStock", IntegerType(), True),
        StructField("buyPrice", MONEY, True),
        StructField("MSRP", MONEY, True),
        StructField("productRating", IntegerType(), True),
    ]
)
OUTPUT_COLUMNS: tuple[str, ...] = tuple(f.name for f in OUTPUT_SCHEMA.fields)
CUSTOMER_COLUMNS = ("customerNumber", "city", "state", "postalCode", "country", "creditLimit")
PRODUCT_COLUMNS = ("productCode", "productLine", "productScale", "quantityInStock", "buyPrice", "MSRP")
RATING_COLUMNS = ("customerNumber", "productCode", "productRating")
SOURCE_TABLES: dict[str, tuple[str, ...]] = {
    "customers": CUSTOMER_COLUMNS,
    "products": PRODUCT_COLUMNS,
    "ratings": RATING_COLUMNS,
}
MIN_RATING, MAX_RATING = 1, 5
PASSWORD_ENV = "RATINGS_ETL_JDBC_PASSWORD"  # local mode: the source password without putting it on the command line

# A rating is an integer of any size first (so 3e9 is out of range, not "not an integer"), then checked for 1-5.
WHOLE_NUMBER = DecimalType(38, 0)
# How a number written as text is read before it is checked against its column's type.
TEXT_NUMBER = DecimalType(38, 18)

# Why a rating was not written. Each dropped rating is counted once, under the first reason that applies, in this order.
DropReason = Literal[
    "null_key",
    "key_not_integer",
    "null_rating",
    "rating_not_integer",
    "rating_out_of_range",
    "missing_customer",
    "missing_product",
    "invalid_customer_value",
    "invalid_product_value",
]
DROP_REASONS: tuple[DropReason, ...] = get_args(DropReason)
# The source values checked against the output's types: (table, column, type). A value that does not fit exactly
# (4.7 as an integer, 1e12 or 12.345 as decimal(10,2), 'abc' anywhere) is never cast into a wrong one: the ratings that
# need it are dropped, and `EtlCounts.invalid_values["table.column"]` counts the source rows that carried one.
CHECKED_VALUES: tuple[tuple[str, str, DataType], ...] = (
    ("customers", "customerNumber", IntegerType()),
    ("customers", "creditLimit", MONEY),
    ("products", "quantityInStock", IntegerType()),
    ("products", "buyPrice", MONEY),
    ("products", "MSRP", MONEY),
    ("ratings", "customerNumber", IntegerType()),
    ("ratings", "productRating", WHOLE_NUMBER),
)

Stage = Literal["read", "transform", "write", "publish", "catalog", "done"]


class EtlInputError(ValueError):
    """The source data or the job's arguments cannot produce a correct training table; the message says what to fix."""


class SourceUnavailableError(RuntimeError):
    """A source table cannot be read (network, credentials, missing table); the message carries the driver's reason."""


def root_cause(error: BaseException) -> str:
    """The innermost message of a JVM exception raised through py4j (the JDBC driver's own words), else str(error)."""
    java = getattr(error, "java_exception", None)
    if java is None:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    while java.getCause() is not None:
        java = java.getCause()
    return f"{java.getClass().getName()}: {java.getMessage()}"


@dataclass(frozen=True)
class EtlCounts:
    customers_read: int
    products_read: int
    ratings_read: int
    rows_written: int
    dropped: dict[str, int] = field(default_factory=dict)
    # Source rows per "table.column" whose value does not fit the output's type (see CHECKED_VALUES).
    invalid_values: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "dropped_total": self.dropped_total}


# ---------------------------------------------------------------------------------------------------------------------
# The transformation: plain DataFrames in, DataFrame and counts out. Tests call this directly.
# ---------------------------------------------------------------------------------------------------------------------


def _require_columns(table: str, frame: DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise EtlInputError(
            f"source table {table!r} has no column(s) {', '.join(missing)} (it has: {', '.join(frame.columns)}); "
            f"the job needs {', '.join(needed)}: point the job at a classicmodels database with the ratings table"
        )


def exact_cast(frame: DataFrame, table: str, column: str, target: DataType) -> tuple[Column, Column]:
    """`column` as `target`, and whether that is exactly the source value (a NULL fits and stays NULL).

    Never a coercion: Spark's cast turns 4.7 into 4, '3.99' into 3 and 1e12 into a NULL decimal(10,2), and rounds 12.345
    to 12.35. Here the cast value is compared with the source value, so anything the cast changed (or could not hold)
    does not fit: the value comes back NULL and the flag false, and the caller drops what needs it. `try_cast` gives
    NULL instead of an error where Spark's ANSI mode is on. Text is read as a number first (surrounding spaces allowed).
    """
    source = frame.schema[column].dataType
    name = f"`{column}`"
    if source == target:
        return F.col(column), F.lit(True)
    if isinstance(source, StringType):
        number = f"try_cast(trim({name}) AS {TEXT_NUMBER.simpleString()})"
    elif isinstance(source, NumericType):  # not BooleanType: Spark's booleans are no NumericType
        number = name
    else:
        raise EtlInputError(
            f"source column {table}.{column} is {source.simpleString()}; the job needs a number that fits "
            f"{target.simpleString()}: point the job at a classicmodels database"
        )
    value = f"try_cast({number} AS {target.simpleString()})"
    if isinstance(source, FloatType | DoubleType):
        # Compared in the source's own type: the FLOAT 0.1 is the decimal 0.10, though widened to a double it is not.
        # NaN and infinities have no integer or decimal value: try_cast gives NULL for them.
        same = f"{value} IS NOT NULL AND CAST({value} AS {source.simpleString()}) = {name}"
    else:
        same = f"{value} IS NOT NULL AND {value} = {number}"  # decimals and integers compare exactly
    fits = f"({name} IS NULL OR ({same}))"  # never NULL: `same` is false, not NULL, when the value is NULL
    return F.expr(f"CASE WHEN {fits} THEN {value} END"), F.expr(fits)


def _checked(frame: DataFrame, table: str) -> tuple[dict[str, Column], dict[str, Column]]:
    """Per checked column of `table`: the value as the output's type (NULL when it does not fit) and an `_invalid_*`
    flag, true for a non-NULL source value that does not fit."""
    values, invalid = {}, {}
    for checked_table, column, target in CHECKED_VALUES:
        if checked_table == table:
            value, fits = exact_cast(frame, table, column, target)
            values[column] = value
            invalid[column] = (~fits).alias(f"_invalid_{column}")
    return values, invalid


def _count_and_require_unique(table: str, frame: DataFrame, key: str) -> tuple[int, dict[str, int]]:
    """Rows in `frame` (the count the job reports as read) and its `_invalid_*` flags' counts, after checking that no
    non-NULL `key` repeats; one pass."""
    flags = [c for c in frame.columns if c.startswith("_invalid_")]
    per_key = frame.groupBy(key).agg(
        F.count(F.lit(1)).alias("count"), *(F.sum(F.col(f).cast("int")).alias(f) for f in flags)
    )
    totals = per_key.agg(
        F.sum("count").alias("rows"),
        F.max(F.when(F.col(key).isNotNull(), F.col("count"))).alias("most"),
        *(F.sum(f).alias(f) for f in flags),
    ).collect()[0]
    if totals["most"] is not None and totals["most"] > 1:
        # A duplicated customer or product would silently multiply every rating that joins to it.
        duplicates = [r[key] for r in per_key.filter(F.col(key).isNotNull() & (F.col("count") > 1)).limit(5).collect()]
        raise EtlInputError(
            f"source table {table!r} has more than one row for {key} {', '.join(map(str, duplicates))}; "
            f"{key} must be unique (it is the table's primary key in classicmodels): remove the duplicates and re-run"
        )
    return int(totals["rows"] or 0), {f"{table}.{f[len('_invalid_'):]}": int(totals[f] or 0) for f in flags}


def _drop_reason() -> Any:
    """The column expression naming why a rating (already joined to key flags) is dropped; NULL when it is kept."""
    return (
        F.when(F.col("_null_key"), F.lit("null_key"))
        .when(F.col("_invalid_customerNumber"), F.lit("key_not_integer"))
        .when(F.col("_null_rating"), F.lit("null_rating"))
        .when(F.col("_invalid_productRating"), F.lit("rating_not_integer"))
        .when(~F.col("productRating").between(MIN_RATING, MAX_RATING), F.lit("rating_out_of_range"))
        .when(F.col("_customer_found").isNull(), F.lit("missing_customer"))
        .when(F.col("_product_found").isNull(), F.lit("missing_product"))
        .when(~F.col("_customer_valid"), F.lit("invalid_customer_value"))
        .when(~F.col("_product_valid"), F.lit("invalid_product_value"))
    )


def build_training_set(customers: DataFrame, products: DataFrame, ratings: DataFrame) -> tuple[DataFrame, EtlCounts]:
    """One row per valid rating with its customer's and product's features (`OUTPUT_SCHEMA`), and the counts.

    Inner-join semantics, as the lab: a rating whose customer or product does not exist is not written. Unlike the lab,
    every rating that is not written is counted by reason (`DROP_REASONS`), a rating outside 1-5 or with a NULL key
    never reaches the output, and no value is coerced into the output's types (`CHECKED_VALUES`): a rating of 4.7, or
    a customer whose creditLimit does not fit decimal(10,2), is dropped and counted, not written as 4 or NULL.
    """
    for table, frame in (("customers", customers), ("products", products), ("ratings", ratings)):
        _require_columns(table, frame, SOURCE_TABLES[table])

    values, invalid = _checked(customers, "customers")
    customer = customers.select(
        values["customerNumber"].alias("customerNumber"),
        *(F.col(c).cast(StringType()).alias(c) for c in ("city", "state", "postalCode", "country")),
        values["creditLimit"].alias("creditLimit"),
        *invalid.values(),
    )
    values, invalid = _checked(products, "products")
    product = products.select(
        F.col("productCode").cast(StringType()).alias("productCode"),
        F.col("productLine").cast(StringType()).alias("productLine"),
        F.col("productScale").cast(StringType()).alias("productScale"),
        *(values[c].alias(c) for c in ("quantityInStock", "buyPrice", "MSRP")),
        *invalid.values(),
    )
    customers_read, invalid_customers = _count_and_require_unique("customers", customer, "customerNumber")
    products_read, invalid_products = _count_and_require_unique("products", product, "productCode")
    # A customer or product without a (valid) key cannot be rated; it is read (and counted) but joins nothing.
    customer = customer.filter(F.col("customerNumber").isNotNull())
    product = product.filter(F.col("productCode").isNotNull())

    values, invalid = _checked(ratings, "ratings")
    rating = ratings.select(
        values["customerNumber"].alias("customerNumber"),
        F.col("productCode").cast(StringType()).alias("productCode"),
        values["productRating"].alias("productRating"),
        (F.col("customerNumber").isNull() | F.col("productCode").isNull()).alias("_null_key"),
        F.col("productRating").isNull().alias("_null_rating"),
        *invalid.values(),
    )
    customer_keys = customer.select(
        "customerNumber",
        F.lit(True).alias("_customer_found"),
        (~F.col("_invalid_creditLimit")).alias("_customer_valid"),
    )
    product_keys = product.select(
        "productCode",
        F.lit(True).alias("_product_found"),
        (~(F.col("_invalid_quantityInStock") | F.col("_invalid_buyPrice") | F.col("_invalid_MSRP"))).alias(
            "_product_valid"
        ),
    )
    classified = (
        rating.join(customer_keys, "customerNumber", "left")
        .join(product_keys, "productCode", "left")
        .withColumn("_drop_reason", _drop_reason())
    )
    rating_flags = [c for c in rating.columns if c.startswith("_invalid_")]
    groups = classified.groupBy("_drop_reason").agg(
        F.count(F.lit(1)).alias("count"), *(F.sum(F.col(f).cast("int")).alias(f) for f in rating_flags)
    ).collect()
    by_reason = {r["_drop_reason"]: r["count"] for r in groups}
    invalid_ratings = {f"ratings.{f[len('_invalid_'):]}": sum(int(r[f] or 0) for r in groups) for f in rating_flags}
    kept = by_reason.pop(None, 0)

    training = (
        classified.filter(F.col("_drop_reason").isNull())
        .select("customerNumber", "productCode", F.col("productRating").cast(IntegerType()).alias("productRating"))
        .join(customer, "customerNumber", "inner")
        .join(product, "productCode", "inner")
        .select(*OUTPUT_COLUMNS)
    )
    counts = EtlCounts(
        customers_read=customers_read,
        products_read=products_read,
        ratings_read=sum(by_reason.values()) + kept,
        rows_written=kept,
        dropped={reason: int(by_reason.get(reason, 0)) for reason in DROP_REASONS},
        invalid_values={**invalid_customers, **invalid_products, **invalid_ratings},
    )
    return training, counts


# ---------------------------------------------------------------------------------------------------------------------
# Publishing: which objects to copy and delete (pure), and the S3 / catalog calls that carry it out.
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ends with "/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def child(self, relative: str) -> S3Location:
        return S3Location(self.bucket, f"{self.prefix}{relative.strip('/')}/")


def parse_s3_uri(uri: str, argument: str = "--target_path") -> S3Location:
    if not uri.startswith("s3://") or len(uri) <= len("s3://") or uri[len("s3://")] == "/":
        raise EtlInputError(f"{argument} must be an s3://bucket/prefix/ URI, got {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    return S3Location(bucket, f"{prefix}/" if prefix else "")


def staging_location(target: S3Location, run_id: str) -> S3Location:
    """`s3://b/x/ratings-ml-training/` stages in `s3://b/x/_staging/ratings-ml-training/<run>/`: outside the table's
    prefix, so nothing that reads the table (Spark, Athena, the trainer) can see a half-written run."""
    parent, _, leaf = target.prefix.rstrip("/").rpartition("/")
    root = f"{parent}/_staging/{leaf or 'output'}/" if parent else f"_staging/{leaf or 'output'}/"
    return S3Location(target.bucket, f"{root}{run_id}/")


def partition_folder(relative_key: str) -> str | None:
    """`customerNumber=103/part-0.parquet` -> `customerNumber=103`; None for anything that is not a data file of ours
    (Spark's `_SUCCESS`, local `.crc` checksums, files outside partition folders)."""
    folder, _, name = relative_key.partition("/")
    if not folder.startswith(f"{PARTITION_COLUMN}=") or not name or "/" in name or name.startswith(("_", ".")):
        return None
    return folder


def partition_value(folder: str) -> int:
    return int(folder.partition("=")[2])


PublishAction = Literal["put", "delete"]


@dataclass(frozen=True)
class PublishPlan:
    steps: tuple[tuple[PublishAction, str], ...]  # relative keys, in the order to apply them
    partitions: tuple[int, ...]  # customerNumber values of the new output, sorted

    @property
    def puts(self) -> list[str]:
        return [k for a, k in self.steps if a == "put"]

    @property
    def deletes(self) -> list[str]:
        return [k for a, k in self.steps if a == "delete"]


def plan_publish(existing: Iterable[str], staged: Iterable[str]) -> PublishPlan:
    """The steps that turn the published output (`existing` keys, relative to the table prefix) into the staged run.

    Partition by partition: the new files go in first, then the partition's files that the run did not write go out,
    so a partition is never empty while it is replaced. Partitions of customers without ratings now are removed last.
    Keys outside `customerNumber=*/` folders are not the job's and are left alone.
    """
    new_files: dict[str, list[str]] = {}
    for key in staged:
        folder = partition_folder(key)
        if folder is not None:
            new_files.setdefault(folder, []).append(key)
    old_files: dict[str, list[str]] = {}
    for key in existing:
        folder = partition_folder(key) or (key.partition("/")[0] if key.startswith(f"{PARTITION_COLUMN}=") else None)
        if folder is not None:
            old_files.setdefault(folder, []).append(key)

    steps: list[tuple[PublishAction, str]] = []
    for folder in sorted(new_files, key=partition_value):
        written = set(new_files[folder])
        steps += [("put", k) for k in sorted(written)]
        steps += [("delete", k) for k in sorted(old_files.get(folder, [])) if k not in written]
    for folder in sorted(set(old_files) - set(new_files)):
        steps += [("delete", k) for k in sorted(old_files[folder])]
    return PublishPlan(tuple(steps), tuple(sorted(partition_value(f) for f in new_files)))


def list_keys(s3: Any, location: S3Location) -> list[str]:
    """Keys under `location`, relative to it."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix):
        keys += [obj["Key"][len(location.prefix) :] for obj in page.get("Contents", [])]
    return keys


def delete_keys(s3: Any, bucket: str, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if response.get("Errors"):
            first = response["Errors"][0]
            raise RuntimeError(f"could not delete s3://{bucket}/{first['Key']}: {first.get('Message', first)}")


class StagedRun:
    """Where Spark writes one run before it is published: an S3 prefix (on Glue) or a local directory (locally)."""

    def __init__(self, s3: Any, s3_location: S3Location | None = None, local_dir: Path | None = None) -> None:
        if (s3_location is None) == (local_dir is None):
            raise ValueError("a staged run is either on S3 or in a local directory")
        self.s3, self.s3_location, self.local_dir = s3, s3_location, local_dir

    @property
    def spark_path(self) -> str:
        if self.local_dir is not None:
            return self.local_dir.resolve().as_uri()
        assert self.s3_location is not None
        return self.s3_location.uri

    def keys(self) -> list[str]:
        if self.local_dir is not None:
            return sorted(p.relative_to(self.local_dir).as_posix() for p in self.local_dir.rglob("*") if p.is_file())
        assert self.s3_location is not None
        return list_keys(self.s3, self.s3_location)

    def publish(self, relative: str, target: S3Location) -> None:
        destination = f"{target.prefix}{relative}"
        if self.local_dir is not None:
            from boto3.s3.transfer import TransferConfig

            # One small Parquet file per partition, and partitions are published in parallel already: no transfer
            # threads of its own per file.
            self.s3.upload_file(str(self.local_dir / relative), target.bucket, destination,
                                Config=TransferConfig(use_threads=False))
        else:
            assert self.s3_location is not None
            source = {"Bucket": self.s3_location.bucket, "Key": f"{self.s3_location.prefix}{relative}"}
            self.s3.copy_object(CopySource=source, Bucket=target.bucket, Key=destination)

    def remove_leftovers(self) -> list[str]:
        """Delete what runs killed before their own cleanup left next to this run's staging area; returns them."""
        if self.local_dir is not None:
            import shutil

            others = [p for p in self.local_dir.parent.glob("*") if p.is_dir() and p.name != self.local_dir.name]
            for other in others:
                shutil.rmtree(other, ignore_errors=True)
            return [str(p) for p in others]
        assert self.s3_location is not None
        root = S3Location(self.s3_location.bucket, self.s3_location.prefix.rstrip("/").rpartition("/")[0] + "/")
        own = self.s3_location.prefix[len(root.prefix) :]
        leftovers = [k for k in list_keys(self.s3, root) if not k.startswith(own)]
        delete_keys(self.s3, root.bucket, [f"{root.prefix}{k}" for k in leftovers])
        return sorted({f"{root.uri}{k.partition('/')[0]}/" for k in leftovers})

    def remove(self) -> None:
        if self.local_dir is not None:
            import shutil

            shutil.rmtree(self.local_dir, ignore_errors=True)
        elif self.s3_location is not None:
            delete_keys(self.s3, self.s3_location.bucket, [f"{self.s3_location.prefix}{k}" for k in self.keys()])


# Partitions replaced at once. S3 takes one request per file: 10,000 customer partitions one after the other are
# tens of minutes of round trips, and the partitions do not depend on each other.
PUBLISH_WORKERS = 16


@dataclass(frozen=True)
class PartitionSteps:
    folder: str
    puts: tuple[str, ...]
    deletes: tuple[str, ...]


def partition_steps(plan: PublishPlan) -> tuple[list[PartitionSteps], list[PartitionSteps]]:
    """The plan per partition folder, in plan order: (partitions the run writes, partitions it only removes)."""
    grouped: dict[str, tuple[list[str], list[str]]] = {}
    for action, key in plan.steps:
        puts, deletes = grouped.setdefault(key.partition("/")[0], ([], []))
        (puts if action == "put" else deletes).append(key)
    steps = [PartitionSteps(folder, tuple(puts), tuple(deletes)) for folder, (puts, deletes) in grouped.items()]
    return [s for s in steps if s.puts], [s for s in steps if not s.puts]


def apply_publish(s3: Any, plan: PublishPlan, staged: StagedRun, target: S3Location,
                  workers: int = PUBLISH_WORKERS) -> None:
    """Carry out the plan with its guarantees: within a partition, the new files go in before the stale ones go out
    (never empty while replaced); partitions that only lose files go last. Up to `workers` partitions at once; the
    first failure stops what has not started and is raised."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    # Set by the failing worker itself: a worker that frees up picks the next queued partition before this thread
    # has seen the failure and cancelled the queue, and must not start it.
    failed = threading.Event()

    def replace(partition: PartitionSteps) -> None:
        if failed.is_set():
            return
        try:
            for relative in partition.puts:
                staged.publish(relative, target)
            delete_keys(s3, target.bucket, [f"{target.prefix}{k}" for k in partition.deletes])
        except BaseException:
            failed.set()
            raise

    written, removed = partition_steps(plan)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="publish")
    try:
        for future in [pool.submit(replace, partition) for partition in written]:
            future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    delete_keys(s3, target.bucket, [f"{target.prefix}{k}" for partition in removed for k in partition.deletes])


def hive_type(data_type: Any) -> str:
    # Spark's simple names of int, string and decimal(10,2) are the Hive type names Athena reads the Parquet with.
    return str(data_type.simpleString())


def catalog_table_input(table: str, location: S3Location, run_id: str) -> dict[str, Any]:
    """The Glue Data Catalog description of the output: Parquet columns, and customerNumber as the partition key."""
    columns = [
        {"Name": f.name, "Type": hive_type(f.dataType)} for f in OUTPUT_SCHEMA.fields if f.name != PARTITION_COLUMN
    ]
    return {
        "Name": table,
        "Description": "Ratings joined with customer and product features: the recommender's training data.",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "parquet",
            "parquet.compression": "SNAPPY",
            "EXTERNAL": "TRUE",
            "recsys.last_run_id": run_id,
        },
        "PartitionKeys": [{"Name": PARTITION_COLUMN, "Type": "int"}],
        "StorageDescriptor": {
            "Columns": columns,
            "Location": location.uri,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "Compressed": True,
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
    }


def catalog_partition_input(table_input: Mapping[str, Any], location: S3Location, value: int) -> dict[str, Any]:
    descriptor = dict(table_input["StorageDescriptor"])
    descriptor["Location"] = location.child(f"{PARTITION_COLUMN}={value}").uri
    return {"Values": [str(value)], "StorageDescriptor": descriptor}


def update_catalog(glue: Any, database: str, table: str, location: S3Location, partitions: Sequence[int],
                   run_id: str) -> None:
    """Create or update the table, then make its partitions exactly `partitions` (new added, stale removed)."""
    table_input = catalog_table_input(table, location, run_id)
    try:
        glue.get_table(DatabaseName=database, Name=table)
        glue.update_table(DatabaseName=database, TableInput=table_input)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=database, TableInput=table_input)

    registered: set[int] = set()
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
        registered |= {int(p["Values"][0]) for p in page.get("Partitions", [])}
    wanted = set(partitions)
    to_add = sorted(wanted - registered)
    for start in range(0, len(to_add), 100):  # BatchCreatePartition takes at most 100
        batch = [catalog_partition_input(table_input, location, v) for v in to_add[start : start + 100]]
        response = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=batch)
        if response.get("Errors"):
            raise RuntimeError(f"catalog refused partitions of {database}.{table}: {response['Errors'][:3]}")
    to_remove = sorted(registered - wanted)
    for start in range(0, len(to_remove), 25):  # BatchDeletePartition takes at most 25
        batch_values = [{"Values": [str(v)]} for v in to_remove[start : start + 25]]
        glue.batch_delete_partition(DatabaseName=database, TableName=table, PartitionsToDelete=batch_values)


# ---------------------------------------------------------------------------------------------------------------------
# One run, the same on Glue and locally: read, transform, stage, publish, catalog.
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSettings:
    job_name: str
    run_id: str
    target: S3Location
    catalog_database: str
    catalog_table: str = DEFAULT_CATALOG_TABLE


@dataclass(frozen=True)
class RunResult:
    counts: EtlCounts
    partitions: int
    target_uri: str
    objects_published: int
    objects_deleted: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.counts.rows_written,
            "partitions": self.partitions,
            "prefix": self.target_uri,
            "objects_published": self.objects_published,
            "objects_deleted": self.objects_deleted,
            "counts": self.counts.as_dict(),
        }


def _stage(stage: Stage, detail: str) -> None:
    # One parseable line per stage: the local harness turns them into progress; on Glue they land in CloudWatch.
    LOG.info("stage %s: %s", stage, detail)


def run_job(read_table: Callable[[str], DataFrame], settings: JobSettings, staged: StagedRun, s3: Any,
            glue: Any) -> RunResult:
    sources: dict[str, DataFrame] = {}
    try:
        for leftover in staged.remove_leftovers():
            LOG.warning("removed the staging area %s of an earlier run that did not finish", leftover)
        _stage("read", f"reading {', '.join(SOURCE_TABLES)}")
        for table in SOURCE_TABLES:
            try:
                # Cached: the counts and the join would otherwise read each table over JDBC more than once.
                sources[table] = read_table(table).cache()
            except Exception as error:
                raise SourceUnavailableError(
                    f"cannot read source table {table!r}: {root_cause(error)}. Check the job's connection (JDBC URL, "
                    "credentials in its secret) and that the database is reachable and has the classicmodels tables"
                ) from error
        _stage("transform", "joining ratings with customer and product features")
        training, counts = build_training_set(sources["customers"], sources["products"], sources["ratings"])
        LOG.info("counts %s", json.dumps(counts.as_dict(), sort_keys=True))
        if counts.rows_written == 0:
            raise EtlInputError(
                f"no rating can be written ({counts.ratings_read} read, dropped: {counts.dropped}); the previous "
                "output is kept. Check that the job reads the right database and that `ratings` is loaded "
                "(locally: python -m harness seed)"
            )
        _stage("write", f"writing {counts.rows_written} rows to the staging area {staged.spark_path}")
        (
            training.repartition(PARTITION_COLUMN)  # one file per customer partition instead of one per task
            .write.mode("overwrite")
            .partitionBy(PARTITION_COLUMN)
            .option("compression", "snappy")
            .parquet(staged.spark_path)
        )
        plan = plan_publish(list_keys(s3, settings.target), staged.keys())
        _stage("publish", f"publishing {len(plan.partitions)} partitions to {settings.target.uri}")
        apply_publish(s3, plan, staged, settings.target)
        _stage("catalog", f"updating {settings.catalog_database}.{settings.catalog_table}")
        update_catalog(glue, settings.catalog_database, settings.catalog_table, settings.target, plan.partitions,
                       settings.run_id)
    finally:
        try:
            staged.remove()
        except Exception:  # the run's outcome matters more than a leftover staging prefix; say so and move on
            LOG.warning("could not remove the staging area %s", staged.spark_path, exc_info=True)
        for frame in sources.values():
            frame.unpersist()
    result = RunResult(counts, len(plan.partitions), settings.target.uri, len(plan.puts), len(plan.deletes))
    _stage("done", "run finished")
    LOG.info("summary %s", json.dumps(result.as_dict(), sort_keys=True))
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Entry points: AWS Glue, and local Spark (python -m harness etl run).
# ---------------------------------------------------------------------------------------------------------------------


def _argument(argv: Sequence[str], name: str) -> str | None:
    flag = f"--{name}"
    for i, token in enumerate(argv):
        if token == flag and i + 1 < len(argv):
            return argv[i + 1]
        if token.startswith(f"{flag}="):
            return token[len(flag) + 1 :]
    return None


def run_on_glue(argv: Sequence[str]) -> RunResult:
    import boto3
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    # argv[0] is the script, as in sys.argv: getResolvedOptions skips it.
    args = getResolvedOptions(list(argv), ["JOB_NAME", "connection_name", "catalog_database", "target_path"])
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    run_id = _argument(argv, "JOB_RUN_ID") or uuid.uuid4().hex
    target = parse_s3_uri(args["target_path"])
    settings = JobSettings(
        job_name=args["JOB_NAME"],
        run_id=run_id,
        target=target,
        catalog_database=args["catalog_database"],
        catalog_table=_argument(argv, "catalog_table") or DEFAULT_CATALOG_TABLE,
    )

    def read_table(table: str) -> DataFrame:
        # The connection carries URL, database and credentials (or its Secrets Manager secret): nothing in the script.
        options = {"useConnectionProperties": "true", "connectionName": args["connection_name"], "dbtable": table}
        frame = glue_context.create_dynamic_frame.from_options(connection_type="mysql", connection_options=options)
        return frame.toDF()

    s3 = boto3.client("s3")
    staged = StagedRun(s3, s3_location=staging_location(target, run_id))
    result = run_job(read_table, settings, staged, s3, boto3.client("glue"))
    job.commit()
    return result


def _local_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ratings_etl.py",
        description="Run the Glue job on local Spark against a JDBC source (python -m harness etl run does this).",
    )
    parser.add_argument("--JOB_NAME", required=True)
    parser.add_argument("--JOB_RUN_ID", default=None)
    parser.add_argument("--connection_name", default=None, help="the Glue connection (informational locally)")
    parser.add_argument("--catalog_database", required=True)
    parser.add_argument("--catalog_table", default=DEFAULT_CATALOG_TABLE)
    parser.add_argument("--target_path", required=True, help="s3://<datalake>/ratings-ml-training/")
    parser.add_argument("--jdbc_url", required=True, help="jdbc:mysql://host:port/classicmodels")
    parser.add_argument("--jdbc_user", default=None)
    parser.add_argument("--jdbc_password", default=os.environ.get(PASSWORD_ENV),
                        help=f"prefer --jdbc_secret_id or ${PASSWORD_ENV}: arguments show up in ps")
    parser.add_argument("--jdbc_secret_id", default=None, help="Secrets Manager secret with RDS-style JSON")
    parser.add_argument("--jdbc_driver", default="org.mariadb.jdbc.Driver")
    parser.add_argument("--local_output", required=True, help="local directory where Spark stages the run")
    return parser


def jdbc_credentials(user: str | None, password: str | None, secret_id: str | None,
                     fetch_secret: Callable[[str], str]) -> tuple[str, str]:
    """User and password: explicit arguments win; otherwise the RDS-style secret supplies what is missing."""
    if password is None and secret_id is None:
        raise EtlInputError("give the source database password: --jdbc_secret_id <secret arn> or --jdbc_password")
    if secret_id is not None and (password is None or user is None):
        secret = json.loads(fetch_secret(secret_id))
        user = user or secret.get("username")
        password = password if password is not None else secret.get("password")
    if not user or password is None:
        raise EtlInputError(f"secret {secret_id!r} has no username/password; give --jdbc_user and --jdbc_password")
    return user, password


def run_locally(argv: Sequence[str]) -> RunResult:
    import boto3

    # Unknown arguments are the ones Glue adds to every run (--TempDir, --enable-metrics, ...): accepted and ignored.
    options, _glue_extras = _local_parser().parse_known_args(list(argv[1:]))
    if not options.jdbc_url.startswith("jdbc:"):
        raise EtlInputError(f"--jdbc_url must be a JDBC URL such as jdbc:mysql://127.0.0.1:3306/classicmodels, "
                            f"got {options.jdbc_url!r}")
    target = parse_s3_uri(options.target_path)
    run_id = options.JOB_RUN_ID or uuid.uuid4().hex
    settings = JobSettings(options.JOB_NAME, run_id, target, options.catalog_database, options.catalog_table)
    user, password = jdbc_credentials(
        options.jdbc_user, options.jdbc_password, options.jdbc_secret_id,
        lambda secret_id: boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"],
    )
    spark = SparkSession.builder.appName(options.JOB_NAME).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")

    def read_table(table: str) -> DataFrame:
        return (
            spark.read.format("jdbc")
            .option("url", options.jdbc_url)
            .option("driver", options.jdbc_driver)
            .option("dbtable", table)
            .option("user", user)
            .option("password", password)
            .load()
        )

    staged = StagedRun(boto3.client("s3"), local_dir=Path(options.local_output) / run_id)
    return run_job(read_table, settings, staged, boto3.client("s3"), boto3.client("glue"))


def main(argv: Sequence[str]) -> int:
    """`argv` as `sys.argv`: the script's path first. Local mode when `--jdbc_url` is given, Glue otherwise."""
    level = os.environ.get("LOG_LEVEL", "INFO")
    # On Glue the root logger may already be configured (then basicConfig does nothing): the job's own level still
    # has to let the stage, counts and summary lines through.
    logging.basicConfig(stream=sys.stdout, level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    LOG.setLevel(level)
    local = _argument(argv, "jdbc_url") is not None
    try:
        run_locally(argv) if local else run_on_glue(argv)
    except (EtlInputError, SourceUnavailableError) as error:
        LOG.error("ratings ETL stopped: %s", error)
        if not local:
            raise  # Glue shows the message as the run's ErrorMessage
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
