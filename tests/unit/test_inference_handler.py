"""The inference Function URL: the lab's three endpoints, 4xx JSON errors for bad input, 503 when the DB is down."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import inference
import numpy as np
import psycopg2
import pytest
from recsys.model import FeatureError
from recsys.vectordb import QueryInputError

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


def backend_with(model: Any, db: FakeDb) -> Any:
    return lambda: inference.Backend(model, db.items_for_users, db.similar_items)


def serve_raw(backend_factory: Any, body: str, *, base64_encoded: bool = False,
              path: str = "/user_embeddings") -> tuple[int, Any]:
    event = {"rawPath": path, "requestContext": {"http": {"method": "POST"}}, "body": body,
             "isBase64Encoded": base64_encoded}
    response = inference.serve(event, backend_factory)
    return response["statusCode"], json.loads(response["body"])


def call_with(model: Any, db: FakeDb, method: str, path: str, body: Any) -> tuple[int, Any]:
    event = {"rawPath": path, "requestContext": {"http": {"method": method}}, "body": json.dumps(body)}
    response = inference.serve(event, backend_with(model, db))
    return response["statusCode"], json.loads(response["body"])


def padded_users(size: int, char: str = " ") -> str:
    """A valid /user_embeddings body of `size` UTF-8 bytes (one less when a 2-byte `char` does not fit): a long city."""
    head, tail = '[{"city": "', '", "country": "B", "creditlimit": 1}]'
    return head + char * ((size - len(head) - len(tail)) // len(char.encode())) + tail


def test_a_body_of_exactly_6_mb_is_served_and_one_byte_more_is_a_413(db: FakeDb) -> None:
    factory = backend_with(FakeModel(), db)
    limit = inference.MAX_BODY_BYTES
    assert limit == 6_291_456
    assert len(padded_users(limit).encode()) == limit and serve_raw(factory, padded_users(limit))[0] == 200
    status, body = serve_raw(factory, padded_users(limit + 1))
    assert (status, body) == (413, {"error": "the request body is over 6,291,456 bytes, Lambda's request limit; "
                                             "send fewer users per request"})


def test_the_413_counts_utf8_bytes_not_characters_and_applies_to_base64_bodies(db: FakeDb) -> None:
    factory = backend_with(FakeModel(), db)
    limit = inference.MAX_BODY_BYTES
    two_byte = padded_users(limit + 2, "é")  # fewer characters than the limit, more bytes
    assert len(two_byte) < limit < len(two_byte.encode())
    assert serve_raw(factory, two_byte)[0] == 413
    for size, status in ((limit, 200), (limit + 1, 413)):
        encoded = base64.b64encode(padded_users(size).encode()).decode()
        assert serve_raw(factory, encoded, base64_encoded=True)[0] == status, size


class RaisingModel:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def user_embeddings(self, users: list[dict[str, Any]]) -> np.ndarray:
        raise self.error


def test_the_models_feature_error_and_the_searchs_query_error_are_400s(db: FakeDb) -> None:
    users = json.dumps([{"city": "A", "country": "B", "creditlimit": 1}])
    refused = RaisingModel(FeatureError("credit_limit scales outside float32"))
    assert serve_raw(backend_with(refused, db), users) == (400, {"error": "credit_limit scales outside float32"})

    def bad_query(embeddings: Any, k: int) -> Any:
        raise QueryInputError("embeddings must have shape (n, 32)")

    factory = lambda: inference.Backend(FakeModel(), bad_query, db.similar_items)  # noqa: E731
    status, body = serve_raw(factory, json.dumps([0.5] * 32), path="/items_from_user")
    assert (status, body) == (400, {"error": "embeddings must have shape (n, 32)"})


def test_an_unrelated_error_that_only_shares_the_name_is_a_500() -> None:
    # The 400s are by class, not by name: a bug elsewhere that happens to be called FeatureError stays a 500.
    impostor = type("FeatureError", (ValueError,), {})("some internal failure")
    factory = lambda: inference.Backend(RaisingModel(impostor), FakeDb().items_for_users,  # noqa: E731
                                        FakeDb().similar_items)
    status, body = serve_raw(factory, json.dumps({"city": "A", "country": "B", "creditlimit": 1}))
    assert (status, body) == (500, {"error": "internal error; see the function's log"})


class OverflowingModel:
    """A model whose towers overflow float32 for large credit limits, as a real one can."""

    def user_embeddings(self, users: list[dict[str, Any]]) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.asarray([[u["creditlimit"] * 2.0**100] * 32 for u in users], dtype=np.float32)


def test_an_embedding_that_overflows_in_the_model_is_a_400_naming_the_user(db: FakeDb) -> None:
    users = [{"city": "A", "country": "B", "creditlimit": 5}, {"city": "A", "country": "B", "creditlimit": 1e30}]
    status, body = call_with(OverflowingModel(), db, "POST", "/user_embeddings", users)
    assert status == 400
    assert body["error"] == ("user #1: 'creditlimit' is too large for the model (the embedding overflows); "
                             "send a realistic credit limit")
    assert call_with(OverflowingModel(), db, "POST", "/user_embeddings", users[:1]) == (200, [[5 * 2.0**100] * 32])


def test_a_non_finite_distance_from_the_catalogue_is_a_500_never_nan_in_the_body(db: FakeDb) -> None:
    # Not the client's fault (the item vectors are ours): logged as a server error, and the body is still JSON.
    def broken_similar(ids: list[str], k: int) -> list[list[tuple[str, float]]]:
        return [[("S18_3232", float("nan"))]]

    factory = lambda: inference.Backend(FakeModel(), db.items_for_users, broken_similar)  # noqa: E731
    event = {"rawPath": "/items_from_item", "requestContext": {"http": {"method": "GET"}},
             "queryStringParameters": {"item_id": "S12_1108"}}
    response = inference.serve(event, factory)
    assert response["statusCode"] == 500
    assert json.loads(response["body"], parse_constant=lambda name: pytest.fail(name)) == {
        "error": "internal error; see the function's log"}
