"""The Glue job's transformation on small hand-made DataFrames: what is written, with which types, and what is dropped.

The script is loaded from its file (the program uploads exactly `glue_scripts/ratings_etl.py`), and runs on a real local
SparkSession: one per test session, one core, two shuffle partitions, no UI.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import IntegerType

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


def dropped(**reasons: int) -> dict[str, int]:
    """The job's drop counts: every reason present, zero unless given."""
    return {reason: reasons.get(reason, 0) for reason in etl.DROP_REASONS}


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
    assert counts.dropped == dropped(null_key=2, null_rating=1, rating_out_of_range=2, missing_customer=1,
                                     missing_product=1)
    assert (counts.ratings_read, counts.rows_written, counts.dropped_total) == (8, 1, 7)
    assert (counts.customers_read, counts.products_read) == (3, 2)


def test_a_rating_with_several_faults_is_counted_once_under_the_first_reason(spark: SparkSession) -> None:
    # Unknown customer AND out of range: the rating itself is invalid, whatever it points at.
    given = ratings(spark, [(999, "S99_0000", 7), (999, "S99_0000", 2)])

    training, counts = etl.build_training_set(customers(spark), products(spark), given)

    assert training.count() == 0
    assert counts.dropped == dropped(rating_out_of_range=1, missing_customer=1)


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


# ---- values that do not fit the output's types: dropped and counted, never coerced ---------------------------------
NANTES = (103, "Nantes", None, "44000", "France", Decimal("21000.00"))
HARLEY = ("S10_1678", "Motorcycles", "1:10", 7933, Decimal("48.81"), Decimal("95.70"))


def test_ratings_as_text_that_are_not_integers_are_dropped_not_truncated(spark: SparkSession) -> None:
    given = spark.createDataFrame([
        ("103", "S10_1678", "5"),           # kept
        ("112", "S10_1678", "4.0"),         # kept: 4.0 is the integer 4
        ("125", "S18_2248", " 2 "),         # kept: surrounding spaces are not part of the number
        ("112", "S18_2248", "4.7"),         # Spark's cast makes this 4
        ("125", "S10_1678", "3.99"),        # ...and this 3
        ("103", "S18_2248", "four"),        # not a number at all
        ("103.5", "S10_1678", "4"),         # a customer number that is not an integer (the cast would say 103)
        ("cust", "S18_2248", "3"),
        ("112", "S10_1678", "3000000000"),  # an integer, far outside 1-5
    ], "customerNumber string, productCode string, productRating string")

    training, counts = etl.build_training_set(customers(spark), products(spark), given)

    assert sorted((r["customerNumber"], r["productCode"], r["productRating"]) for r in training.collect()) == [
        (103, "S10_1678", 5), (112, "S10_1678", 4), (125, "S18_2248", 2)]
    assert counts.dropped == dropped(rating_not_integer=3, key_not_integer=2, rating_out_of_range=1)
    assert (counts.ratings_read, counts.rows_written) == (9, 3)
    assert counts.invalid_values == {"customers.customerNumber": 0, "customers.creditLimit": 0,
                                     "products.quantityInStock": 0, "products.buyPrice": 0, "products.MSRP": 0,
                                     "ratings.customerNumber": 2, "ratings.productRating": 3}


def test_ratings_as_doubles_must_be_whole_numbers_from_one_to_five(spark: SparkSession) -> None:
    given = spark.createDataFrame([
        (103.0, "S10_1678", 5.0),            # kept
        (112.0, "S10_1678", 4.7),            # not an integer
        (112.0, "S18_2248", float("nan")),
        (125.0, "S10_1678", float("inf")),
        (125.0, "S18_2248", 3e9),            # an integer, out of range
        (2147483648.0, "S10_1678", 3.0),     # beyond int: the customer number cannot be an int
        (103.25, "S18_2248", 3.0),
    ], "customerNumber double, productCode string, productRating double")

    training, counts = etl.build_training_set(customers(spark), products(spark), given)

    assert sorted_rows(training) == [(*NANTES, *HARLEY, 5)]
    assert counts.dropped == dropped(rating_not_integer=3, rating_out_of_range=1, key_not_integer=2)
    assert (counts.invalid_values["ratings.productRating"], counts.invalid_values["ratings.customerNumber"]) == (3, 2)


def test_a_credit_limit_that_does_not_fit_decimal_10_2_drops_the_customers_ratings_instead_of_becoming_null(
        spark: SparkSession) -> None:
    given_customers = spark.createDataFrame([
        (103, "A", "Nantes", None, "44000", "France", 21000.0),   # fits: 21000.00
        (112, "B", "Las Vegas", "NV", "83030", "USA", 1e12),      # out of decimal(10,2) range: Spark's cast says NULL
        (125, "C", "Warszawa", None, None, "Poland", None),       # NULL stays NULL
        (141, "D", "Madrid", None, "28034", "Spain", 12.345),     # a third decimal: the cast would round it
        (144, "E", "Lule", None, "S-958 22", "Sweden", 71800.5),  # fits: 71800.50
        (145, "F", "Kobenhavn", None, "1734", "Denmark", float("nan")),
    ], "customerNumber int, customerName string, city string, state string, postalCode string, country string, "
       "creditLimit double")
    given = ratings(spark, [(103, "S10_1678", 5), (112, "S10_1678", 4), (112, "S18_2248", 2), (125, "S10_1678", 3),
                            (141, "S18_2248", 1), (144, "S18_2248", 4), (145, "S10_1678", 5)])

    training, counts = etl.build_training_set(given_customers, products(spark), given)

    by_customer = {r["customerNumber"]: r["creditLimit"] for r in training.collect()}
    assert by_customer == {103: Decimal("21000.00"), 125: None, 144: Decimal("71800.50")}
    assert counts.dropped == dropped(invalid_customer_value=4)
    assert counts.invalid_values["customers.creditLimit"] == 3
    assert (counts.customers_read, counts.ratings_read, counts.rows_written) == (6, 7, 3)


def test_product_values_as_text_must_fit_int_and_decimal_10_2_exactly(spark: SparkSession) -> None:
    given_products = spark.createDataFrame([
        ("S10_1678", "x", "Motorcycles", "1:10", "7933", "48.81", "95.70"),      # kept, values unchanged
        ("S18_2248", "x", "Vintage Cars", "1:18", "540.5", "33.30", "60.54"),    # half a model in stock
        ("S12_1099", "x", "Classic Cars", "1:12", "68", "cheap", "194.57"),      # text in a money column
        ("S12_3148", "x", "Classic Cars", "1:12", "6906", "89.14", "123456789"),  # beyond decimal(10,2)
        ("S18_1097", "x", "Trucks and Buses", "1:18", "2147483648", "58.33", "116.67"),  # beyond int
        ("S24_1444", "x", "Classic Cars", "1:24", "70000", "0.10", "1.00"),      # kept: an int, if not a smallint
    ], "productCode string, productName string, productLine string, productScale string, quantityInStock string, "
       "buyPrice string, MSRP string")
    codes = ["S10_1678", "S18_2248", "S12_1099", "S12_3148", "S18_1097", "S24_1444"]
    given = ratings(spark, [(103, code, 3) for code in codes] + [(112, "S12_1099", 4)])

    training, counts = etl.build_training_set(customers(spark), given_products, given)

    assert sorted_rows(training) == [
        (*NANTES, *HARLEY, 3),
        (*NANTES, "S24_1444", "Classic Cars", "1:24", 70000, Decimal("0.10"), Decimal("1.00"), 3),
    ]
    assert counts.dropped == dropped(invalid_product_value=5)
    assert {k: v for k, v in counts.invalid_values.items() if k.startswith("products.")} == {
        "products.quantityInStock": 2, "products.buyPrice": 1, "products.MSRP": 1}


def test_a_numeric_column_of_a_non_numeric_type_stops_the_job_naming_it(spark: SparkSession) -> None:
    given = customers(spark)
    as_flags = given.withColumn("creditLimit", given["creditLimit"].isNotNull())

    with pytest.raises(etl.EtlInputError, match=r"source column customers\.creditLimit is boolean; the job needs a "
                                                r"number that fits decimal\(10,2\)"):
        etl.build_training_set(as_flags, products(spark), ratings(spark, [(103, "S10_1678", 5)]))


def expected_fit(value: Any, target: str) -> tuple[bool, Any]:
    """The oracle, in plain Python: does `value` (a double, a float32 or a string) fit `target` exactly, and as what?

    Text is a decimal number and fits when it is one of the target's values. A binary number fits when the target's
    value nearest to it (for money: its shortest decimal rounded to cents) converts back to exactly that number: the
    FLOAT 0.1 is the decimal 0.10, the DOUBLE 12.345 is no decimal(10,2).
    """
    if value is None:
        return True, None
    if isinstance(value, float | np.float32):
        if value != value or value in (float("inf"), float("-inf")):
            return False, None
        if target == "int":
            ok = float(value).is_integer() and -(2**31) <= value < 2**31
            return ok, int(value) if ok else None
        cents = Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        ok = abs(cents) < 10**8 and type(value)(float(cents)) == value
        return ok, cents if ok else None
    try:
        number = Decimal(value.strip())
    except ArithmeticError:
        return False, None
    if not number.is_finite():
        return False, None
    if target == "int":
        ok = number == number.to_integral_value() and -(2**31) <= number < 2**31
        return ok, int(number) if ok else None
    ok = number == number.quantize(Decimal("0.01")) and abs(number) < 10**8
    return ok, number.quantize(Decimal("0.01")) if ok else None


numbers = st.decimals(min_value=-(10**10), max_value=10**10, allow_nan=False, allow_infinity=False, places=3)


@settings(max_examples=4, deadline=None)
@example(values=[0.1, 12.345, 1e12, 99999999.99, 48209608.0, 4.0, -0.0, float("nan"), float("-inf"), 2.0**31,
                 "4.7", "4.0", " 7 ", "12.345", "99999999.99", "100000000", "1e3", "", None])
@given(values=st.lists(st.one_of(
    numbers.map(float), numbers.map(str), st.integers(-(2**40), 2**40).map(float),
    st.sampled_from([float("nan"), float("inf"), -0.0, 0.1, 1e12, "", "abc", "1,5", " 7 ", "0x10", None]),
), min_size=1, max_size=40))
def test_exact_cast_keeps_exactly_the_values_that_fit_and_nothing_else(spark: SparkSession, values: list[Any]) -> None:
    # One frame per source type (a column holds one type): doubles, the same as floats (FLOAT columns), then text.
    for kind in ("double", "float", "string"):
        column = [v for v in values if v is None or isinstance(v, str if kind == "string" else float)]
        if kind == "float":
            column = [None if v is None else float(np.float32(v)) for v in column]
        if not column:
            continue
        frame = spark.createDataFrame([(v,) for v in column], f"v {kind}")
        checks = []
        for target in (IntegerType(), etl.MONEY):
            value, fits = etl.exact_cast(frame, "t", "v", target)
            checks += [value.alias(f"value_{target.simpleString()}"), fits.alias(f"fits_{target.simpleString()}")]
        rows = frame.select("v", *checks).collect()
        for row in rows:
            source = np.float32(row["v"]) if kind == "float" and row["v"] is not None else row["v"]
            for target in ("int", "decimal(10,2)"):
                ok, expected = expected_fit(source, "int" if target == "int" else "money")
                assert (row[f"fits_{target}"], row[f"value_{target}"]) == (ok, expected), (kind, row["v"], target)
