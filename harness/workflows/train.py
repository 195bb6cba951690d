"""The reference trainer: stands in for the data scientist and publishes the lab's artifacts plus a serving bundle.

Reads the ETL output (`ratings-ml-training/`, snappy Parquet partitioned by `customerNumber`), trains a content-based
two-tower model with PyTorch on the CPU and writes, to the stack's artifacts bucket (`train_and_publish`, through its
`StackHandle`, local or on AWS) and to a local directory when asked:

- `embeddings/item_embeddings.csv`, `embeddings/user_embeddings.csv`: header `id,embedding`, rows `id,"[x1,...,x32]"`;
- `model/best_model.pth`: the torch `state_dict` of the best epoch (for notebooks; nothing serves from it);
- `scalers/{item_ohe,item_std_scaler,user_ohe,user_std_scaler}.pkl`: the encoders as plain dicts (scikit-learn is not a
  dependency; nothing on a serving path unpickles them);
- `serving/model.safetensors`, `serving/preprocessing.json`: what `recsys.model.ServingModel` loads (numpy only).

Model: each tower is Linear(in, 64) -> ReLU -> Linear(64, 32); the predicted rating is `mean_rating + user . item`, so
retrieval by inner product ranks items by predicted rating. The split, the initialisation and the batches come from one
seed, and torch runs deterministic kernels on one thread: the same input and seed give byte-identical artifacts.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from harness.workflows.handle import HandleError, StackHandle

ETL_PREFIX = "ratings-ml-training/"
EMBEDDING_DIM = 32
HIDDEN = 64

# Feature definitions: (name in the bundle, ETL column, other spellings a serving request may use).
USER_CATEGORICAL = (("city", "city", ()), ("country", "country", ()))
USER_NUMERIC = (("credit_limit", "creditLimit", ("creditlimit",)),)
ITEM_CATEGORICAL = (("product_line", "productLine", ()), ("product_scale", "productScale", ()))
ITEM_NUMERIC = (
    ("quantity_in_stock", "quantityInStock", ()),
    ("buy_price", "buyPrice", ()),
    ("msrp", "MSRP", ("msrp",)),
)
REQUIRED_COLUMNS = ("customerNumber", "city", "country", "creditLimit", "productCode", "productLine", "productScale",
                    "quantityInStock", "buyPrice", "MSRP", "productRating")


class TrainingDataError(ValueError):
    """The training input is missing or unusable; the message says where it looked and what to do."""


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    epochs: int = 60
    batch_size: int = 128
    learning_rate: float = 0.005
    weight_decay: float = 1e-5
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    patience: int = 10


@dataclass
class TrainSummary:
    items: int
    users: int
    dim: int
    rows: int
    train_rows: int
    test_rows: int
    test_rmse: float
    baseline_rmse: float
    best_epoch: int
    artifacts_dir: str | None  # None: published only, no local copy kept
    published_to: str | None
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- reading the ETL output -------------------------------------------------------------------------------------
def read_ratings(path: Path) -> list[dict[str, Any]]:
    """Rows of the ETL output under `path` (a Parquet file or a hive-partitioned directory), as plain dicts."""
    import pyarrow.dataset as ds

    if not path.exists():
        raise TrainingDataError(f"training input {path} does not exist; run `harness etl` first "
                                "or pass --input with the ETL output directory")
    try:
        dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
        table = dataset.to_table()
    except Exception as exc:  # pyarrow raises several unrelated types for unreadable input
        raise TrainingDataError(f"cannot read Parquet from {path}: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise TrainingDataError(f"training input {path} lacks columns {', '.join(missing)}; "
                                f"it has {', '.join(table.column_names)}. Is this the ETL output?")
    rows = table.select(list(REQUIRED_COLUMNS)).to_pylist()
    # The ETL drops invalid ratings already; a row without its keys or rating cannot be trained on either way.
    usable = [r for r in rows if all(r[c] is not None for c in ("customerNumber", "productCode", "productRating"))]
    if not usable:
        raise TrainingDataError(f"training input {path} has no rows with a customer, a product and a rating "
                                f"({len(rows)} rows in all); seed the source and run the ETL again")
    return usable


def download_prefix(s3: Any, bucket: str, prefix: str, target: Path) -> int:
    """Copy every object under `s3://bucket/prefix` into `target`, keeping the partition folders; returns the count."""
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix):]
            if not relative or relative.endswith("/") or Path(relative).name.startswith(("_", ".")):
                continue  # Spark's _SUCCESS markers and folder placeholders are not data
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(destination))
            count += 1
    if count == 0:
        raise TrainingDataError(f"no Parquet files under s3://{bucket}/{prefix}; run `harness etl` first")
    return count


# ---- preprocessing (pure) -----------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value) if isinstance(value, Decimal | int | float) else float(str(value))
    return number if math.isfinite(number) else None


def _keys(name: str, column: str, aliases: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys([name, column, *aliases]))  # ordered, without repeats ("city" is both)


def fit_tower_spec(rows: Sequence[Mapping[str, Any]], categorical: Sequence[tuple[str, str, tuple[str, ...]]],
                   numeric: Sequence[tuple[str, str, tuple[str, ...]]], tensor_prefix: str) -> dict[str, Any]:
    """One tower's encoders from the training rows: sorted categories, mean and population std per number."""
    spec: dict[str, Any] = {"categorical": [], "numeric": []}
    for name, column, aliases in categorical:
        values = sorted({str(r[column]).strip() for r in rows if r[column] is not None and str(r[column]).strip()})
        spec["categorical"].append({"name": name, "keys": _keys(name, column, aliases), "categories": values})
    for name, column, aliases in numeric:
        present = np.array([v for v in (_number(r[column]) for r in rows) if v is not None], dtype=np.float64)
        mean = float(present.mean()) if present.size else 0.0
        scale = float(present.std()) if present.size else 1.0
        spec["numeric"].append({"name": name, "keys": _keys(name, column, aliases), "mean": mean,
                                "scale": scale if scale > 0 else 1.0})
    spec["layers"] = [{"tensor": f"{tensor_prefix}.0", "activation": "relu"},
                      {"tensor": f"{tensor_prefix}.2", "activation": "none"}]
    return spec


def split_indices(n: int, test_fraction: float, validation_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) row indices from one seeded permutation."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction))) if n >= 3 else 0
    n_val = max(1, int(round(n * validation_fraction))) if n - n_test >= 2 else 0
    return order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test]


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, dtype=np.float64) - actual) ** 2))) if len(actual) else math.nan


def embedding_csv(ids: Sequence[Any], vectors: np.ndarray) -> str:
    """The lab's CSV: header `id,embedding`, rows `id,"[x1,...,x32]"` (shortest float32 repr of each value)."""
    out = io.StringIO()
    out.write("id,embedding\n")
    for item_id, row in zip(ids, vectors, strict=True):
        values = ",".join(np.format_float_positional(v, unique=True, trim="-") for v in row.astype(np.float32))
        out.write(f'{item_id},"[{values}]"\n')
    return out.getvalue()


# ---- training -----------------------------------------------------------------------------------------------------
def _two_tower(user_inputs: int, item_inputs: int, rating_offset: float) -> Any:
    import torch
    from torch import nn

    class TwoTower(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user_tower = nn.Sequential(nn.Linear(user_inputs, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, EMBEDDING_DIM))
            self.item_tower = nn.Sequential(nn.Linear(item_inputs, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, EMBEDDING_DIM))
            self.register_buffer("rating_offset", torch.tensor(rating_offset, dtype=torch.float32))

        def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            return self.rating_offset + (self.user_tower(users) * self.item_tower(items)).sum(dim=-1)

    return TwoTower()


def train_model(user_x: np.ndarray, item_x: np.ndarray, ratings: np.ndarray, config: TrainConfig,
                on_epoch: Callable[[int, float, float], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Fit the two towers; returns the model at its best validation epoch and the evaluation numbers."""
    import torch

    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # reproducible sums, and one core is plenty at this size

    train, val, test = split_indices(len(ratings), config.test_fraction, config.validation_fraction, config.seed)
    mean_rating = float(ratings[train].mean())
    model = _two_tower(user_x.shape[1], item_x.shape[1], mean_rating)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    u = torch.from_numpy(user_x)
    i = torch.from_numpy(item_x)
    y = torch.from_numpy(ratings.astype(np.float32))
    generator = torch.Generator().manual_seed(config.seed)
    watch = val if len(val) else train

    def evaluate(rows: np.ndarray) -> float:
        with torch.no_grad():
            index = torch.from_numpy(rows)
            return rmse(model(u[index], i[index]).numpy(), ratings[rows])

    best = (math.inf, 0, {k: v.clone() for k, v in model.state_dict().items()})
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.from_numpy(train)[torch.randperm(len(train), generator=generator)]
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            optimiser.zero_grad()
            loss = torch.mean((model(u[batch], i[batch]) - y[batch]) ** 2)
            loss.backward()
            optimiser.step()
        model.eval()
        train_rmse, watch_rmse = evaluate(train), evaluate(watch)
        if on_epoch is not None:
            on_epoch(epoch, train_rmse, watch_rmse)
        if watch_rmse < best[0]:
            best = (watch_rmse, epoch, {k: v.clone() for k, v in model.state_dict().items()})
        elif epoch - best[1] >= config.patience:
            break
    model.load_state_dict(best[2])
    model.eval()
    metrics = {
        "best_epoch": best[1],
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "test_rmse": evaluate(test) if len(test) else math.nan,
        "baseline_rmse": rmse(np.full(len(test), mean_rating), ratings[test]) if len(test) else math.nan,
        "rating_offset": mean_rating,
    }
    return model, metrics


def _distinct(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[Any], list[Mapping[str, Any]]]:
    """First row per id, ids sorted: a customer's (or product's) features are the same on every row of the join."""
    first: dict[Any, Mapping[str, Any]] = {}
    for row in rows:
        first.setdefault(row[key], row)
    ids = sorted(first)
    return ids, [first[i] for i in ids]


def train_artifacts(rows: Sequence[Mapping[str, Any]], config: TrainConfig,
                    on_epoch: Callable[[int, float, float], None] | None = None) -> tuple[dict[str, bytes], dict]:
    """Train on the ETL rows and return every artifact as `{relative path: bytes}` plus the evaluation numbers."""
    import torch
    from recsys import model as model_mod
    from safetensors.numpy import save as save_safetensors

    user_spec = fit_tower_spec(rows, USER_CATEGORICAL, USER_NUMERIC, "user_tower")
    item_spec = fit_tower_spec(rows, ITEM_CATEGORICAL, ITEM_NUMERIC, "item_tower")
    user_encoder = model_mod.feature_encoder("user", user_spec)
    item_encoder = model_mod.feature_encoder("item", item_spec)
    user_x = user_encoder.features(rows)
    item_x = item_encoder.features(rows)
    ratings = np.array([float(r["productRating"]) for r in rows], dtype=np.float64)

    net, metrics = train_model(user_x, item_x, ratings, config, on_epoch)

    weights = {name: tensor.detach().numpy().copy() for name, tensor in net.state_dict().items()
               if name.endswith((".weight", ".bias"))}
    preprocessing = {
        "format": model_mod.BUNDLE_FORMAT,
        "embedding_dim": EMBEDDING_DIM,
        "rating_offset": metrics["rating_offset"],
        "towers": {"user": user_spec, "item": item_spec},
        "trained": {"seed": config.seed, "rows": len(rows), "best_epoch": metrics["best_epoch"],
                    "test_rmse": metrics["test_rmse"], "baseline_rmse": metrics["baseline_rmse"]},
    }
    serving = model_mod.ServingModel.from_spec(preprocessing, weights, source="trainer output")
    user_ids, user_rows = _distinct(rows, "customerNumber")
    item_ids, item_rows = _distinct(rows, "productCode")
    user_vectors = serving.user_embeddings(user_rows)
    item_vectors = serving.item_embeddings(item_rows)

    pth = io.BytesIO()
    torch.save(net.state_dict(), pth)
    files: dict[str, bytes] = {
        "embeddings/item_embeddings.csv": embedding_csv(item_ids, item_vectors).encode(),
        "embeddings/user_embeddings.csv": embedding_csv([int(i) for i in user_ids], user_vectors).encode(),
        "model/best_model.pth": pth.getvalue(),
        "serving/model.safetensors": save_safetensors(weights),
        "serving/preprocessing.json": (json.dumps(preprocessing, indent=2, sort_keys=True) + "\n").encode(),
    }
    for tower, spec in (("user", user_spec), ("item", item_spec)):
        ohe = {f["name"]: f["categories"] for f in spec["categorical"]}
        scaler = {f["name"]: {"mean": f["mean"], "scale": f["scale"]} for f in spec["numeric"]}
        files[f"scalers/{tower}_ohe.pkl"] = pickle.dumps(ohe, protocol=4)
        files[f"scalers/{tower}_std_scaler.pkl"] = pickle.dumps(scaler, protocol=4)
    metrics.update(items=len(item_ids), users=len(user_ids), rows=len(rows))
    return files, metrics


def write_artifacts(files: Mapping[str, bytes], directory: Path) -> None:
    for relative, content in sorted(files.items()):
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)


def upload_artifacts(s3: Any, files: Mapping[str, bytes], bucket: str) -> None:
    # Embeddings last: whoever watches them (the loader) then finds a serving bundle that matches them.
    order = sorted(files, key=lambda key: (key.startswith("embeddings/"), key))
    for key in order:
        s3.put_object(Bucket=bucket, Key=key, Body=files[key])


def train(input_path: Path, output_dir: Path, config: TrainConfig, *, s3: Any = None, bucket: str | None = None,
          on_epoch: Callable[[int, float, float], None] | None = None) -> TrainSummary:
    rows = read_ratings(input_path)
    files, metrics = train_artifacts(rows, config, on_epoch)
    write_artifacts(files, output_dir)
    if s3 is not None and bucket:
        upload_artifacts(s3, files, bucket)
    return TrainSummary(
        items=metrics["items"], users=metrics["users"], dim=EMBEDDING_DIM, rows=metrics["rows"],
        train_rows=metrics["train_rows"], test_rows=metrics["test_rows"], test_rmse=metrics["test_rmse"],
        baseline_rmse=metrics["baseline_rmse"], best_epoch=metrics["best_epoch"], artifacts_dir=str(output_dir),
        published_to=f"s3://{bucket}/" if s3 is not None and bucket else None, files=sorted(files),
    )


# ---- a deployed stack ---------------------------------------------------------------------------------------------
def train_and_publish(handle: StackHandle, *, config: TrainConfig | None = None, input_path: Path | None = None,
                      output_dir: Path | None = None,
                      on_epoch: Callable[[int, float, float], None] | None = None) -> dict[str, Any]:
    """Train from the stack's data lake (or `input_path`), publish to its artifacts bucket, and keep a copy in
    `output_dir` when given.

    Returns the summary as a mapping (`items`, `users`, `dim`, evaluation numbers, where the artifacts went).
    """
    try:
        artifacts = str(handle.output("artifacts_bucket_id"))
        lake = str(handle.output("data_lake_bucket_id")) if input_path is None else ""
    except HandleError as err:
        raise TrainingDataError(f"{err}; or pass --input to train from a local Parquet directory") from None
    s3 = handle.client("s3")
    config = config or TrainConfig()
    with tempfile.TemporaryDirectory(prefix="recsys-train-") as tmp:
        written = output_dir or Path(tmp) / "artifacts"
        if input_path is None:
            input_path = Path(tmp) / "input"
            download_prefix(s3, lake, ETL_PREFIX, input_path)
        summary = train(input_path, written, config, s3=s3, bucket=artifacts, on_epoch=on_epoch)
    if output_dir is None:
        summary.artifacts_dir = None  # only published: the temporary copy is gone
    return summary.as_dict()
