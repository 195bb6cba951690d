"""Session fixtures for tests that need a real database or the AWS API emulator but not the whole local stack.

Each service starts once per test session on a free 127.0.0.1 port with its data in a temporary directory (never the
user's `.local/`, never a fixed port), so parallel test runs do not collide; it is stopped when the session ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The repository (for `harness`, `components`) and the Lambda source root (for `recsys`, as the Lambda runtime sees it).
for path in (ROOT, ROOT / "lambda_src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from harness.emulator import services  # noqa: E402


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One small local SparkSession for every test of the Glue script (UI off, one core, two shuffle partitions)."""
    from pyspark.sql import SparkSession  # imported here: most test sessions never start a JVM

    session = (
        SparkSession.builder.master("local[1]")
        .appName("recsys-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.PostgresService]:
    """A real PostgreSQL 18 with pgvector available (`create extension vector` works; the user is a superuser)."""
    base = tmp_path_factory.mktemp("postgres")
    service = services.start_postgres(base)
    yield service
    services.stop_postgres(service)


@pytest.fixture(scope="session")
def mariadb_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.MariaDBService]:
    """A real MariaDB; `user`/`password` is an admin that can create databases and users."""
    base = tmp_path_factory.mktemp("mariadb")
    service = services.start_mariadb(base)
    yield service
    services.stop_mariadb(service)


@pytest.fixture(scope="session")
def moto_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.MotoService]:
    """A moto server; use `moto_service.endpoint_url` as `endpoint_url` with any dummy credentials."""
    base = tmp_path_factory.mktemp("moto")
    service = services.start_moto(base)
    yield service
    services.stop_moto(service)
