"""Fixtures for the Glue job's tests: the script loaded from its file, local Spark, an in-process AWS emulator."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

SCRIPT = Path(__file__).resolve().parents[3] / "glue_scripts" / "ratings_etl.py"


@pytest.fixture(scope="session")
def etl() -> ModuleType:
    if "ratings_etl" in sys.modules:
        return sys.modules["ratings_etl"]
    spec = importlib.util.spec_from_file_location("ratings_etl", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ratings_etl"] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """In-process moto: S3 with a data lake bucket, Glue with a catalog database."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        glue = boto3.client("glue", region_name="us-east-1")
        s3.create_bucket(Bucket="datalake")
        glue.create_database(DatabaseInput={"Name": "recsys_catalog"})
        yield {"s3": s3, "glue": glue, "bucket": "datalake", "database": "recsys_catalog"}
