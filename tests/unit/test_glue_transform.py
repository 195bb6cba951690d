"""The Glue job's transformation on small hand-made DataFrames: what is written, with which types, and what is dropped.

The script is loaded from its file (the program uploads exactly `glue_scripts/ratings_etl.py`), and runs on a real local
SparkSession: one per test session, one core, two shuffle partitions, no UI.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

SCRIPT = Path(__file__).resolve().parents[2] / "glue_scripts" / "ratings_etl.py"


def load_script() -> ModuleType:
    if "ratings_etl" in sys.modules:
        return sys.modules["ratings_etl"]
    spec = importlib.util.spec_from_file_location("ratings_etl", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ratings_etl"] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


etl = load_script()




# Column types as Spark's JDBC reader gives them for the classicmodels tables (smallint stock, decimal(10,2) money).
CUSTOMERS = ("customerNumber int, customerName string, city string, state string, postalCode string, country string, "
             "creditLimit decimal(10,2)")
PRODUCTS = ("productCode string, productName string, productLine string, productScale string, "
            "quantityInStock smallint, buyPrice decimal(10,2), MSRP decimal(10,2)")
RATINGS = "customerNumber int, productCode string, productRating int"


def customers(spark: SparkSession, rows: list[tuple[Any, ...]] | None = None) -> DataFrame:
    return spark.createDataFrame(rows if rows is not None else [
        (103, "Atelier graphique", "Nantes", None, "44000", "France", Decimal("21000.00")),
        (112, "Signal Gift Stores", "Las Vegas", "NV", "83030", "USA", Decimal("71800.50")),
        (125, "Havel & Zbyszek Co", "Warszawa", None, None, "Poland", None),
    ], CUSTOMERS)


def products(spark: SparkSession, rows: list[tuple[Any, ...]] | None = None) -> DataFrame:
    return spark.createDataFrame(rows if rows is not None else [
        ("S10_1678", "1969 Harley Davidson", "Motorcycles", "1:10", 7933, Decimal("48.81"), Decimal("95.70")),
        ("S18_2248", "1911 Ford Town Car", "Vintage Cars", "1:18", 540, Decimal("33.30"), Decimal("60.54")),
    ], PRODUCTS)


def ratings(spark: SparkSession, rows: list[tuple[Any, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, RATINGS)


def sorted_rows(frame: DataFrame) -> list[tuple[Any, ...]]:
    return sorted((tuple(row) for row in frame.collect()), key=lambda r: (r[0], r[6]))


def test_each_valid_rating_becomes_one_row_with_its_customer_and_product_features(spark: SparkSession) -> None:
    given = ratings(spark, [(103, "S10_1678", 5), (112, "S10_1678", 3), (112, "S18_2248", 1)])

    training, counts = etl.build_training_set(customers(spark), products(spark), given)

    assert sorted_rows(training) == [
        (103, "Nantes", None, "44000", "France", Decimal("21000.00"),
         "S10_1678", "Motorcycles", "1:10", 7933, Decimal("48.81"), Decimal("95.70"), 5),
        (112, "Las Vegas", "NV", "83030", "USA", Decimal("71800.50"),
         "S10_1678", "Motorcycles", "1:10", 7933, Decimal("48.81"), Decimal("95.70"), 3),
        (112, "Las Vegas", "NV", "83030", "USA", Decimal("71800.50"),
         "S18_2248", "Vintage Cars", "1:18", 540, Decimal("33.30"), Decimal("60.54"), 1),
    ]
    assert counts.rows_written == 3
    assert counts.dropped_total == 0


def test_output_has_the_contract_columns_in_order_with_integer_and_decimal_types(spark: SparkSession) -> None:
    training, _ = etl.build_training_set(customers(spark), products(spark), ratings(spark, [(103, "S10_1678", 4)]))

    assert [(f.name, f.dataType.simpleString()) for f in training.schema.fields] == [
        ("customerNumber", "int"), ("city", "string"), ("state", "string"), ("postalCode", "string"),
        ("country", "string"), ("creditLimit", "decimal(10,2)"), ("productCode", "string"),
        ("productLine", "string"), ("productScale", "string"), ("quantityInStock", "int"),
        ("buyPrice", "decimal(10,2)"), ("MSRP", "decimal(10,2)"), ("productRating", "int"),
    ]


def test_money_keeps_its_cents_and_null_features_stay_null(spark: SparkSession) -> None:
    training, _ = etl.build_training_set(
        customers(spark), products(spark), ratings(spark, [(125, "S18_2248", 2), (112, "S18_2248", 4)])
    )

    by_customer = {row["customerNumber"]: row for row in training.collect()}
    assert by_customer[125]["state"] is None
    assert by_customer[125]["postalCode"] is None
    assert by_customer[125]["creditLimit"] is None
    assert by_customer[112]["creditLimit"] == Decimal("71800.50")
    assert by_customer[112]["MSRP"] == Decimal("60.54")


def test_orphans_bad_ratings_and_null_keys_are_dropped_and_counted_by_reason(spark: SparkSession) -> None:
    given = ratings(spark, [
        (103, "S10_1678", 5),     # kept
        (999, "S10_1678", 4),     # customer 999 does not exist
        (103, "S99_0000", 4),     # product S99_0000 does not exist
        (112, "S10_1678", 0),     # below 1
        (112, "S18_2248", 6),     # above 5
        (None, "S10_1678", 3),    # NULL customer key
        (125, None, 3),           # NULL product key
        (125, "S10_1678", None),  # NULL rating
    ])

    training, counts = etl.build_training_set(customers(spark), products(spark), given)

    assert [(r["customerNumber"], r["productCode"]) for r in training.collect()] == [(103, "S10_1678")]
    assert counts.dropped == {
        "null_key": 2, "null_rating": 1, "rating_out_of_range": 2, "missing_customer": 1, "missing_product": 1,
    }
    assert (counts.ratings_read, counts.rows_written, counts.dropped_total) == (8, 1, 7)
    assert (counts.customers_read, counts.products_read) == (3, 2)


def test_a_rating_with_several_faults_is_counted_once_under_the_first_reason(spark: SparkSession) -> None:
    # Unknown customer AND out of range: the rating itself is invalid, whatever it points at.
    given = ratings(spark, [(999, "S99_0000", 7), (999, "S99_0000", 2)])

    training, counts = etl.build_training_set(customers(spark), products(spark), given)

    assert training.count() == 0
    assert counts.dropped == {
        "null_key": 0, "null_rating": 0, "rating_out_of_range": 1, "missing_customer": 1, "missing_product": 0,
    }


def test_boundary_ratings_one_and_five_are_kept(spark: SparkSession) -> None:
    training, counts = etl.build_training_set(
        customers(spark), products(spark), ratings(spark, [(103, "S10_1678", 1), (103, "S18_2248", 5)])
    )

    assert sorted(r["productRating"] for r in training.collect()) == [1, 5]
    assert counts.dropped_total == 0


def test_a_duplicated_customer_stops_the_job_instead_of_multiplying_ratings(spark: SparkSession) -> None:
    twice = customers(spark, [
        (103, "A", "Nantes", None, None, "France", None),
        (103, "B", "Paris", None, None, "France", None),
    ])

    with pytest.raises(etl.EtlInputError, match=r"'customers' has more than one row for customerNumber 103"):
        etl.build_training_set(twice, products(spark), ratings(spark, [(103, "S10_1678", 5)]))


def test_a_source_table_without_a_needed_column_is_named_in_the_error(spark: SparkSession) -> None:
    without_scale = products(spark).drop("productScale")

    with pytest.raises(etl.EtlInputError, match=r"source table 'products' has no column\(s\) productScale"):
        etl.build_training_set(customers(spark), without_scale, ratings(spark, [(103, "S10_1678", 5)]))
