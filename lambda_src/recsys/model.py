"""The serving half of the two-tower model: numpy only, no torch, nothing unpickled.

The trainer (`harness/workflows/train.py`) publishes a serving bundle next to the lab's artifacts:

- `serving/model.safetensors`: the towers' weights, `<tower>.<layer>.weight` (out x in) and `<tower>.<layer>.bias`;
- `serving/preprocessing.json`: how raw features become the tower inputs (see `BUNDLE_FORMAT` and docs/vectors.md).

`ServingModel` loads both once (per Lambda container: keep the instance in a module-level variable) and turns raw user
or item records into 32-d embeddings. The predicted rating of a (user, item) pair is `rating_offset + user . item`, so a
larger inner product means a higher predicted rating: that is why user -> item retrieval ranks by inner product.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from safetensors.numpy import load as load_safetensors_bytes

from recsys.safejson import FLOAT32_MAX

BUNDLE_FORMAT = "recsys-serving/1"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSING_FILE = "preprocessing.json"

TowerName = Literal["user", "item"]
Activation = Literal["relu", "none"]


class BundleError(ValueError):
    """The serving bundle is missing, unreadable or inconsistent: the message says which file and what to do."""


class FeatureError(ValueError):
    """A record has a value the model cannot use: a number that is not one, or not finite in float32 once scaled, or
    features for which the tower's output is not finite. `feature` names the feature (None: the output), so a caller
    can say what was wrong without repeating the value (the message does quote it)."""

    def __init__(self, message: str, feature: str | None = None) -> None:
        super().__init__(message)
        self.feature = feature


@dataclass(frozen=True)
class CategoricalFeature:
    """One-hot encoded: a value not seen in training encodes as all zeros (the model's 'unknown' input)."""

    name: str
    keys: tuple[str, ...]
    categories: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.categories)})

    def index_of(self, record: Mapping[str, Any]) -> int | None:
        """The position of the record's category in the one-hot, None for a missing or unseen one (all zeros)."""
        value = _first_present(record, self.keys)
        if value is None:
            return None
        if type(value) is str:
            return self._index.get(value.strip())
        try:
            text = str(value)
        except (ValueError, RecursionError):  # an int over 4,300 digits, a structure nested too deep
            raise FeatureError(f"{self.name} cannot be read as a category (keys accepted: {', '.join(self.keys)})",
                               self.name) from None
        return self._index.get(text.strip())

    def encode(self, record: Mapping[str, Any]) -> np.ndarray:
        out = np.zeros(len(self.categories), dtype=np.float32)
        index = self.index_of(record)
        if index is not None:
            out[index] = 1.0
        return out


@dataclass(frozen=True)
class NumericFeature:
    """Standard-scaled with the training mean and scale: a missing value is the mean (scaled to 0)."""

    name: str
    keys: tuple[str, ...]
    mean: float
    scale: float

    def encode(self, record: Mapping[str, Any]) -> float:
        """The scaled value, finite in float32 (the tower's input type), or FeatureError."""
        value = _first_present(record, self.keys)
        if value is None or value == "":
            return 0.0
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise FeatureError(
                f"{self.name} must be a number, got {_shown(value)} (keys accepted: {', '.join(self.keys)})",
                self.name,
            ) from None
        except OverflowError:  # an integer beyond float64
            number = math.inf
        if not math.isfinite(number):
            raise FeatureError(f"{self.name} must be a finite number, got {_shown(value)}", self.name)
        scaled = (number - self.mean) / self.scale
        # 1e300 is a finite float64 but infinity in the float32 feature row, and then every output is NaN.
        if not -FLOAT32_MAX <= scaled <= FLOAT32_MAX:
            raise FeatureError(
                f"{self.name} is out of the model's range: {_shown(value)} scaled by the training mean and scale is "
                "not a finite float32", self.name)
        return scaled


@dataclass(frozen=True)
class Layer:
    weight: np.ndarray  # (out, in), as torch.nn.Linear stores it
    bias: np.ndarray
    activation: Activation


@dataclass(frozen=True)
class Tower:
    name: TowerName
    categorical: tuple[CategoricalFeature, ...]
    numeric: tuple[NumericFeature, ...]
    layers: tuple[Layer, ...]

    @property
    def input_dim(self) -> int:
        return sum(len(f.categories) for f in self.categorical) + len(self.numeric)

    @functools.cached_property
    def _offsets(self) -> tuple[tuple[int, ...], int]:
        """Where each categorical one-hot starts in a feature row, and where the numeric features start."""
        starts, at = [], 0
        for feature in self.categorical:
            starts.append(at)
            at += len(feature.categories)
        return tuple(starts), at

    def features(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        # Written in place, one cell per feature: the same row as concatenating each feature's `encode`, without
        # allocating small arrays per record (a batch embeds hundreds of users).
        rows = np.zeros((len(records), self.input_dim), dtype=np.float32)
        starts, numeric_start = self._offsets
        for r, record in enumerate(records):
            if not isinstance(record, Mapping):
                kind = type(record).__name__
                raise FeatureError(f"{self.name} #{r} must be an object with feature fields, got {kind}")
            row = rows[r]
            for feature, start in zip(self.categorical, starts, strict=True):
                index = feature.index_of(record)
                if index is not None:
                    row[start + index] = 1.0
            for j, numeric in enumerate(self.numeric):
                row[numeric_start + j] = numeric.encode(record)
        return rows

    def embed(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(n, out) float32 embeddings, every value finite, or FeatureError naming the first record that has none."""
        x = self.features(records)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, per record
            for layer in self.layers:
                x = x @ layer.weight.T + layer.bias
                if layer.activation == "relu":
                    x = np.maximum(x, 0.0)
        x = x.astype(np.float32, copy=False)
        if x.size and not np.isfinite(x).all():
            r = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise FeatureError(f"{self.name} #{r}: the model's output for these feature values is not finite (they "
                               "are far outside what it was trained on)")
        return x


class ServingModel:
    """User and item towers of the trained model, ready to embed raw records.

    Users are mappings with `city`, `country`, `credit_limit` (the lab's `creditlimit` and the ETL's `creditLimit` are
    accepted too); items with `product_line`, `product_scale`, `quantity_in_stock`, `buy_price`, `msrp` (or the ETL's
    camelCase names). Unknown categories encode as all-zero one-hots; missing numbers as the training mean.
    """

    def __init__(self, user: Tower, item: Tower, embedding_dim: int, rating_offset: float) -> None:
        self.user = user
        self.item = item
        self.embedding_dim = embedding_dim
        self.rating_offset = rating_offset

    # ---- loading -------------------------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, weights: bytes, preprocessing: bytes, *, source: str = "serving bundle") -> ServingModel:
        try:
            spec = json.loads(preprocessing)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleError(f"{source}/{PREPROCESSING_FILE} is not valid JSON ({exc}); re-run the trainer") from exc
        try:
            tensors = load_safetensors_bytes(weights)
        except Exception as exc:  # safetensors raises its own error types for every kind of corruption
            raise BundleError(f"{source}/{WEIGHTS_FILE} is not a readable safetensors file ({exc})") from exc
        return cls.from_spec(spec, tensors, source=source)

    @classmethod
    def from_dir(cls, path: str | Path) -> ServingModel:
        directory = Path(path)
        try:
            weights = (directory / WEIGHTS_FILE).read_bytes()
            preprocessing = (directory / PREPROCESSING_FILE).read_bytes()
        except FileNotFoundError as exc:
            raise BundleError(
                f"serving bundle file missing: {exc.filename}; run `python -m harness train` first"
            ) from exc
        return cls.from_bytes(weights, preprocessing, source=str(directory))

    @classmethod
    def from_s3(cls, bucket: str, prefix: str = "serving/", *, s3_client: Any = None) -> ServingModel:
        if s3_client is None:
            import boto3  # only the S3 path needs it; the Lambda runtime ships boto3

            s3_client = boto3.client("s3")
        prefix = prefix if prefix.endswith("/") or prefix == "" else prefix + "/"
        source = f"s3://{bucket}/{prefix}".rstrip("/")
        blobs: dict[str, bytes] = {}
        for name in (WEIGHTS_FILE, PREPROCESSING_FILE):
            try:
                blobs[name] = s3_client.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
            except s3_client.exceptions.NoSuchKey as exc:
                raise BundleError(
                    f"s3://{bucket}/{prefix}{name} does not exist; "
                    "publish the serving bundle (`python -m harness train`)"
                ) from exc
        return cls.from_bytes(blobs[WEIGHTS_FILE], blobs[PREPROCESSING_FILE], source=source)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], tensors: Mapping[str, np.ndarray], *, source: str) -> ServingModel:
        if spec.get("format") != BUNDLE_FORMAT:
            raise BundleError(
                f"{source}/{PREPROCESSING_FILE} has format {spec.get('format')!r}, this code reads {BUNDLE_FORMAT!r}; "
                "re-run the trainer with this version of the code"
            )
        try:
            dim = int(spec["embedding_dim"])
            towers = {name: _tower_from_spec(name, spec["towers"][name], tensors) for name in ("user", "item")}
            offset = float(spec["rating_offset"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{source}: bundle is inconsistent ({exc!r}); re-run the trainer") from exc
        for tower in towers.values():
            out_dim = tower.layers[-1].weight.shape[0]
            if out_dim != dim:
                raise BundleError(f"{source}: {tower.name} tower outputs {out_dim} values, embedding_dim says {dim}")
        return cls(towers["user"], towers["item"], dim, offset)

    # ---- inference -----------------------------------------------------------------------------------------------
    def user_embeddings(self, users: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(n, embedding_dim) float32 embeddings of raw user records."""
        return self.user.embed(users)

    def item_embeddings(self, items: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(n, embedding_dim) float32 embeddings of raw item records."""
        return self.item.embed(items)

    def predicted_ratings(self, user_embeddings: np.ndarray, item_embeddings: np.ndarray) -> np.ndarray:
        """(n_users, n_items) ratings the model predicts: the same formula it was trained with."""
        return self.rating_offset + user_embeddings @ item_embeddings.T


def _shown(value: Any) -> str:
    """The value for an error message, cut short: a client may send a megabyte where a number goes."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} that cannot be shown"
    return text if len(text) <= 40 else text[:37] + "..."


def _first_present(record: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in record and record[key] is not None:
            return record[key]
    return None


def feature_encoder(name: TowerName, spec: Mapping[str, Any]) -> Tower:
    """The tower's input encoding alone (no layers): the trainer encodes training data with exactly this code."""
    categorical = tuple(
        CategoricalFeature(f["name"], tuple(f["keys"]), tuple(str(c) for c in f["categories"]))
        for f in spec["categorical"]
    )
    numeric = tuple(
        NumericFeature(f["name"], tuple(f["keys"]), float(f["mean"]), float(f["scale"]) or 1.0)
        for f in spec["numeric"]
    )
    return Tower(name, categorical, numeric, ())


def _tower_from_spec(name: TowerName, spec: Mapping[str, Any], tensors: Mapping[str, np.ndarray]) -> Tower:
    encoder = feature_encoder(name, spec)
    categorical, numeric = encoder.categorical, encoder.numeric
    layers = []
    for layer_spec in spec["layers"]:
        prefix = layer_spec["tensor"]
        if f"{prefix}.weight" not in tensors:
            raise KeyError(f"weights file has no tensor {prefix}.weight")
        layers.append(
            Layer(
                np.asarray(tensors[f"{prefix}.weight"], dtype=np.float32),
                np.asarray(tensors[f"{prefix}.bias"], dtype=np.float32),
                layer_spec["activation"],
            )
        )
    tower = Tower(name, categorical, numeric, tuple(layers))
    expected = layers[0].weight.shape[1] if layers else -1
    if tower.input_dim != expected:
        raise ValueError(f"{name} tower: features give {tower.input_dim} inputs, first layer takes {expected}")
    return tower
