"""Reading the public classicmodels dump (`mysqlsampledatabase.sql`): its real rows with the lab's types, ratings over
its real orders, and one clear line for a file that is not the dump.

The fixture is an excerpt of the published file, byte for byte (tests/fixtures/mysqlsampledatabase-excerpt.sql)."""

from __future__ import annotations

import gzip
import io
import statistics
import zipfile
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from recsys import classicmodels as cm
from recsys.classicmodels import dump

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mysqlsampledatabase-excerpt.sql"


@pytest.fixture(scope="module")
def raw() -> bytes:
    return FIXTURE.read_bytes()


@pytest.fixture(scope="module")
def text(raw: bytes) -> str:
    return raw.decode("utf-8")


def row_of(tables: dict[cm.TableName, list[cm.Row]], table: cm.TableName, key: Any) -> dict[str, Any]:
    [row] = [r for r in tables[table] if r[0] == key]
    return dict(zip(cm.COLUMNS[table], row, strict=True))


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def refused(data: bytes | str, source: str = "lab.sql") -> str:
    with pytest.raises(dump.DumpError) as caught:
        dump.parse_dump(data, source=source)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(source)
    return message


# --- the real rows ------------------------------------------------------------------------------------------------
def test_the_excerpt_gives_its_rows_per_table(raw: bytes) -> None:
    tables = dump.parse_dump(raw)
    assert {table: len(rows) for table, rows in tables.items()} == {
        "productlines": 7, "products": 19, "offices": 7, "employees": 11, "customers": 7, "payments": 12, "orders": 8,
        "orderdetails": 22}


def test_values_get_the_lab_schemas_types_and_keep_the_dumps_text(raw: bytes) -> None:
    tables = dump.parse_dump(raw)
    assert row_of(tables, "customers", 103) == {
        "customerNumber": 103, "customerName": "Atelier graphique", "contactLastName": "Schmitt",
        "contactFirstName": "Carine ", "phone": "40.32.2555", "addressLine1": "54, rue Royale", "addressLine2": None,
        "city": "Nantes", "state": None, "postalCode": "44000", "country": "France", "salesRepEmployeeNumber": 1370,
        "creditLimit": Decimal("21000.00")}
    assert row_of(tables, "customers", 172)["customerName"] == "La Corne D'abondance, Co."  # \' in the dump
    assert row_of(tables, "customers", 167)["country"] == "Norway  "  # sic: the sample's padding is kept
    assert row_of(tables, "customers", 125)["salesRepEmployeeNumber"] is None
    assert row_of(tables, "orders", 10421) == {
        "orderNumber": 10421, "orderDate": date(2005, 5, 29), "requiredDate": date(2005, 6, 6), "shippedDate": None,
        "status": "In Process", "comments": "Custom shipping instructions were sent to warehouse",
        "customerNumber": 124}
    yacht = row_of(tables, "products", "S72_3212")
    assert yacht["productDescription"].startswith("Measures 38 inches Long x 33 3/4 inches High. Includes a stand.\r\n"
                                                  "Many extras")  # \r\n escapes become the characters
    assert (yacht["quantityInStock"], yacht["buyPrice"], yacht["MSRP"]) == (414, Decimal("33.30"), Decimal("54.60"))
    assert row_of(tables, "products", "S72_1253")["productDescription"].startswith('10" Wingspan')  # \"
    assert row_of(tables, "products", "S32_3207")["productName"] == "1950's Chicago Surface Lines Streetcar"
    assert row_of(tables, "productlines", "Ships")["htmlDescription"] is None
    assert [r for r in tables["orderdetails"] if r[0] == 10421] == [
        (10421, "S18_2795", 35, Decimal("167.06"), 1), (10421, "S24_2022", 40, Decimal("44.80"), 2)]
    assert row_of(tables, "employees", 1002)["reportsTo"] is None


def test_line_ends_and_statement_forms_other_tools_write_give_the_same_rows(raw: bytes, text: str) -> None:
    expected = dump.parse_dump(raw)
    lf_only = text.replace("\r\r\n", "\n\n").replace("\r\n", "\n")  # copies saved by editors
    assert dump.parse_dump(lf_only) == expected
    # mysqldump's form: upper case, no column list, the database named, '' for a quote
    mysqldump = (text.replace("insert  into `customers`(`customerNumber`,`customerName`,`contactLastName`,"
                              "`contactFirstName`,`phone`,`addressLine1`,`addressLine2`,`city`,`state`,`postalCode`,"
                              "`country`,`salesRepEmployeeNumber`,`creditLimit`) values",
                              "INSERT INTO `classicmodels`.`customers` VALUES")
                 .replace("'La Corne D\\'abondance, Co.'", "'La Corne D''abondance, Co.'"))
    assert "INSERT INTO `classicmodels`.`customers` VALUES" in mysqldump
    assert dump.parse_dump(mysqldump) == expected


def test_columns_listed_in_another_order_land_in_the_lab_schemas_order(raw: bytes) -> None:
    generated = cm.generate(1, 3)
    reordered = as_dump(generated, reverse_columns=True)
    assert dump.parse_dump(reordered) == {t: generated.tables[t] for t in cm.SAMPLE_TABLES}


def test_a_dump_written_from_any_rows_reads_back_as_those_rows() -> None:
    generated = cm.generate(1, 11)
    assert dump.parse_dump(as_dump(generated)) == {t: generated.tables[t] for t in cm.SAMPLE_TABLES}


# --- ratings over the real orders ---------------------------------------------------------------------------------
def test_ratings_cover_exactly_the_distinct_ordered_pairs_one_to_five_stars(raw: bytes) -> None:
    dataset = dump.dataset_from_dump(raw, 42)
    tables = dataset.tables
    customer_of = {order[0]: order[6] for order in tables["orders"]}
    ordered = {(customer_of[line[0]], line[1]) for line in tables["orderdetails"]}
    ratings = tables["ratings"]
    assert [(c, p) for c, p, _ in ratings] == sorted(ordered)
    assert len(ratings) == 22 and all(1 <= stars <= 5 for _, _, stars in ratings)
    assert 125 not in {c for c, _, _ in ratings}  # the prospect ordered nothing
    assert dataset.counts()["ratings"] == 22 and dataset.scale == 1 and dataset.seed == 42


def test_ratings_are_the_same_for_a_seed_and_differ_for_another(raw: bytes) -> None:
    first = dump.dataset_from_dump(raw, 5).tables["ratings"]
    assert dump.dataset_from_dump(raw, 5).tables["ratings"] == first
    assert dump.dataset_from_dump(raw, 6).tables["ratings"] != first
    assert dump.dataset_from_dump(raw).tables["ratings"] == dump.dataset_from_dump(raw, cm.DEFAULT_SEED).tables[
        "ratings"]


def test_ratings_follow_the_regions_taste_for_product_lines() -> None:
    # The excerpt is too small for statistics: a dump of the generated sample carries the same kind of rows.
    tables = dump.parse_dump(as_dump(cm.generate(1, 42)))
    ratings = dump.dump_ratings(tables, seed=1)
    country = {row[0]: row[10] for row in tables["customers"]}
    line = {row[0]: row[2] for row in tables["products"]}
    by_affinity: dict[str, list[int]] = defaultdict(list)
    for customer, code, stars in ratings:
        affinity = cm.REGION_LINE_AFFINITY[cm.COUNTRY_REGION[country[customer]]][line[code]]
        by_affinity["liked" if affinity >= 0.8 else "disliked" if affinity <= -0.5 else "neutral"].append(stars)
    assert statistics.mean(by_affinity["liked"]) - statistics.mean(by_affinity["disliked"]) > 1.0


def test_a_padded_country_is_rated_as_the_country(text: str) -> None:
    # 'Norway  ' (sic) in the sample: its customers get the Nordic taste, exactly as if it were written 'Norway'. (The
    # excerpt's Norwegian customer bought only Vintage Cars, which the Nordics neither like nor dislike: the generated
    # sample's Norwegians show it.)
    assert "'Norway  '" in text
    sample = as_dump(cm.generate(1, 42))

    def ratings(country: str) -> list[cm.Row]:
        return dump.dataset_from_dump(sample.replace("'Norway'", country), 8).tables["ratings"]

    assert ratings("'Norway  '") == ratings("'Norway'")
    assert ratings("'Atlantis'") != ratings("'Norway'")  # a country without a region is liked neutrally


def test_every_country_of_the_sample_has_a_taste_region(raw: bytes) -> None:
    countries = {row[10].strip() for row in dump.parse_dump(raw)["customers"]}
    assert countries <= set(cm.COUNTRY_REGION)
    assert cm.COUNTRY_REGION["Norway"] == "nordics" and cm.COUNTRY_REGION["USA"] == "north_america"


# --- not the dump: one line, what is wrong, what was expected -----------------------------------------------------
def test_archives_are_named_with_what_to_do(raw: bytes) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("mysqlsampledatabase.sql", raw)
    assert refused(archive.getvalue(), "mysqlsampledatabase.zip") == (
        "mysqlsampledatabase.zip is a zip archive: unzip it and pass the mysqlsampledatabase.sql inside")
    assert refused(gzip.compress(raw), "dump.sql.gz") == (
        "dump.sql.gz is gzip-compressed: gunzip it and pass the .sql file")


def test_binary_or_unrelated_sql_is_not_the_dump() -> None:
    assert refused(b"-- dump\n\xff\xfe").startswith("lab.sql is not UTF-8 text (byte 8): expected "
                                                             "mysqlsampledatabase.sql from mysqltutorial.org")
    assert refused("CREATE TABLE t (id int);\nINSERT INTO t VALUES (1),(2);\n") == (
        "lab.sql holds no INSERT into any classicmodels table: expected mysqlsampledatabase.sql from mysqltutorial.org "
        "(the classicmodels sample's CREATE TABLE and INSERT statements)")
    assert refused("").startswith("lab.sql holds no INSERT into any classicmodels table")


def test_a_dump_missing_tables_names_them(text: str) -> None:
    start = text.index("insert  into `payments`")
    without_payments = text[:start] + text[text.index(";", start) + 1:]
    assert refused(without_payments) == (
        "lab.sql has no rows for `payments`: expected the whole mysqlsampledatabase.sql from mysqltutorial.org "
        "(all eight classicmodels tables)")


@pytest.mark.parametrize(("needle", "replacement", "message"), [
    ("(10421,'2005-05-29'", "(10421,'2005-05-29','2005-06-06'",
     "a row of `orders` has 8 values for 7 columns"),
    ("(10421,'2005-05-29','2005-06-06',NULL,'In Process'", "(10421,'2005-05-29','2005-06-06',NULL,NULL",
     "`orders`.status is NULL, but the column is NOT NULL"),
    ("(10421,'2005-05-29'", "(10421,'29/05/2005'", "`orders`.orderDate holds '29/05/2005', not a date (YYYY-MM-DD)"),
    ("(10421,'2005-05-29'", "('x10421','2005-05-29'", "`orders`.orderNumber holds 'x10421', not a whole number"),
    ("(10421,'2005-05-29'", "(10123,'2005-05-29'", "`orders` holds 10123 twice (primary key orderNumber)"),
    ("'Custom shipping instructions were sent to warehouse',124)", "'Custom',999)",
     "`orders`.customerNumber 999 names no row of `customers` (customerNumber)"),
    ("(10421,'2005-05-29'", "(10421,@when", "a value of `orders` that is not a quoted string, a number or NULL: '@'"),
])
def test_a_broken_row_is_named_by_its_line(text: str, needle: str, replacement: str, message: str) -> None:
    line = line_of(text, needle)
    assert refused(text.replace(needle, replacement, 1)) == (
        f"lab.sql: line {line}: {message}: expected mysqlsampledatabase.sql from mysqltutorial.org (the classicmodels "
        "sample's CREATE TABLE and INSERT statements)")


def test_foreign_columns_and_unclosed_text_are_named(text: str) -> None:
    renamed = text.replace("`territory`) values", "`region`) values", 1)
    first_office = line_of(text, "('1','San Francisco'")
    assert (f"line {first_office}: the INSERT into `offices` names other columns than the sample's (unknown region; "
            "missing territory)") in refused(renamed)
    cut = text[:text.index("'Custom shipping") + 10]
    assert f"line {line_of(text, 'Custom shipping')}: quoted text that never ends" in refused(cut)


def test_a_file_far_bigger_than_the_dump_is_refused_before_it_is_read() -> None:
    with pytest.raises(dump.DumpError, match=r"^s3://b/k is 70,000,000 bytes, far more than the classicmodels dump"):
        dump.check_size(70_000_000, "s3://b/k")
    dump.check_size(dump.MAX_DUMP_BYTES, "s3://b/k")


# --- a dump written from rows (the round trip's other half) -------------------------------------------------------
def sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal | date):
        return f"'{value}'"
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\r", "\\r").replace("\n", "\\n")
    return f"'{escaped}'"


def as_dump(dataset: cm.Dataset, *, reverse_columns: bool = False) -> str:
    """The rows as the published dump writes them: SQLyog's `insert  into` with a column list, CR CR LF between rows."""
    parts = ["/*!40101 SET NAMES utf8 */;\r\n"]
    for table in cm.SAMPLE_TABLES:
        order = list(range(len(cm.COLUMNS[table])))[::-1 if reverse_columns else 1]
        columns = ",".join(f"`{cm.COLUMNS[table][i]}`" for i in order)
        rows = ",\r\r\n".join("(" + ",".join(sql_literal(row[i]) for i in order) + ")"
                              for row in dataset.tables[table])
        parts.append(f"insert  into `{table}`({columns}) values \r\r\n{rows};\r\n")
    return "".join(parts)
