"""The reference trainer on a small synthetic ETL output: it learns, is reproducible, its artifacts fit the contract."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from recsys.model import ServingModel
from recsys.vectordb import parse_embeddings

from harness.workflows.train import TrainConfig, TrainingDataError, read_ratings, train

CITIES = [("NYC", "USA"), ("Boston", "USA"), ("Nantes", "France"), ("Lyon", "France"), ("Madrid", "Spain")]
LINES = ["Classic Cars", "Motorcycles", "Planes", "Ships"]
SCALES = ["1:10", "1:18", "1:24"]
FAST = TrainConfig(epochs=25, patience=25)


def _write_etl_output(directory: Path, seed: int = 3, customers: int = 60, products: int = 40) -> None:
    """ETL-shaped Parquet partitioned by customerNumber; ratings follow a hidden taste the model can learn."""
    rng = np.random.default_rng(seed)
    product_rows = [
        {"productCode": f"S{p:02d}_{1000 + p}", "productLine": LINES[p % len(LINES)], "productScale": SCALES[p % 3],
         "quantityInStock": int(rng.integers(0, 9000)), "buyPrice": Decimal(f"{rng.uniform(10, 100):.2f}"),
         "MSRP": Decimal(f"{rng.uniform(50, 200):.2f}")}
        for p in range(products)
    ]
    records = []
    for c in range(customers):
        city, country = CITIES[c % len(CITIES)]
        credit = None if c % 11 == 0 else Decimal(f"{rng.uniform(0, 150000):.2f}")
        for product in rng.choice(products, size=20, replace=False):
            p = product_rows[int(product)]
            # Americans like cars, Europeans ships and planes; rich customers rate expensive items higher.
            likes = (country == "USA") == (p["productLine"] in ("Classic Cars", "Motorcycles"))
            rich = credit is not None and credit > 75000
            rating = 2 + 2 * likes + (1 if rich and float(p["MSRP"]) > 125 else 0)
            rating = int(np.clip(rating + rng.integers(-1, 2) * (rng.random() < 0.2), 1, 5))
            records.append({"customerNumber": 100 + c, "city": city, "state": None, "postalCode": None,
                            "country": country, "creditLimit": credit, **p, "productRating": rating})
    schema = pa.schema([
        ("customerNumber", pa.int32()), ("city", pa.string()), ("state", pa.string()), ("postalCode", pa.string()),
        ("country", pa.string()), ("creditLimit", pa.decimal128(10, 2)), ("productCode", pa.string()),
        ("productLine", pa.string()), ("productScale", pa.string()), ("quantityInStock", pa.int32()),
        ("buyPrice", pa.decimal128(10, 2)), ("MSRP", pa.decimal128(10, 2)), ("productRating", pa.int32()),
    ])
    table = pa.Table.from_pylist(records, schema=schema)
    ds.write_dataset(table, str(directory), format="parquet", partitioning=["customerNumber"],
                     partitioning_flavor="hive", existing_data_behavior="overwrite_or_ignore")


@pytest.fixture(scope="module")
def etl_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("etl") / "ratings-ml-training"
    _write_etl_output(directory)
    return directory


@pytest.fixture(scope="module")
def trained(etl_output: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("artifacts")
    summary = train(etl_output, out, FAST)
    return out, summary.as_dict()


def test_the_model_beats_the_mean_rating_baseline_on_held_out_rows(trained: tuple[Path, dict]) -> None:
    _, summary = trained
    assert summary["test_rows"] > 0
    assert summary["test_rmse"] < 0.8 * summary["baseline_rmse"], summary


def test_it_writes_the_lab_layout_plus_the_serving_bundle(trained: tuple[Path, dict]) -> None:
    out, summary = trained
    expected = {
        "embeddings/item_embeddings.csv", "embeddings/user_embeddings.csv", "model/best_model.pth",
        "scalers/item_ohe.pkl", "scalers/item_std_scaler.pkl", "scalers/user_ohe.pkl", "scalers/user_std_scaler.pkl",
        "serving/model.safetensors", "serving/preprocessing.json",
    }
    assert set(summary["files"]) == expected
    assert all((out / name).is_file() for name in expected)
    assert (summary["items"], summary["users"], summary["dim"]) == (40, 60, 32)


def test_embedding_csvs_pass_the_loaders_validation_with_product_codes_and_customer_numbers(
        trained: tuple[Path, dict]) -> None:
    out, _ = trained
    items = list(parse_embeddings((out / "embeddings/item_embeddings.csv").open("rb"), id_type="varchar", source="i"))
    users = list(parse_embeddings((out / "embeddings/user_embeddings.csv").open("rb"), id_type="int", source="u"))
    item_ids = [i for chunk in items for i in chunk.ids]
    user_ids = [i for chunk in users for i in chunk.ids]
    assert item_ids[0] == "S00_1000" and len(item_ids) == 40
    assert user_ids == list(range(100, 160))
    assert (out / "embeddings/item_embeddings.csv").read_text().splitlines()[0] == "id,embedding"


def test_the_serving_bundle_reproduces_the_published_embeddings(trained: tuple[Path, dict], etl_output: Path) -> None:
    out, _ = trained
    model = ServingModel.from_dir(out / "serving")
    rows = [r for r in read_ratings(etl_output) if r["productCode"] == "S03_1003"][:1]
    published = next(parse_embeddings((out / "embeddings/item_embeddings.csv").open("rb"), id_type="varchar",
                                      source="items"))
    expected = published.vectors[published.ids.index("S03_1003")]
    np.testing.assert_allclose(model.item_embeddings(rows)[0], expected, rtol=1e-5, atol=1e-5)


def test_serving_needs_no_pickle_the_scalers_are_plain_data(trained: tuple[Path, dict]) -> None:
    out, _ = trained
    spec = json.loads((out / "serving/preprocessing.json").read_text())
    cities = next(f for f in spec["towers"]["user"]["categorical"] if f["name"] == "city")["categories"]
    # The lab-compatible pickles hold only builtins: loading them needs none of our code.
    assert pickle.loads((out / "scalers/user_ohe.pkl").read_bytes())["city"] == cities


def test_the_same_input_and_seed_give_identical_artifacts(etl_output: Path, trained: tuple[Path, dict],
                                                          tmp_path: Path) -> None:
    first, _ = trained
    train(etl_output, tmp_path, FAST)
    for name in ("embeddings/item_embeddings.csv", "embeddings/user_embeddings.csv", "serving/model.safetensors"):
        assert (tmp_path / name).read_bytes() == (first / name).read_bytes(), name


def test_a_missing_input_says_to_run_the_etl(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="harness etl"):
        train(tmp_path / "nothing", tmp_path / "out", FAST)


def test_parquet_without_the_etl_columns_is_refused_with_the_columns_it_lacks(tmp_path: Path) -> None:
    ds.write_dataset(pa.table({"customerNumber": [1], "city": ["NYC"]}), str(tmp_path / "in"), format="parquet")
    with pytest.raises(TrainingDataError, match="lacks columns country, creditLimit"):
        train(tmp_path / "in", tmp_path / "out", FAST)


def test_train_and_publish_reads_the_data_lake_and_publishes_to_the_artifacts_bucket(
        etl_output: Path, tmp_path: Path, moto_service: Any) -> None:
    from harness.workflows.handle import AwsEndpoints, StackHandle
    from harness.workflows.train import train_and_publish

    lake, artifacts = f"lake-{tmp_path.name}".lower()[:60], f"art-{tmp_path.name}".lower()[:60]
    handle = StackHandle(name="t", outputs={"data_lake_bucket_id": lake, "artifacts_bucket_id": artifacts},
                         aws=AwsEndpoints(default_url=moto_service.endpoint_url, credentials=("testing", "testing")))
    s3 = handle.client("s3")
    for bucket in (lake, artifacts):
        s3.create_bucket(Bucket=bucket)
    for file in etl_output.rglob("*.parquet"):
        s3.upload_file(str(file), lake, f"ratings-ml-training/{file.relative_to(etl_output)}")
    s3.put_object(Bucket=lake, Key="ratings-ml-training/_SUCCESS", Body=b"")

    summary = train_and_publish(handle, config=FAST, output_dir=tmp_path / "kept")

    assert (summary["items"], summary["users"], summary["dim"]) == (40, 60, 32)
    assert summary["published_to"] == f"s3://{artifacts}/" and summary["artifacts_dir"] == str(tmp_path / "kept")
    published = {o["Key"] for o in s3.list_objects_v2(Bucket=artifacts)["Contents"]}
    assert published == set(summary["files"])
    local = (tmp_path / "kept" / "embeddings" / "item_embeddings.csv").read_bytes()
    assert s3.get_object(Bucket=artifacts, Key="embeddings/item_embeddings.csv")["Body"].read() == local

    only_published = train_and_publish(handle, config=FAST)
    assert only_published["artifacts_dir"] is None and only_published["files"] == summary["files"]


def test_train_and_publish_on_a_stack_without_the_buckets_names_the_missing_output() -> None:
    from harness.workflows.handle import AwsEndpoints, StackHandle
    from harness.workflows.train import train_and_publish

    handle = StackHandle(name="dev", outputs={"data_lake_bucket_id": "lake"}, aws=AwsEndpoints())
    with pytest.raises(TrainingDataError, match="the stack dev has no `artifacts_bucket_id` output"):
        train_and_publish(handle)


def test_the_train_command_reports_a_missing_input_in_one_line_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from harness.cli import train as command

    monkeypatch.setenv("RECSYS_LOCAL_DIR", str(tmp_path))
    app = typer.Typer()
    command.register(app)

    result = CliRunner().invoke(app, ["--input", str(tmp_path / "nothing"), "--no-publish"])

    assert result.exit_code == 1
    assert "error:" in result.output and "harness etl" in result.output
    assert "Traceback" not in result.output
