"""The inference Function URL: the lab's three endpoints, 4xx JSON errors for bad input, 503 when the DB is down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import inference
import numpy as np
import psycopg2
import pytest

EVENTS = Path(__file__).resolve().parents[1] / "events"
CATALOGUE = ["S12_1108", "S18_3232", "S24_2000", "S10_1678", "S700_2824", "S32_1374"]


class FakeModel:
    def user_embeddings(self, users: list[dict[str, Any]]) -> np.ndarray:
        return np.asarray([[u["creditlimit"] / 1e5] * 32 for u in users], dtype=np.float32)


class FakeDb:
    def __init__(self) -> None:
        self.down = False

    def items_for_users(self, embeddings: Any, k: int) -> list[list[tuple[str, float]]]:
        if self.down:
            raise psycopg2.OperationalError("server closed the connection unexpectedly")
        return [[(code, float(sum(e)) - i) for i, code in enumerate(CATALOGUE[:k])] for e in embeddings]

    def similar_items(self, ids: list[str], k: int) -> list[list[tuple[str, float]]]:
        if self.down:
            raise psycopg2.OperationalError("could not connect to server")
        return [[(c, 0.9 - 0.1 * i) for i, c in enumerate([c for c in CATALOGUE if c != x][:k])]
                if x in CATALOGUE else [] for x in ids]


@pytest.fixture
def db() -> FakeDb:
    return FakeDb()


def call(db: FakeDb, method: str, path: str, query: dict[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
    event = {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {"http": {"method": method, "path": path}},
        "queryStringParameters": query,
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }
    response = inference.serve(event, lambda: inference.Backend(FakeModel(), db.items_for_users, db.similar_items))
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_user_embeddings_answers_one_32_number_embedding_per_user(db: FakeDb) -> None:
    users = [{"city": "Pasadena", "country": "USA", "creditlimit": 50000},
             {"city": "Nantes", "country": "France", "creditlimit": 21000.5}]
    status, body = call(db, "POST", "/user_embeddings", body=users)
    assert status == 200
    assert len(body) == 2 and all(len(e) == 32 for e in body)
    assert body[0][0] == pytest.approx(0.5)


def test_items_from_user_takes_the_answer_of_user_embeddings_as_is(db: FakeDb) -> None:
    _, embeddings = call(db, "POST", "/user_embeddings", body=[{"city": "A", "country": "B", "creditlimit": 1}])
    status, items = call(db, "POST", "/items_from_user", {"limit": "3"}, body=embeddings)
    assert status == 200
    assert [set(i) for i in items] == [{"id", "score"}] * 3
    assert call(db, "POST", "/items_from_user", {"limit": "2"}, body=embeddings[0])[1] == items[:2]


def test_items_from_item_answers_neighbours_with_distances_closest_first(db: FakeDb) -> None:
    event = json.loads((EVENTS / "function_url_items_from_item.json").read_text())
    response = inference.serve(event, lambda: inference.Backend(FakeModel(), db.items_for_users, db.similar_items))
    assert response["statusCode"] == 200
    items = json.loads(response["body"])
    assert [i["id"] for i in items] == ["S18_3232", "S24_2000", "S10_1678"]
    assert [i["distance"] for i in items] == pytest.approx([0.1, 0.2, 0.3])


def test_a_base64_body_from_the_function_url_is_decoded(db: FakeDb) -> None:
    event = json.loads((EVENTS / "function_url_user_embeddings.json").read_text())
    response = inference.serve(event, lambda: inference.Backend(FakeModel(), db.items_for_users, db.similar_items))
    assert response["statusCode"] == 200 and len(json.loads(response["body"])) == 1


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "status", "message"),
    [
        ("POST", "/user_embeddings", None, "{not json", 400, "not valid JSON"),
        ("POST", "/user_embeddings", None, None, 400, "needs a JSON body"),
        ("POST", "/user_embeddings", None, [{"city": "A", "country": "B"}], 400, "'creditlimit' must be a finite"),
        ("POST", "/user_embeddings", None, [{"city": 1, "country": "B", "creditlimit": 3}], 400, "'city' must be"),
        ("POST", "/items_from_user", {"limit": "5"}, [1.0] * 31, 400, "a list of 32 finite numbers"),
        ("POST", "/items_from_user", {"limit": "zero"}, [1.0] * 32, 400, "limit must be an integer from 1 to 100"),
        ("POST", "/items_from_user", {"limit": "500"}, [1.0] * 32, 400, "limit must be an integer from 1 to 100"),
        ("GET", "/items_from_item", {"limit": "5"}, None, 400, "item_id is required"),
        ("GET", "/items_from_item", {"item_id": "NOPE"}, None, 404, "'NOPE' is not in the item catalogue"),
        ("GET", "/user_embeddings", None, None, 405, "/user_embeddings answers POST, not GET"),
        ("GET", "/recommendations", None, None, 404, "no such endpoint /recommendations"),
    ],
)
def test_bad_input_gets_a_4xx_json_error_that_says_what_to_send(
    db: FakeDb, method: str, path: str, query: Any, body: Any, status: int, message: str
) -> None:
    got_status, got = call(db, method, path, query, body)
    assert got_status == status
    assert message in got["error"]


def test_an_unreachable_database_answers_503_so_clients_retry(db: FakeDb) -> None:
    db.down = True
    status, body = call(db, "GET", "/items_from_item", {"item_id": "S12_1108"})
    assert status == 503 and "retry" in body["error"]
