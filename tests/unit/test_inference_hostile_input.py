"""The inference Function URL under hostile input, with the real serving model and the real in-memory search.

Whatever a client sends (any JSON value, extreme numbers, deep nesting, huge strings, bytes that are not JSON, any
query string, path or method), the answer is 200, 400, 404, 405 or 413 with a strict JSON body: never a 500, never
NaN or Infinity. The measured bugs of issue 11 item 6 each have a regression test below.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import inference
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from recsys import vectordb
from recsys.model import ServingModel
from recsys.safejson import FLOAT32_MAX

from tests.unit.test_model import _write_bundle

SHARED_MACHINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
ENDPOINTS = ["/user_embeddings", "/items_from_user", "/items_from_item"]
ITEMS = [{"id": f"S{n}_{1000 + n}", "product_line": line, "product_scale": "1:10", "quantity_in_stock": n,
          "buy_price": 40 + n, "msrp": 90 + n} for n, line in enumerate(["Planes", "Ships"] * 4)]
ALLOWED = {200, 400, 404, 405, 413}


def strict_json(text: str) -> Any:
    """`json.loads` as a strict client would: NaN, Infinity and -Infinity are not JSON."""

    def reject(name: str) -> Any:
        raise ValueError(f"{name} in a response body")

    return json.loads(text, parse_constant=reject)


class Search:
    """The search functions of `recsys.vectordb` minus PostgreSQL: its exact in-memory search over item embeddings from
    the real item tower, float32 as on the Lambda; ids PostgreSQL would refuse (NUL, lone surrogates) fail the way
    psycopg2 does."""

    def __init__(self, model: ServingModel) -> None:
        matrix = model.item_embeddings(ITEMS)
        self.catalogue = vectordb.ItemCatalogue(("test", "now"), [i["id"] for i in ITEMS], matrix)

    def items_for_users(self, embeddings: Any, k: int) -> list[list[tuple[str, float]]]:
        rows, scores = vectordb.exact_top_k(np.asarray(embeddings, dtype=np.float64), self.catalogue.matrix, k)
        return [[(self.catalogue.ids[r], float(v)) for r, v in zip(row, score, strict=True)]
                for row, score in zip(rows.tolist(), scores.tolist(), strict=True)]

    def similar_items(self, ids: list[str], k: int) -> list[list[tuple[str, float]]]:
        for item_id in ids:
            if "\x00" in item_id:
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")
            item_id.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate, as psycopg2's
        return vectordb.exact_similar(self.catalogue, ids, k)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ServingModel:
    directory = tmp_path_factory.mktemp("serving")
    _write_bundle(directory)
    return ServingModel.from_dir(directory)


@pytest.fixture(scope="module")
def backend(model: ServingModel) -> inference.Backend:
    search = Search(model)
    return inference.Backend(model, search.items_for_users, search.similar_items)


def request(method: str, path: str, query: dict[str, str] | None = None, body: str | bytes | None = None,
          *, base64_body: bool = False) -> dict[str, Any]:
    if base64_body and body is not None:
        raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        body = base64.b64encode(raw).decode("ascii")
    return {"version": "2.0", "rawPath": path, "requestContext": {"http": {"method": method, "path": path}},
            "queryStringParameters": query, "body": body, "isBase64Encoded": base64_body}


def answer(backend: inference.Backend, request: dict[str, Any]) -> tuple[int, Any]:
    response = inference.serve(request, lambda: backend)
    assert response["headers"] == {"content-type": "application/json"}
    return response["statusCode"], strict_json(response["body"])


# ---- the property ----------------------------------------------------------------------------------------------------
EXTREME_NUMBERS = st.one_of(
    st.integers(min_value=-(10**120), max_value=10**120),  # past 100 digits safejson refuses the literal
    st.floats(allow_nan=False, allow_infinity=False),  # 1e300, 5e-324, ...
    st.sampled_from([FLOAT32_MAX, -FLOAT32_MAX, 3.5e38, 1e39, 1e300, 2**128, 10**38, 3e38, 1e-45, 59811, 0]),
)
# Mostly numbers the model takes, so that requests get through to the model and the search; extreme ones mixed in.
NUMBERS = st.one_of(st.floats(min_value=-1e6, max_value=1e6), st.integers(-(10**6), 10**6), EXTREME_NUMBERS)
TEXT = st.text() | st.text(st.characters(categories=["Cs"]), min_size=1) | st.sampled_from(["Nantes", "USA", ""])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | EXTREME_NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
PLACES = st.fixed_dictionaries({"city": st.sampled_from(["Nantes", "Pasadena"]) | TEXT,
                                 "country": st.sampled_from(["France", "USA"]) | TEXT})
CREDIT = st.one_of(*[st.fixed_dictionaries({key: NUMBERS}) for key in ("creditlimit", "creditlimit", "credit_limit")],
                   st.fixed_dictionaries({"creditlimit": JSON_VALUES}), st.just({}))
USERS = st.lists(st.tuples(PLACES, CREDIT).map(lambda parts: {**parts[0], **parts[1]}), min_size=1, max_size=3)
EMBEDDING = st.lists(st.floats(min_value=-10, max_value=10), min_size=32, max_size=32) | st.lists(
    NUMBERS, min_size=32, max_size=32)
EMBEDDING_BODIES = st.one_of(EMBEDDING, EMBEDDING.map(lambda e: [e]), EMBEDDING.map(lambda e: {"embedding": e}))
# Bodies no JSON encoder writes: Python's json literals, literals too long or too large, deep nesting, huge strings.
RAW_BODIES = st.one_of(
    st.sampled_from(["NaN", "[Infinity]", '[{"city": "A", "country": "B", "creditlimit": -Infinity}]', "1e400",
                     '[{"city": "A", "country": "B", "creditlimit": 1e400}]', "[" + "1" * 5000 + "]",
                     '{"city": "\\ud800", "country": "\\udfff", "creditlimit": 1}', "", "   ", "\x00"]),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.sampled_from([10, 10_000, inference.MAX_BODY_BYTES - 2, inference.MAX_BODY_BYTES - 1])
    .map(lambda n: '"' + "x" * n + '"'),
    st.sampled_from([inference.MAX_BODY_BYTES // 2, inference.MAX_BODY_BYTES // 2 + 1])
    .map(lambda n: "é" * n),  # two UTF-8 bytes a character
    st.text(),
)
BODIES = st.one_of(st.none(), st.one_of(USERS, EMBEDDING_BODIES, JSON_VALUES).map(json.dumps), RAW_BODIES,
                   st.binary(max_size=200))
METHODS = st.sampled_from(["GET", "POST", "post", "PUT", "DELETE", "HEAD"]) | st.text(min_size=1, max_size=10)
PATHS = st.sampled_from(ENDPOINTS + ["/user_embeddings/", "items_from_user", "/", "/items_from_item/x"]) | st.text()
LIMITS = st.one_of(st.integers(1, 100).map(str), st.sampled_from(["101", "0", "²", "٣", "５", "0005", "9" * 40, "-1",
                                                                   " 5", ""]), TEXT)
ITEM_IDS = st.one_of(st.sampled_from([i["id"] for i in ITEMS]), TEXT,
                     st.sampled_from([ITEMS[1]["id"] + "\x00", "S1\ud800", " S0_1000 ", "S0_1000 \n", "\x00"]))
QUERIES = st.none() | st.dictionaries(st.sampled_from(["limit", "item_id"]) | st.text(), LIMITS | ITEM_IDS,
                                      max_size=3)
# Requests aimed at an endpoint: its method, a body of roughly its shape and its query parameters, any values.
SHAPED = {
    "/user_embeddings": (st.one_of(USERS, USERS.map(lambda users: users[0])).map(json.dumps), QUERIES),
    "/items_from_user": (EMBEDDING_BODIES.map(json.dumps),
                         st.none() | st.fixed_dictionaries({}, optional={"limit": LIMITS})),
    "/items_from_item": (st.none(), st.fixed_dictionaries({"item_id": ITEM_IDS}, optional={"limit": LIMITS})),
}


def body_bytes(body: str | bytes | None) -> int:
    if body is None:
        return 0
    return len(body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))


@settings(max_examples=400, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(data=st.data(), base64_flag=st.booleans())
def test_no_client_input_gets_a_500_or_a_body_that_is_not_strict_json(
    backend: inference.Backend, model: ServingModel, data: st.DataObject, base64_flag: bool
) -> None:
    aim = data.draw(st.sampled_from(["endpoint and shape", "endpoint", "anything"]), label="aimed at")
    if aim != "anything":
        # An endpoint with its method; its body and query of roughly the right shape (any values), or anything.
        path = data.draw(st.sampled_from(ENDPOINTS), label="path")
        method = "GET" if path == "/items_from_item" else "POST"
        shaped = aim == "endpoint and shape"
        body = data.draw(SHAPED[path][0] if shaped else BODIES, label="body")
        query = data.draw(SHAPED[path][1] if shaped else QUERIES, label="query")
    else:
        method = data.draw(METHODS, label="method")
        path = data.draw(PATHS, label="path")
        body = data.draw(BODIES, label="body")
        query = data.draw(QUERIES, label="query")
    base64_body = base64_flag or isinstance(body, bytes)
    status, payload = answer(backend, request(method, path, query, body, base64_body=base64_body))

    route = "/" + path.strip("/")
    event(f"{route if status != 404 or route in ENDPOINTS else 'other path'}: {status}")  # for the statistics
    assert status in ALLOWED
    # Exactly the bodies over Lambda's limit are 413, counted in bytes.
    assert (status == 413) == (body_bytes(body) > inference.MAX_BODY_BYTES)
    if status != 200:
        assert set(payload) == {"error"} and isinstance(payload["error"], str) and payload["error"]
        return
    assert isinstance(payload, list)
    if route == "/user_embeddings":
        sent = json.loads(body if isinstance(body, str) else (body or b"").decode())
        users = [sent] if isinstance(sent, dict) else sent
        # The embeddings of the users as sent, in order (the credit limit under either spelling).
        assert payload == model.user_embeddings(users).tolist()
    elif route == "/items_from_user":
        scores = [item["score"] for item in payload]
        assert {item["id"] for item in payload} <= {i["id"] for i in ITEMS}
        assert scores == sorted(scores, reverse=True) and len(payload) >= 1
    else:
        distances = [item["distance"] for item in payload]
        assert {item["id"] for item in payload} <= {i["id"] for i in ITEMS} - {(query or {}).get("item_id")}
        assert distances == sorted(distances) and all(-1e-6 <= d <= 2.0 + 1e-6 for d in distances)


# ---- the measured bugs of issue 11, item 6 ---------------------------------------------------------------------------
def test_a_credit_limit_beyond_float32_is_a_400_naming_the_field_not_a_200_with_nan(backend: inference.Backend) -> None:
    # 1e300 is a finite float64 but inf in float32: it used to come back as an embedding of NaN (not JSON).
    for credit in ("1e300", "3.5e38", "1" + "0" * 99):
        body = f'[{{"city": "Nantes", "country": "France", "creditlimit": 1}}, {{"city": "Nantes", "country": ' \
               f'"France", "creditlimit": {credit}}}]'
        status, payload = answer(backend, request("POST", "/user_embeddings", body=body))
        assert status == 400, credit
        assert payload["error"].startswith("user #1: 'creditlimit' must be a finite number"), credit


def test_the_largest_float32_credit_limit_still_gets_a_finite_embedding(backend: inference.Backend,
                                                                       model: ServingModel) -> None:
    user = {"city": "Nantes", "country": "France", "creditlimit": FLOAT32_MAX}
    status, payload = answer(backend, request("POST", "/user_embeddings", body=json.dumps([user])))
    assert status == 200
    np.testing.assert_array_equal(np.asarray(payload, dtype=np.float32), model.user_embeddings([user]))


def test_an_integer_credit_limit_of_400_digits_is_a_400_not_an_overflow_500(backend: inference.Backend) -> None:
    body = '[{"city": "Nantes", "country": "France", "creditlimit": 1' + "0" * 400 + "}]"
    status, payload = answer(backend, request("POST", "/user_embeddings", body=body))
    assert (status, payload["error"]) == (400, "the body is not JSON this API accepts: an integer literal has 401 "
                                               "digits (at most 100 are accepted)")
    # The validation itself never converts such an integer to a float unguarded (that was the OverflowError).
    with pytest.raises(inference.BadRequest, match="'creditlimit' must be a finite number"):
        inference._users([{"city": "Nantes", "country": "France", "creditlimit": 10**400}])


def test_an_integer_literal_past_pythons_4300_digit_limit_is_a_400(backend: inference.Backend) -> None:
    status, payload = answer(backend, request("POST", "/items_from_user", body="[" + "7" * 4301 + "]"))
    assert status == 400 and "an integer literal has 4301 digits" in payload["error"]


def test_embedding_values_beyond_float32_are_a_400_not_a_nan_score(backend: inference.Backend) -> None:
    status, payload = answer(backend, request("POST", "/items_from_user", body=json.dumps([1e39] * 32)))
    assert status == 400
    assert payload["error"].startswith("the embedding's values must be finite numbers, each a number of magnitude "
                                       "at most 3.4e38")


def test_an_embedding_whose_scores_overflow_float32_is_a_400(backend: inference.Backend) -> None:
    # Each value fits float32; the inner products do not. The search answers inf or NaN: the input's fault, a 400.
    status, payload = answer(backend, request("POST", "/items_from_user", {"limit": "3"}, json.dumps([3e38] * 32)))
    assert status == 400
    assert payload["error"].startswith("the embedding's values are so large that the scores overflow")


@pytest.mark.parametrize("limit", ["²", "٣", "５", "³²", "1²"])
def test_a_limit_of_unicode_digits_is_a_400_not_a_500(backend: inference.Backend, limit: str) -> None:
    # str.isdigit() accepts these and int() refuses them: that was a ValueError, a 500.
    for call in (request("GET", "/items_from_item", {"item_id": ITEMS[0]["id"], "limit": limit}),
                 request("POST", "/items_from_user", {"limit": limit}, json.dumps([0.5] * 32))):
        status, payload = answer(backend, call)
        assert status == 400
        assert payload["error"] == f"limit must be an integer from 1 to 100, got {limit!r}"


def test_a_long_limit_is_refused_before_it_is_converted(backend: inference.Backend) -> None:
    status, payload = answer(backend, request("GET", "/items_from_item", {"item_id": "S0_1000", "limit": "0" * 5000}))
    assert status == 400 and payload["error"].endswith("got '" + "0" * 60 + "'... (5000 characters)")


def test_json_nested_100000_deep_is_a_400_not_a_recursion_error(backend: inference.Backend) -> None:
    for path in ("/user_embeddings", "/items_from_user"):
        status, payload = answer(backend, request("POST", path, body="[" * 100_000 + "]" * 100_000))
        assert (status, payload) == (400, {"error": "the body is not JSON this API accepts: JSON nested too deeply"})


def test_an_item_id_postgresql_would_refuse_is_a_404_without_a_query(backend: inference.Backend) -> None:
    for item_id in (ITEMS[0]["id"] + "\x00", "S1\ud800"):
        status, payload = answer(backend, request("GET", "/items_from_item", {"item_id": item_id}))
        assert (status, payload) == (404, {"error": f"item {item_id!r} is not in the item catalogue"})


def test_a_known_item_gets_its_nearest_neighbours(backend: inference.Backend, model: ServingModel) -> None:
    status, payload = answer(backend, request("GET", "/items_from_item", {"item_id": ITEMS[0]["id"], "limit": "3"}))
    vectors = model.item_embeddings(ITEMS).astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distances = 1.0 - unit[1:] @ unit[0]
    expected = [ITEMS[1 + i]["id"] for i in np.argsort(distances, kind="stable")[:3]]
    assert status == 200
    assert [item["id"] for item in payload] == expected
    assert [item["distance"] for item in payload] == pytest.approx(np.sort(distances)[:3], abs=1e-5)
