"""Seeding a real MariaDB: the public sample's schema exactly, the generator's rows, swapped in all at once, and a
failed load that leaves the previous tables untouched."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from harness.emulator import services
from harness.workflows import seed as seeding
from harness.workflows.seed import classicmodels as cm

DUMP_EXCERPT = Path(__file__).resolve().parents[1] / "fixtures" / "mysqlsampledatabase-excerpt.sql"
# The columns of the public classicmodels sample (and the lab's ratings) as MariaDB reports them, written out here
# independently of the DDL under test.
EXPECTED_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "customers": [
        ("customerNumber", "int(11)", "NO"), ("customerName", "varchar(50)", "NO"),
        ("contactLastName", "varchar(50)", "NO"), ("contactFirstName", "varchar(50)", "NO"),
        ("phone", "varchar(50)", "NO"), ("addressLine1", "varchar(50)", "NO"), ("addressLine2", "varchar(50)", "YES"),
        ("city", "varchar(50)", "NO"), ("state", "varchar(50)", "YES"), ("postalCode", "varchar(15)", "YES"),
        ("country", "varchar(50)", "NO"), ("salesRepEmployeeNumber", "int(11)", "YES"),
        ("creditLimit", "decimal(10,2)", "YES"),
    ],
    "products": [
        ("productCode", "varchar(15)", "NO"), ("productName", "varchar(70)", "NO"),
        ("productLine", "varchar(50)", "NO"), ("productScale", "varchar(10)", "NO"),
        ("productVendor", "varchar(50)", "NO"), ("productDescription", "text", "NO"),
        ("quantityInStock", "smallint(6)", "NO"), ("buyPrice", "decimal(10,2)", "NO"), ("MSRP", "decimal(10,2)", "NO"),
    ],
    "productlines": [
        ("productLine", "varchar(50)", "NO"), ("textDescription", "varchar(4000)", "YES"),
        ("htmlDescription", "mediumtext", "YES"), ("image", "mediumblob", "YES"),
    ],
    "orders": [
        ("orderNumber", "int(11)", "NO"), ("orderDate", "date", "NO"), ("requiredDate", "date", "NO"),
        ("shippedDate", "date", "YES"), ("status", "varchar(15)", "NO"), ("comments", "text", "YES"),
        ("customerNumber", "int(11)", "NO"),
    ],
    "orderdetails": [
        ("orderNumber", "int(11)", "NO"), ("productCode", "varchar(15)", "NO"), ("quantityOrdered", "int(11)", "NO"),
        ("priceEach", "decimal(10,2)", "NO"), ("orderLineNumber", "smallint(6)", "NO"),
    ],
    "employees": [
        ("employeeNumber", "int(11)", "NO"), ("lastName", "varchar(50)", "NO"), ("firstName", "varchar(50)", "NO"),
        ("extension", "varchar(10)", "NO"), ("email", "varchar(100)", "NO"), ("officeCode", "varchar(10)", "NO"),
        ("reportsTo", "int(11)", "YES"), ("jobTitle", "varchar(50)", "NO"),
    ],
    "offices": [
        ("officeCode", "varchar(10)", "NO"), ("city", "varchar(50)", "NO"), ("phone", "varchar(50)", "NO"),
        ("addressLine1", "varchar(50)", "NO"), ("addressLine2", "varchar(50)", "YES"), ("state", "varchar(50)", "YES"),
        ("country", "varchar(50)", "NO"), ("postalCode", "varchar(15)", "NO"), ("territory", "varchar(10)", "NO"),
    ],
    "payments": [
        ("customerNumber", "int(11)", "NO"), ("checkNumber", "varchar(50)", "NO"), ("paymentDate", "date", "NO"),
        ("amount", "decimal(10,2)", "NO"),
    ],
    "ratings": [
        ("customerNumber", "int(11)", "NO"), ("productCode", "varchar(15)", "NO"), ("productRating", "int(11)", "NO"),
    ],
}
EXPECTED_PRIMARY_KEYS = {
    "customers": ["customerNumber"], "products": ["productCode"], "productlines": ["productLine"],
    "orders": ["orderNumber"], "orderdetails": ["orderNumber", "productCode"], "employees": ["employeeNumber"],
    "offices": ["officeCode"], "payments": ["customerNumber", "checkNumber"],
    "ratings": ["customerNumber", "productCode"],
}


def target_for(service: services.MariaDBService, database: str) -> seeding.SeedTarget:
    return seeding.SeedTarget(host=service.host, port=service.port, user=service.user, password=service.password,
                              database=database, external=False)


def query(service: services.MariaDBService, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = service.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args or None)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def seeded(mariadb_service: services.MariaDBService) -> Iterator[str]:
    database = "seed_schema_check"
    seeding.seed_target(target_for(mariadb_service, database), scale=1, seed=42)
    yield database
    query(mariadb_service, f"DROP DATABASE IF EXISTS {database}")


def test_the_tables_have_exactly_the_sample_schema(mariadb_service: services.MariaDBService, seeded: str) -> None:
    tables = {row[0] for row in query(mariadb_service, "SELECT table_name FROM information_schema.tables "
                                                       "WHERE table_schema = %s", seeded)}
    assert tables == set(EXPECTED_COLUMNS)
    for table, expected in EXPECTED_COLUMNS.items():
        columns = query(mariadb_service, "SELECT column_name, column_type, is_nullable FROM information_schema.columns "
                                         "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                        seeded, table)
        assert columns == expected, table
        key = query(mariadb_service, "SELECT column_name FROM information_schema.key_column_usage "
                                     "WHERE table_schema = %s AND table_name = %s AND constraint_name = 'PRIMARY' "
                                     "ORDER BY ordinal_position", seeded, table)
        assert [k[0] for k in key] == EXPECTED_PRIMARY_KEYS[table], table


def test_the_counts_at_scale_one_are_the_samples(mariadb_service: services.MariaDBService, seeded: str) -> None:
    expected = cm.generate(1, 42).counts()
    for table, count in expected.items():
        assert query(mariadb_service, f"SELECT COUNT(*) FROM {seeded}.{table}") == [(count,)], table
    assert query(mariadb_service, f"SELECT COUNT(*) FROM {seeded}.customers") == [(122,)]
    assert query(mariadb_service, f"SELECT COUNT(*) FROM {seeded}.products") == [(110,)]


def test_ratings_cover_exactly_the_ordered_products_with_one_to_five_stars(
    mariadb_service: services.MariaDBService, seeded: str,
) -> None:
    not_ordered = query(mariadb_service, f"""
        SELECT COUNT(*) FROM {seeded}.ratings r WHERE NOT EXISTS (
            SELECT 1 FROM {seeded}.orders o JOIN {seeded}.orderdetails d ON d.orderNumber = o.orderNumber
            WHERE o.customerNumber = r.customerNumber AND d.productCode = r.productCode)""")
    not_rated = query(mariadb_service, f"""
        SELECT COUNT(*) FROM (SELECT DISTINCT o.customerNumber, d.productCode FROM {seeded}.orders o
            JOIN {seeded}.orderdetails d ON d.orderNumber = o.orderNumber) p
        LEFT JOIN {seeded}.ratings r ON r.customerNumber = p.customerNumber AND r.productCode = p.productCode
        WHERE r.productRating IS NULL""")
    assert not_ordered == [(0,)]
    assert not_rated == [(0,)]
    assert query(mariadb_service, f"SELECT MIN(productRating), MAX(productRating) FROM {seeded}.ratings") == [(1, 5)]


def test_nullable_customer_columns_hold_nulls(mariadb_service: services.MariaDBService, seeded: str) -> None:
    for column in ("addressLine2", "state", "postalCode", "salesRepEmployeeNumber", "creditLimit"):
        [(nulls,)] = query(mariadb_service, f"SELECT COUNT(*) FROM {seeded}.customers WHERE {column} IS NULL")
        assert nulls > 0, column


def test_the_glue_jobs_join_yields_one_row_per_rating(mariadb_service: services.MariaDBService, seeded: str) -> None:
    [(joined,)] = query(mariadb_service, f"""
        SELECT COUNT(*) FROM {seeded}.ratings r
        JOIN {seeded}.customers c ON c.customerNumber = r.customerNumber
        JOIN {seeded}.products p ON p.productCode = r.productCode""")
    [(ratings,)] = query(mariadb_service, f"SELECT COUNT(*) FROM {seeded}.ratings")
    assert joined == ratings


def test_reseeding_replaces_every_table_and_leaves_no_helper_databases(
    mariadb_service: services.MariaDBService,
) -> None:
    database = "seed_reseed_check"
    target = target_for(mariadb_service, database)
    seeding.seed_target(target, scale=1, seed=1)
    second = seeding.seed_target(target, scale=2, seed=2)

    assert query(mariadb_service, f"SELECT COUNT(*) FROM {database}.customers") == [(244,)]
    assert query(mariadb_service, f"SELECT COUNT(*) FROM {database}.ratings") == [(second.counts["ratings"],)]
    first_rating = cm.generate(2, 2).tables["ratings"][0]
    assert query(mariadb_service, f"SELECT customerNumber, productCode, productRating FROM {database}.ratings "
                                  "ORDER BY customerNumber, productCode LIMIT 1") == [first_rating]
    helpers = query(mariadb_service, "SHOW DATABASES LIKE %s", f"{database}__%")
    assert helpers == []
    # foreign keys point at the swapped-in tables of the same database, not at a helper database
    references = query(mariadb_service, "SELECT DISTINCT unique_constraint_schema FROM "
                                        "information_schema.referential_constraints WHERE constraint_schema = %s",
                       database)
    assert references == [(database,)]
    query(mariadb_service, f"DROP DATABASE {database}")


def test_a_failed_load_leaves_the_previous_tables_untouched(mariadb_service: services.MariaDBService) -> None:
    import pymysql

    database = "seed_failure_check"
    seeding.seed_target(target_for(mariadb_service, database), scale=1, seed=5)
    before = query(mariadb_service, f"SELECT COUNT(*), SUM(productRating) FROM {database}.ratings")

    good = cm.generate(1, 6)
    ratings = list(good.tables["ratings"])
    ratings[-1] = (*ratings[-1][:2], 9)  # out of the 1..5 range: the CHECK constraint refuses it, late in the load
    broken = dataclasses.replace(good, tables={**good.tables, "ratings": ratings})
    conn = mariadb_service.connect()
    try:
        with pytest.raises(pymysql.MySQLError):
            cm.load(conn, database, broken)
    finally:
        conn.close()

    assert query(mariadb_service, f"SELECT COUNT(*), SUM(productRating) FROM {database}.ratings") == before
    assert query(mariadb_service, "SHOW DATABASES LIKE %s", f"{database}__%") == []
    query(mariadb_service, f"DROP DATABASE {database}")


def test_an_unreachable_source_is_a_clear_error_not_a_traceback() -> None:
    target = seeding.SeedTarget(host="127.0.0.1", port=services.free_port(), user="admin", password="x",
                                database="classicmodels", external=False)
    with pytest.raises(seeding.SeedError, match=r"cannot connect to admin@127\.0\.0\.1:\d+/classicmodels"):
        seeding.seed_target(target)


def test_the_seeder_lambda_seeds_from_its_environment_and_secret(
    mariadb_service: services.MariaDBService, moto_service: services.MotoService, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    import boto3
    import seeder  # lambda_src/seeder.py, importable as the Lambda runtime sees it (tests/conftest.py)

    for name, value in {"AWS_ENDPOINT_URL": moto_service.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    secret = boto3.client("secretsmanager").create_secret(
        Name="seeder-test-source", SecretString=json.dumps({
            "engine": "mysql", "host": mariadb_service.host, "port": mariadb_service.port, "dbname": "seeder_check",
            "username": mariadb_service.user, "password": mariadb_service.password}))
    for name, value in {"SOURCE_DB_HOST": mariadb_service.host, "SOURCE_DB_PORT": str(mariadb_service.port),
                        "SOURCE_DB_NAME": "seeder_check", "SOURCE_DB_USER": mariadb_service.user,
                        "SOURCE_DB_SECRET_ARN": secret["ARN"]}.items():
        monkeypatch.setenv(name, value)

    result = seeder.handler({"action": "seed", "scale": 1, "seed": 3}, None)

    assert result["counts"] == cm.generate(1, 3).counts()
    assert query(mariadb_service, "SELECT COUNT(*) FROM seeder_check.ratings") == [(result["counts"]["ratings"],)]
    with pytest.raises(ValueError, match="only 'action', 'scale', 'seed', 'classicmodels_dump' are accepted"):
        seeder.handler({"scael": 2}, None)

    # the lab's own dump, read from S3: its real rows replace the generated ones
    boto3.client("s3").create_bucket(Bucket="seeder-test-artifacts")
    boto3.client("s3").put_object(Bucket="seeder-test-artifacts", Key="seed/mysqlsampledatabase.sql",
                                  Body=DUMP_EXCERPT.read_bytes())
    result = seeder.handler({"action": "seed", "seed": 3, "classicmodels_dump": {
        "bucket": "seeder-test-artifacts", "key": "seed/mysqlsampledatabase.sql"}}, None)

    assert result["counts"] == cm.dataset_from_dump(DUMP_EXCERPT.read_bytes(), 3).counts()
    assert query(mariadb_service, "SELECT customerNumber, customerName FROM seeder_check.customers "
                                  "WHERE country LIKE 'Norway%'") == [(167, "Herkku Gifts")]
    query(mariadb_service, "DROP DATABASE seeder_check")


def test_the_dumps_rows_load_into_the_lab_schema_as_they_are(mariadb_service: services.MariaDBService) -> None:
    database = "seed_dump_check"
    dataset = cm.dataset_from_dump(DUMP_EXCERPT.read_bytes(), 42)
    conn = mariadb_service.connect()
    try:
        assert cm.load(conn, database, dataset) == dataset.counts()
    finally:
        conn.close()

    assert query(mariadb_service, f"SELECT customerName, country, creditLimit FROM {database}.customers "
                                  "WHERE customerNumber IN (167, 172) ORDER BY customerNumber") == [
        ("Herkku Gifts", "Norway  ", Decimal("96800.00")), ("La Corne D'abondance, Co.", "France", Decimal("84300.00"))]
    [(description,)] = query(mariadb_service, f"SELECT productDescription FROM {database}.products "
                                              "WHERE productCode = 'S72_3212'")
    assert "Includes a stand.\r\nMany extras" in description
    assert query(mariadb_service, f"SELECT shippedDate, status FROM {database}.orders WHERE orderNumber = 10421") == [
        (None, "In Process")]
    # the Glue job's join: one row per rating, every rating a real ordered pair
    [(joined, ratings)] = query(mariadb_service, f"""
        SELECT (SELECT COUNT(*) FROM {database}.ratings r
                JOIN {database}.customers c ON c.customerNumber = r.customerNumber
                JOIN {database}.products p ON p.productCode = r.productCode),
               (SELECT COUNT(*) FROM {database}.ratings)""")
    assert joined == ratings == 22
    assert query(mariadb_service, f"""
        SELECT COUNT(*) FROM {database}.ratings r WHERE NOT EXISTS (
            SELECT 1 FROM {database}.orders o JOIN {database}.orderdetails d ON d.orderNumber = o.orderNumber
            WHERE o.customerNumber = r.customerNumber AND d.productCode = r.productCode)""") == [(0,)]
    query(mariadb_service, f"DROP DATABASE {database}")


@pytest.fixture
def restores_default_source(local_stack: Any) -> Iterator[None]:
    """Other tests on the shared stack expect the data `up` seeded (scale 1, the default seed): put it back."""
    yield
    local_stack.run("seed", "--scale", "1", "--seed", str(cm.DEFAULT_SEED))


def test_harness_seed_writes_the_stacks_source_database(local_stack: Any, restores_default_source: None) -> None:
    local_stack.run("seed", "--scale", "1", "--seed", "9")
    conn = pymysql_connect_source(local_stack)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM customers")
            assert cur.fetchone() == (122,)
            cur.execute("SELECT COUNT(*) FROM ratings")
            assert cur.fetchone() == (cm.generate(1, 9).counts()["ratings"],)
            cur.execute("SELECT productCode FROM products ORDER BY productCode LIMIT 1")
            assert cur.fetchone() == (min(p[0] for p in cm.generate(1, 9).tables["products"]),)
    finally:
        conn.close()


def test_harness_seed_loads_the_lab_dump_through_the_stacks_seeder(local_stack: Any,
                                                                   restores_default_source: None) -> None:
    result = local_stack.run("seed", "--classicmodels-dump", str(DUMP_EXCERPT), "--seed", "4", "--json")

    summary = json.loads(result.stdout)
    expected = cm.dataset_from_dump(DUMP_EXCERPT.read_bytes(), 4)
    bucket = local_stack.output("artifacts_bucket_id")
    assert summary["counts"] == expected.counts()
    assert summary["classicmodels_dump"] == f"s3://{bucket}/seed/mysqlsampledatabase.sql"
    assert summary["target"] == f"classicmodels through {local_stack.output('source_seeder_function_name')}"
    uploaded = local_stack.client("s3").get_object(Bucket=bucket, Key="seed/mysqlsampledatabase.sql")["Body"].read()
    assert uploaded == DUMP_EXCERPT.read_bytes()
    conn = pymysql_connect_source(local_stack)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT customerNumber, customerName FROM customers ORDER BY customerNumber")
            assert cur.fetchall() == tuple((row[0], row[1]) for row in expected.tables["customers"])
            cur.execute("SELECT customerNumber, productCode, productRating FROM ratings "
                        "ORDER BY customerNumber, productCode")
            assert cur.fetchall() == tuple(expected.tables["ratings"])
    finally:
        conn.close()


def test_harness_seed_refuses_a_file_that_is_not_the_dump_before_any_work(local_stack: Any, tmp_path: Any) -> None:
    archive = tmp_path / "mysqlsampledatabase.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    result = local_stack.run("seed", "--classicmodels-dump", str(archive), check=False)
    assert (result.returncode, result.stderr) == (
        2, f"error: {archive} is a zip archive: unzip it and pass the mysqlsampledatabase.sql inside\n")


def test_harness_seed_refuses_a_bad_scale_with_a_message_and_changes_nothing(local_stack: Any) -> None:
    conn = pymysql_connect_source(local_stack)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(productRating) FROM ratings")
        before = cur.fetchone()
    conn.close()

    result = local_stack.run("seed", "--scale", "0", check=False)

    assert result.returncode == 2
    assert result.stderr.startswith("error: scale must be a whole number from 1 to 1000 (got 0)")
    assert "Traceback" not in result.stdout + result.stderr
    conn = pymysql_connect_source(local_stack)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), SUM(productRating) FROM ratings")
        assert cur.fetchone() == before
    conn.close()


def pymysql_connect_source(local_stack: Any) -> Any:
    import pymysql

    return pymysql.connect(host=local_stack.output("source_db_host"), port=int(local_stack.output("source_db_port")),
                           user=local_stack.output("source_db_username"),
                           password=local_stack.output("source_db_password"),
                           database=local_stack.output("source_db_name"), connect_timeout=5)
