"""The source data generator: the sample's shape and sizes, deterministic, and ratings a model can learn from."""

from __future__ import annotations

import statistics
import zipfile
from collections import defaultdict
from io import BytesIO
from pathlib import Path

import pytest
from recsys import classicmodels as cm

from components import packaging


@pytest.fixture(scope="module")
def sample() -> cm.Dataset:
    return cm.generate(1, 42)


def rows_as_dicts(dataset: cm.Dataset, table: cm.TableName) -> list[dict[str, object]]:
    return [dict(zip(cm.COLUMNS[table], row, strict=True)) for row in dataset.tables[table]]


def test_scale_one_has_the_sizes_of_the_public_sample(sample: cm.Dataset) -> None:
    counts = sample.counts()
    assert {k: counts[k] for k in cm.SAMPLE_TABLES} == {
        "productlines": 7, "products": 110, "offices": 7, "employees": 23, "customers": 122, "payments": 273,
        "orders": 326, "orderdetails": 2996,
    }
    assert 2300 <= counts["ratings"] <= 2700


def test_scale_multiplies_customers_products_and_orders_but_not_the_product_lines() -> None:
    counts = cm.generate(3, 42).counts()
    assert counts["customers"] == 3 * 122
    assert counts["products"] == 3 * 110
    assert counts["orders"] == 3 * 326
    assert counts["orderdetails"] == 3 * 2996
    assert counts["productlines"] == 7
    assert counts["offices"] == 7


def test_the_same_seed_gives_the_same_rows_and_another_seed_other_rows(sample: cm.Dataset) -> None:
    assert cm.generate(1, 42).tables == sample.tables
    assert cm.generate(1, 43).tables["ratings"] != sample.tables["ratings"]


def test_every_row_has_exactly_the_columns_of_its_table(sample: cm.Dataset) -> None:
    for table in cm.TABLES:
        widths = {len(row) for row in sample.tables[table]}
        assert widths == {len(cm.COLUMNS[table])}, table


def test_keys_are_unique_and_references_resolve(sample: cm.Dataset) -> None:
    customers = {c["customerNumber"] for c in rows_as_dicts(sample, "customers")}
    products = {p["productCode"] for p in rows_as_dicts(sample, "products")}
    employees = {e["employeeNumber"] for e in rows_as_dicts(sample, "employees")}
    orders = {o["orderNumber"]: o["customerNumber"] for o in rows_as_dicts(sample, "orders")}
    assert len(customers) == 122 and len(products) == 110 and len(orders) == 326
    details = rows_as_dicts(sample, "orderdetails")
    assert len({(d["orderNumber"], d["productCode"]) for d in details}) == len(details)
    assert all(d["productCode"] in products and d["orderNumber"] in orders for d in details)
    assert set(orders.values()) <= customers
    reps = {c["salesRepEmployeeNumber"] for c in rows_as_dicts(sample, "customers")} - {None}
    assert reps <= employees
    payments = rows_as_dicts(sample, "payments")
    assert len({(p["customerNumber"], p["checkNumber"]) for p in payments}) == len(payments)
    assert all(len(str(p["productCode"])) <= 15 for p in rows_as_dicts(sample, "products"))


def test_product_codes_carry_their_scale_like_the_sample(sample: cm.Dataset) -> None:
    for product in rows_as_dicts(sample, "products"):
        prefix = "S" + str(product["productScale"]).split(":")[1] + "_"
        assert str(product["productCode"]).startswith(prefix), product
        assert product["productScale"] in {"1:10", "1:12", "1:18", "1:24", "1:32", "1:50", "1:700", "1:72"}
    assert {p["productLine"] for p in rows_as_dicts(sample, "products")} == set(cm.PRODUCT_LINES)


def test_each_customer_rates_each_distinct_product_they_ordered_exactly_once(sample: cm.Dataset) -> None:
    order_customer = {o["orderNumber"]: o["customerNumber"] for o in rows_as_dicts(sample, "orders")}
    ordered = {(order_customer[d["orderNumber"]], d["productCode"]) for d in rows_as_dicts(sample, "orderdetails")}
    ratings = rows_as_dicts(sample, "ratings")
    rated = [(r["customerNumber"], r["productCode"]) for r in ratings]
    assert len(rated) == len(set(rated))
    assert set(rated) == ordered
    assert {r["productRating"] for r in ratings} == {1, 2, 3, 4, 5}


def test_nulls_appear_where_the_schema_allows_them(sample: cm.Dataset) -> None:
    customers = rows_as_dicts(sample, "customers")
    for column in ("addressLine2", "state", "postalCode", "salesRepEmployeeNumber", "creditLimit"):
        assert any(c[column] is None for c in customers), column
        assert any(c[column] is not None for c in customers), column
    assert any(o["shippedDate"] is None for o in rows_as_dicts(sample, "orders"))


def test_ratings_follow_region_and_product_line_preferences() -> None:
    # Averaged over a larger sample, the hidden preference shows: North America rates Classic Cars above Ships, the
    # Nordics rate Ships above Classic Cars. A model trained on country and product line can learn this.
    data = cm.generate(5, 42)
    region = {p.country: p.region for p in cm.PLACES}
    customers = {c[0]: region[c[10]] for c in data.tables["customers"]}
    lines = {p[0]: p[2] for p in data.tables["products"]}
    by_group: dict[tuple[str, str], list[int]] = defaultdict(list)
    for customer, code, rating in data.tables["ratings"]:
        by_group[(customers[customer], lines[code])].append(rating)

    def mean(region_name: str, line: str) -> float:
        return statistics.mean(by_group[(region_name, line)])

    assert mean("north_america", "Classic Cars") > mean("north_america", "Ships") + 1.0
    assert mean("nordics", "Ships") > mean("nordics", "Classic Cars") + 1.0
    assert mean("western_europe", "Vintage Cars") > mean("western_europe", "Trucks and Buses") + 1.0


@pytest.mark.parametrize(("scale", "seed", "message"), [
    (0, 1, "scale must be a whole number from 1 to 1000 (got 0)"),
    (1001, 1, "scale must be a whole number from 1 to 1000 (got 1001)"),
    (1, -1, "seed must be a whole number >= 0 (got -1)"),
])
def test_bad_arguments_are_refused_with_what_is_allowed(scale: int, seed: int, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        cm.generate(scale, seed)
    assert str(refused.value).startswith(message)


def test_the_ddl_declares_every_column_the_rows_carry() -> None:
    for table in cm.TABLES:
        for column in cm.COLUMNS[table]:
            assert f"`{column}`" in cm.DDL[table], (table, column)


def test_the_seeders_package_carries_every_module_of_the_classicmodels_package() -> None:
    # The generator is a package of modules: a function zip without one of them fails on import, only on Lambda.
    modules = {path.name for path in Path(cm.__file__).parent.glob("*.py")}
    with zipfile.ZipFile(BytesIO(packaging.function_zip_bytes("seeder"))) as archive:
        names = set(archive.namelist())
    assert {"__init__.py", "generator.py", "schema.py", "writer.py"} <= modules
    assert {f"recsys/classicmodels/{name}" for name in modules} <= names
    assert "seeder.py" in names
