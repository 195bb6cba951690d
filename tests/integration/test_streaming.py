"""The streaming path against real services: the transformation Lambda on a real PostgreSQL + pgvector with a tiny
serving bundle, and (when the whole local stack is available) events through Kinesis, the runner and S3.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg2
import psycopg2.extensions
import pytest
import transformation
from recsys import vectordb
from recsys.model import BUNDLE_FORMAT, ServingModel
from safetensors.numpy import save_file

DIM = 32
CITIES = ["Pasadena", "Nantes", "Madrid", "Singapore"]
COUNTRIES = ["USA", "France", "Spain", "Singapore"]
ITEMS = [f"S{line}_{n:04d}" for line in (10, 12, 18, 24) for n in range(1000, 1010)]


def write_bundle(directory: Path) -> None:
    """A two-layer user tower over city, country (one-hot) and credit limit (scaled), random but fixed weights."""
    rng = np.random.default_rng(11)
    n_in = len(CITIES) + len(COUNTRIES) + 1
    weights = {
        "user_tower.0.weight": rng.normal(size=(16, n_in)).astype(np.float32),
        "user_tower.0.bias": rng.normal(size=16).astype(np.float32),
        "user_tower.2.weight": rng.normal(size=(DIM, 16)).astype(np.float32),
        "user_tower.2.bias": rng.normal(size=DIM).astype(np.float32),
        "item_tower.0.weight": rng.normal(size=(DIM, 1)).astype(np.float32),
        "item_tower.0.bias": rng.normal(size=DIM).astype(np.float32),
    }
    spec = {
        "format": BUNDLE_FORMAT,
        "embedding_dim": DIM,
        "rating_offset": 3.0,
        "towers": {
            "user": {
                "categorical": [
                    {"name": "city", "keys": ["city"], "categories": CITIES},
                    {"name": "country", "keys": ["country"], "categories": COUNTRIES},
                ],
                "numeric": [{"name": "credit_limit", "keys": ["credit_limit", "creditlimit", "creditLimit"],
                             "mean": 80000.0, "scale": 40000.0}],
                "layers": [{"tensor": "user_tower.0", "activation": "relu"},
                           {"tensor": "user_tower.2", "activation": "none"}],
            },
            "item": {
                "categorical": [],
                "numeric": [{"name": "msrp", "keys": ["msrp", "MSRP"], "mean": 100.0, "scale": 10.0}],
                "layers": [{"tensor": "item_tower.0", "activation": "none"}],
            },
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(directory / "model.safetensors"))
    (directory / "preprocessing.json").write_text(json.dumps(spec))


def item_vectors() -> np.ndarray:
    return np.random.default_rng(5).normal(size=(len(ITEMS), DIM)).astype(np.float32)


class CountingCursor(psycopg2.extensions.cursor):
    executed = 0

    def execute(self, query: Any, vars: Any = None) -> Any:
        CountingCursor.executed += 1
        return super().execute(query, vars)


@pytest.fixture(scope="module")
def vector_db(postgres_service: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh database with item_emb/user_emb loaded by the vectors package's own loader; yields VECTOR_DB_* env."""
    name = f"streaming_{uuid.uuid4().hex[:8]}"
    admin = postgres_service.connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    tmp = tmp_path_factory.mktemp("embeddings")
    items_csv, users_csv = tmp / "item_embeddings.csv", tmp / "user_embeddings.csv"
    vectors = item_vectors()
    items_csv.write_text("id,embedding\n" + "".join(
        f'{code},"[{",".join(repr(float(v)) for v in vec)}]"\n' for code, vec in zip(ITEMS, vectors, strict=True)))
    users_csv.write_text("id,embedding\n" + "".join(
        f'{100 + i},"[{",".join(["0.5"] * DIM)}]"\n' for i in range(5)))
    env = {"VECTOR_DB_HOST": postgres_service.host, "VECTOR_DB_PORT": str(postgres_service.port),
           "VECTOR_DB_NAME": name, "VECTOR_DB_USER": postgres_service.user,
           "VECTOR_DB_PASSWORD": postgres_service.password}
    conn = vectordb.connect_from_env(env)
    vectordb.load_embeddings(conn, [vectordb.file_source("item_emb", str(items_csv)),
                                    vectordb.file_source("user_emb", str(users_csv))])
    conn.close()
    yield env
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def warm_container(vector_db: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in vector_db.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TOP_K", "4")
    write_bundle(tmp_path / "serving")
    model = ServingModel.from_dir(tmp_path / "serving")
    monkeypatch.setattr(transformation.container, "model", model)
    conn = vectordb.connect_from_env(vector_db)
    conn.cursor_factory = CountingCursor
    monkeypatch.setattr(transformation.container, "conn", conn)
    yield model
    transformation.container.forget_connection()


def session(i: int, history: list[tuple[str, bool]]) -> dict[str, Any]:
    return {"session_id": str(uuid.UUID(int=i)), "customer_number": 100 + i, "city": CITIES[i % 4],
            "country": COUNTRIES[i % 4], "credit_limit": 20000 + 7000 * i,
            "browse_history": [{"product_code": code, "quantity": str(1 + i % 5), "in_shopping_cart": cart}
                               for code, cart in history]}


def firehose_event(payloads: list[Any]) -> dict[str, Any]:
    def data(p: Any) -> str:
        return p if isinstance(p, str) else base64.b64encode(json.dumps(p).encode()).decode()

    return {"invocationId": str(uuid.uuid4()), "region": "us-east-1",
            "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/d",
            "records": [{"recordId": f"r{i}", "approximateArrivalTimestamp": 0, "data": data(p)}
                        for i, p in enumerate(payloads)]}


def test_a_batch_gets_exact_recommendations_from_real_pgvector_in_two_statements(warm_container: Any) -> None:
    sessions = [session(i, [(ITEMS[i % 40], False), (ITEMS[(3 * i + 1) % 40], i % 2 == 0)]) for i in range(60)]
    payloads: list[Any] = [*sessions, session(99, []), "bm90IGpzb24=",
                           session(98, [("NOT_IN_CATALOGUE", True)])]
    CountingCursor.executed = 0

    response = transformation.handler(firehose_event(payloads), None)

    assert CountingCursor.executed == 2
    results = response["records"]
    assert [r["recordId"] for r in results] == [f"r{i}" for i in range(len(payloads))]
    assert [r["result"] for r in results] == ["Ok"] * 60 + ["ProcessingFailed"] * 3

    vectors = item_vectors().astype(np.float64)
    users = warm_container.user_embeddings([s | {"creditlimit": s["credit_limit"]} for s in sessions])
    exact_ip = vectordb.exact_scores(users, vectors, "inner_product")
    exact_cos = vectordb.exact_scores(vectors, vectors, "cosine")
    for s, r, scores in zip(sessions, results[:60], exact_ip, strict=True):
        text = base64.b64decode(r["data"]).decode()
        assert text.endswith("\n")
        out = json.loads(text)
        assert {k: out[k] for k in s} == s
        assert [i["id"] for i in out["recommended_items"]] == [ITEMS[j] for j in np.argsort(-scores)[:4]]
        in_cart = [h["product_code"] for h in s["browse_history"] if h["in_shopping_cart"]]
        chosen = (in_cart or [s["browse_history"][0]["product_code"]])[0]
        assert out["similar_items"]["product_code"] == chosen
        row = exact_cos[ITEMS.index(chosen)]
        expected = [ITEMS[j] for j in np.argsort(-row) if ITEMS[j] != chosen][:4]
        assert [n["id"] for n in out["similar_items"]["similar_items"]] == expected
        assert [n["distance"] for n in out["similar_items"]["similar_items"]] == pytest.approx(
            [1 - row[ITEMS.index(code)] for code in expected], abs=1e-5)


def test_an_unreachable_database_raises_so_firehose_retries_and_the_next_batch_reconnects(
    warm_container: Any, vector_db: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    transformation.container.forget_connection()
    monkeypatch.setenv("VECTOR_DB_PORT", "1")  # nothing listens there
    with pytest.raises(psycopg2.OperationalError):
        transformation.handler(firehose_event([session(1, [(ITEMS[0], True)])]), None)

    monkeypatch.setenv("VECTOR_DB_PORT", vector_db["VECTOR_DB_PORT"])
    response = transformation.handler(firehose_event([session(1, [(ITEMS[0], True)])]), None)
    assert [r["result"] for r in response["records"]] == ["Ok"]
