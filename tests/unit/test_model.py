"""The numpy serving model: what it accepts, what it refuses, and that it computes the towers as written."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from recsys.model import BUNDLE_FORMAT, BundleError, FeatureError, ServingModel
from recsys.safejson import FLOAT32_MAX
from safetensors.numpy import save, save_file

DIM = 32


def bundle_spec() -> dict:
    return {
        "format": BUNDLE_FORMAT,
        "embedding_dim": DIM,
        "rating_offset": 3.5,
        "towers": {
            "user": {
                "categorical": [
                    {"name": "city", "keys": ["city"], "categories": ["Nantes", "Pasadena"]},
                    {"name": "country", "keys": ["country"], "categories": ["France", "USA"]},
                ],
                "numeric": [
                    {"name": "credit_limit", "keys": ["credit_limit", "creditlimit", "creditLimit"],
                     "mean": 50000.0, "scale": 10000.0},
                ],
                "layers": [{"tensor": "user_tower.0", "activation": "relu"},
                           {"tensor": "user_tower.2", "activation": "none"}],
            },
            "item": {
                "categorical": [
                    {"name": "product_line", "keys": ["product_line", "productLine"],
                     "categories": ["Planes", "Ships"]},
                    {"name": "product_scale", "keys": ["product_scale", "productScale"], "categories": ["1:10"]},
                ],
                "numeric": [
                    {"name": "quantity_in_stock", "keys": ["quantity_in_stock", "quantityInStock"], "mean": 10.0,
                     "scale": 2.0},
                    {"name": "buy_price", "keys": ["buy_price", "buyPrice"], "mean": 50.0, "scale": 5.0},
                    {"name": "msrp", "keys": ["msrp", "MSRP"], "mean": 100.0, "scale": 10.0},
                ],
                "layers": [{"tensor": "item_tower.0", "activation": "relu"},
                           {"tensor": "item_tower.2", "activation": "none"}],
            },
        },
    }


def _weights(seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"user_tower.0": (8, 5), "user_tower.2": (DIM, 8), "item_tower.0": (8, 6), "item_tower.2": (DIM, 8)}
    out: dict[str, np.ndarray] = {}
    for name, (rows, cols) in shapes.items():
        out[f"{name}.weight"] = rng.normal(size=(rows, cols)).astype(np.float32)
        out[f"{name}.bias"] = rng.normal(size=rows).astype(np.float32)
    return out


def write_bundle(directory: Path, spec: dict | None = None) -> dict[str, np.ndarray]:
    """A small serving bundle (tests/unit/test_transformation.py builds its real ServingModel with it)."""
    weights = _weights()
    directory.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(directory / "model.safetensors"))
    (directory / "preprocessing.json").write_text(json.dumps(spec or bundle_spec()))
    return weights


# The name tests/unit/test_inference_hostile_input.py imports.
_write_bundle = write_bundle


def _reference_user(weights: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    hidden = np.maximum(features @ weights["user_tower.0.weight"].T + weights["user_tower.0.bias"], 0)
    return hidden @ weights["user_tower.2.weight"].T + weights["user_tower.2.bias"]


def test_user_embedding_is_the_tower_applied_to_one_hot_and_scaled_features(tmp_path: Path) -> None:
    weights = write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)

    got = model.user_embeddings([{"city": "Pasadena", "country": "USA", "credit_limit": 60000}])

    expected = _reference_user(weights, np.array([[0, 1, 0, 1, 1.0]], dtype=np.float32))
    assert got.shape == (1, DIM) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_unknown_categories_encode_as_all_zero_and_missing_credit_limit_as_the_mean(tmp_path: Path) -> None:
    weights = write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)

    got = model.user_embeddings([{"city": "Atlantis", "country": "Nowhere"}, {"city": None, "credit_limit": ""}])

    expected = _reference_user(weights, np.zeros((1, 5), dtype=np.float32))
    np.testing.assert_allclose(got, np.vstack([expected, expected]), rtol=1e-5, atol=1e-5)


def test_the_lab_and_etl_spellings_of_credit_limit_are_the_same_feature(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)

    spellings = [{"city": "Nantes", "country": "France", key: 71000} for key in
                 ("credit_limit", "creditlimit", "creditLimit")]
    got = model.user_embeddings(spellings)

    np.testing.assert_array_equal(got[0], got[1])
    np.testing.assert_array_equal(got[0], got[2])


def test_item_embeddings_accept_etl_column_names(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)

    snake = {"product_line": "Ships", "product_scale": "1:10", "quantity_in_stock": 12, "buy_price": 55, "msrp": 90}
    camel = {"productLine": "Ships", "productScale": "1:10", "quantityInStock": 12, "buyPrice": 55, "MSRP": 90}

    got = model.item_embeddings([snake, camel])

    assert got.shape == (2, DIM)
    np.testing.assert_array_equal(got[0], got[1])


def test_a_non_numeric_credit_limit_is_refused_with_the_feature_name(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)

    with pytest.raises(FeatureError, match="credit_limit must be a number, got 'lots'"):
        model.user_embeddings([{"city": "Nantes", "country": "France", "credit_limit": "lots"}])
    with pytest.raises(FeatureError, match="finite"):
        model.user_embeddings([{"credit_limit": float("nan")}])


def test_an_empty_batch_gives_an_empty_matrix(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    assert ServingModel.from_dir(tmp_path).user_embeddings([]).shape == (0, DIM)


def test_a_missing_bundle_says_to_run_the_trainer(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="harness train"):
        ServingModel.from_dir(tmp_path / "nothing-here")


def test_a_bundle_of_another_format_version_is_refused(tmp_path: Path) -> None:
    write_bundle(tmp_path, {**bundle_spec(), "format": "recsys-serving/0"})
    with pytest.raises(BundleError, match="re-run the trainer"):
        ServingModel.from_dir(tmp_path)


def test_weights_that_do_not_fit_the_features_are_refused(tmp_path: Path) -> None:
    spec = bundle_spec()
    spec["towers"]["user"]["categorical"][0]["categories"].append("Lyon")  # 6 inputs, the layer takes 5
    write_bundle(tmp_path, spec)
    with pytest.raises(BundleError, match="user tower: features give 6 inputs, first layer takes 5"):
        ServingModel.from_dir(tmp_path)


def test_the_s3_bundle_is_the_same_model_as_the_directory_bundle(tmp_path: Path) -> None:
    weights = write_bundle(tmp_path)
    user = [{"city": "Nantes", "country": "France", "credit_limit": 1000}]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        s3.put_object(Bucket="artifacts", Key="serving/model.safetensors", Body=save(weights))
        s3.put_object(Bucket="artifacts", Key="serving/preprocessing.json", Body=json.dumps(bundle_spec()).encode())

        from_s3 = ServingModel.from_s3("artifacts", "serving", s3_client=s3)
        with pytest.raises(BundleError, match="does not exist"):
            ServingModel.from_s3("artifacts", "other/", s3_client=s3)

    np.testing.assert_array_equal(from_s3.user_embeddings(user), ServingModel.from_dir(tmp_path).user_embeddings(user))


def test_a_feature_row_is_each_features_own_encoding_side_by_side(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    tower = ServingModel.from_dir(tmp_path).item
    records = [{"product_line": "Ships", "product_scale": "1:10", "buy_price": 52.5, "MSRP": 90},
               {"productLine": "Trains", "quantityInStock": ""}, {}]

    rows = tower.features(records)

    for row, record in zip(rows, records, strict=True):
        expected = np.concatenate([*(f.encode(record) for f in tower.categorical),
                                   np.array([f.encode(record) for f in tower.numeric], dtype=np.float32)])
        np.testing.assert_array_equal(row, expected)


# ---- values the model cannot use: FeatureError, never another exception, never a non-finite embedding ----------------
@pytest.mark.parametrize(("credit_limit", "message"), [
    # Long values are cut to 40 characters: a client may send a megabyte where a number goes.
    (10**400, "credit_limit must be a finite number, got " + "1" + "0" * 36 + "..."),
    (1e300, "credit_limit is out of the model's range: 1e+300 scaled by the training mean and scale is not a finite "
            "float32"),
    ("1" * 500, "credit_limit must be a finite number, got '" + "1" * 36 + "..."),
    (float("inf"), "credit_limit must be a finite number, got inf"),
])
def test_a_credit_limit_beyond_float32_once_scaled_is_a_feature_error_naming_the_feature(
        tmp_path: Path, credit_limit: object, message: str) -> None:
    write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)
    with pytest.raises(FeatureError) as raised:
        model.user_embeddings([{"city": "Nantes", "country": "France", "credit_limit": 1000},
                               {"city": "Nantes", "country": "France", "credit_limit": credit_limit}])
    assert str(raised.value) == message
    assert raised.value.feature == "credit_limit"


def test_the_float32_check_is_on_the_scaled_value_at_the_edge_of_the_range(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    feature = ServingModel.from_dir(tmp_path).user.numeric[0]  # mean 50000, scale 10000
    edge = FLOAT32_MAX * 10000.0 + 50000.0
    assert feature.encode({"credit_limit": edge}) <= FLOAT32_MAX
    with pytest.raises(FeatureError, match="out of the model's range"):
        feature.encode({"credit_limit": edge * 1.000001})


def test_features_whose_output_overflows_float32_are_a_feature_error_without_a_feature_name(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)
    huge_but_scalable = FLOAT32_MAX * 10000.0  # scaled to about 3.4e38: a valid input, but the layers overflow
    with pytest.raises(FeatureError) as raised:
        model.user_embeddings([{"credit_limit": 1000}, {"credit_limit": huge_but_scalable}])
    assert str(raised.value) == ("user #1: the model's output for these feature values is not finite (they are far "
                                 "outside what it was trained on)")
    assert raised.value.feature is None


def test_a_category_that_cannot_be_read_is_a_feature_error(tmp_path: Path) -> None:
    write_bundle(tmp_path)
    model = ServingModel.from_dir(tmp_path)
    with pytest.raises(FeatureError, match="^city cannot be read as a category") as raised:
        model.user_embeddings([{"city": 10**5000, "country": "France"}])  # str() refuses ints over 4,300 digits
    assert raised.value.feature == "city"


feature_values = st.one_of(
    st.none(), st.booleans(), st.text(max_size=20),
    st.integers(), st.sampled_from([10**400, -(10**400), 2**1024, 10**39]),
    st.floats(), st.sampled_from([1e300, -1e300, 3.5e38, 1e39, -0.0, 5e-324]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
users = st.lists(st.fixed_dictionaries({}, optional={"city": feature_values, "country": feature_values,
                                                     "credit_limit": feature_values}), max_size=4)


@settings(max_examples=300, deadline=None)
@given(batch=users)
def test_any_user_record_gives_finite_float32_embeddings_or_a_feature_error(tmp_path_factory, batch) -> None:
    directory = tmp_path_factory.mktemp("bundle")
    write_bundle(directory)
    model = ServingModel.from_dir(directory)
    try:
        got = model.user_embeddings(batch)
    except FeatureError:
        return
    assert got.shape == (len(batch), DIM) and got.dtype == np.float32
    assert np.isfinite(got).all()
