"""The transformation function's promises, proven on arbitrary batches with an injected model and database.

Firehose's contract: every recordId back exactly once, `result` one of three words, `data` valid base64. Ours on top:
a bad record fails alone, a good one is the input plus recommendations as one JSON line, and a batch costs a fixed
number of database calls. A test against the real PostgreSQL lives in tests/integration/test_streaming.py.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import transformation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recsys import firehose

ROOT = Path(__file__).resolve().parents[2]

# Generation speed depends on the neighbours' load on a shared CI machine; it says nothing about the code under test.
SHARED_MACHINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
CATALOGUE = [f"S{line}_{n:04d}" for line in (10, 12, 18, 24) for n in range(1000, 1012)]
EVENTS = ROOT / "tests" / "events"


class FakeModel:
    """Embeds users deterministically from their features, counting calls (one per batch is the promise)."""

    def __init__(self) -> None:
        self.calls = 0

    def user_embeddings(self, users: list[dict[str, Any]]) -> np.ndarray:
        self.calls += 1
        rows = []
        for user in users:
            seed = abs(hash((user["city"], user["country"], round(user["creditlimit"], 2)))) % (2**32)
            rows.append(np.random.default_rng(seed).standard_normal(32))
        return np.asarray(rows, dtype=np.float32).reshape(len(users), 32)


class FakeVectorDb:
    """The query layer's two batch calls over an in-memory catalogue; `down` makes every call fail as a dead DB."""

    def __init__(self, catalogue: list[str] = CATALOGUE) -> None:
        self.catalogue = catalogue
        self.items = np.random.default_rng(7).standard_normal((len(catalogue), 32)).astype(np.float32)
        self.round_trips = 0
        self.down = False

    def _trip(self) -> None:
        self.round_trips += 1
        if self.down:
            raise ConnectionError("could not connect to server: Connection refused")

    def items_for_users(self, embeddings: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        self._trip()
        scores = embeddings @ self.items.T
        out = []
        for row in scores:
            top = np.argsort(-row)[:k]
            out.append([(self.catalogue[i], float(row[i])) for i in top])
        return out

    def similar_items(self, item_ids: list[str], k: int) -> list[list[tuple[str, float]]]:
        """As recsys.vectordb: per id in order, the k most cosine-similar others; [] for an unknown id."""
        self._trip()
        index = {code: i for i, code in enumerate(self.catalogue)}
        unit = self.items / np.linalg.norm(self.items, axis=1, keepdims=True)
        out: list[list[tuple[str, float]]] = []
        for code in item_ids:
            if code not in index:
                out.append([])
                continue
            similarity = unit @ unit[index[code]]
            order = [i for i in np.argsort(-similarity) if i != index[code]][:k]
            out.append([(self.catalogue[i], float(similarity[i])) for i in order])
        return out


def encode(payload: Any) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def decode_line(data: str) -> dict[str, Any]:
    text = base64.b64decode(data, validate=True).decode()
    assert text.endswith("\n") and text.count("\n") == 1, "each delivered record is exactly one JSON line"
    return json.loads(text)


def run(records: list[tuple[str, Any]], db: FakeVectorDb | None = None, model: FakeModel | None = None, k: int = 5):
    db = db or FakeVectorDb()
    return transformation.transform_batch(
        records,
        model=model or FakeModel(),
        items_for_users=db.items_for_users,
        similar_items=db.similar_items,
        k=k,
    )


history_items = st.fixed_dictionaries(
    {
        "product_code": st.sampled_from(CATALOGUE),
        "quantity": st.integers(1, 20).map(str),
        "in_shopping_cart": st.booleans(),
    }
)
sessions = st.fixed_dictionaries(
    {
        "session_id": st.uuids().map(str),
        "customer_number": st.integers(100, 10_000),
        "city": st.sampled_from(["Pasadena", "Nantes", "Madrid", "São Paulo", "Singapore"]),
        "country": st.sampled_from(["USA", "France", "Spain", "Brazil", "Singapore"]),
        "credit_limit": st.one_of(st.integers(0, 250_000), st.floats(0, 250_000, allow_nan=False)),
        "browse_history": st.lists(history_items, min_size=1, max_size=6),
    }
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def broken_sessions(draw: st.DrawFn) -> dict[str, Any]:
    """A valid session with one thing wrong: a field missing, a field of the wrong type, or an empty history."""
    session = draw(sessions)
    how = draw(st.sampled_from(["drop", "retype", "empty_history", "bad_history_item", "unknown_product"]))
    field = draw(st.sampled_from(sorted(session)))
    if how == "drop":
        del session[field]
    elif how == "retype":
        session[field] = draw(st.sampled_from([None, True, [], {}, "x" if field != "city" else 3]))
        if field in ("city", "country", "session_id") and isinstance(session[field], str):
            session[field] = 3
    elif how == "empty_history":
        session["browse_history"] = []
    elif how == "bad_history_item":
        item = dict(session["browse_history"][0])
        key = draw(st.sampled_from(["product_code", "quantity", "in_shopping_cart"]))
        item[key] = draw(st.sampled_from([None, 7, "", "seven", "true"]))
        if key == "in_shopping_cart" and isinstance(item[key], str):
            item[key] = "true"
        session["browse_history"] = [item, *session["browse_history"][1:]]
    else:
        session["browse_history"] = [{"product_code": "NOPE_0000", "quantity": "1", "in_shopping_cart": True}]
    return session


record_data = st.one_of(
    sessions.map(encode),
    broken_sessions().map(encode),
    json_values.map(encode),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.text(max_size=40),
    st.none(),
    st.integers(),
)
batches = st.lists(record_data, max_size=40).map(
    lambda datas: [(f"record-{i:05d}", data) for i, data in enumerate(datas)]
)


@settings(max_examples=150, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(batch=batches)
def test_every_record_id_comes_back_exactly_once_with_a_valid_result_and_base64(batch: list[tuple[str, Any]]) -> None:
    out = run(batch)
    assert [entry.record_id for entry in out] == [record_id for record_id, _ in batch]
    for entry in out:
        assert entry.result in firehose.RESULTS
        base64.b64decode(entry.asdict()["data"], validate=True)


@settings(max_examples=100, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(batch=batches)
def test_a_record_is_ok_exactly_when_it_is_a_valid_session_with_a_known_product(batch: list[tuple[str, Any]]) -> None:
    out = run(batch)
    for (_, data), entry in zip(batch, out, strict=True):
        try:
            session = firehose.decode_session(data)
            chosen = firehose.choose_history_product(session.browse_history)
            expected = "Ok" if chosen in CATALOGUE else "ProcessingFailed"
        except firehose.InvalidRecord:
            expected = "ProcessingFailed"
        assert entry.result == expected
        if expected == "ProcessingFailed":
            assert entry.reason


@settings(max_examples=100, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(batch=st.lists(sessions, min_size=1, max_size=30), k=st.integers(1, 10))
def test_delivered_record_is_the_input_plus_k_recommendations_and_neighbours_of_the_chosen_product(
    batch: list[dict[str, Any]], k: int
) -> None:
    out = run([(f"r{i}", encode(s)) for i, s in enumerate(batch)], k=k)
    for session, entry in zip(batch, out, strict=True):
        assert entry.result == "Ok"
        delivered = decode_line(entry.data)
        assert {key: delivered[key] for key in session} == session
        assert len(delivered["recommended_items"]) == k
        assert all(set(item) == {"id", "score"} and item["id"] in CATALOGUE for item in delivered["recommended_items"])
        similar = delivered["similar_items"]
        in_cart = [h["product_code"] for h in session["browse_history"] if h["in_shopping_cart"]]
        assert similar["product_code"] == (in_cart or [session["browse_history"][0]["product_code"]])[0]
        assert len(similar["similar_items"]) == k
        assert all(n["id"] != similar["product_code"] for n in similar["similar_items"])
        distances = [n["distance"] for n in similar["similar_items"]]
        assert distances == sorted(distances) and all(0.0 <= d <= 2.0 for d in distances), "closest first"


@settings(max_examples=30, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(batch=st.lists(sessions, min_size=1, max_size=60))
def test_a_batch_costs_one_model_call_and_two_database_round_trips_whatever_its_size(
    batch: list[dict[str, Any]],
) -> None:
    db, model = FakeVectorDb(), FakeModel()
    run([(f"r{i}", encode(s)) for i, s in enumerate(batch)], db=db, model=model)
    assert model.calls == 1
    assert db.round_trips == 2


def test_a_batch_of_only_bad_records_never_touches_the_database() -> None:
    db = FakeVectorDb()
    db.down = True
    out = run([("a", "%%%"), ("b", encode({"session_id": "x"}))], db=db)
    assert [entry.result for entry in out] == ["ProcessingFailed", "ProcessingFailed"]
    assert db.round_trips == 0


def test_an_unreachable_database_fails_the_whole_batch_so_firehose_retries_it() -> None:
    db = FakeVectorDb()
    db.down = True
    with pytest.raises(ConnectionError):
        run([("a", encode({**_lab_session(), "session_id": "s-1"}))], db=db)


def _lab_session() -> dict[str, Any]:
    return {
        "session_id": "6f1c2a4e-8b7d-4c55-9a0e-2f3b1d9c7e10",
        "customer_number": 478,
        "city": "Pasadena",
        "country": "USA",
        "credit_limit": 59811,
        "browse_history": [
            {"product_code": CATALOGUE[3], "quantity": "7", "in_shopping_cart": False},
            {"product_code": CATALOGUE[5], "quantity": "2", "in_shopping_cart": True},
        ],
    }


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s.pop("city"), "missing field 'city'"),
        (lambda s: s.update(customer_number="478"), "field 'customer_number' must be an integer, got str"),
        (lambda s: s.update(credit_limit=True), "field 'credit_limit' must be a number, got a boolean"),
        (lambda s: s.update(browse_history=[]), "field 'browse_history' is empty"),
        (
            lambda s: s["browse_history"][1].update(quantity=2),
            "browse_history[1]: field 'quantity' must be a string of digits, got int",
        ),
        (
            lambda s: s["browse_history"][0].update(in_shopping_cart="yes"),
            "browse_history[0]: field 'in_shopping_cart' must be a boolean, got str",
        ),
        (lambda s: s.update(session_id=""), "field 'session_id' must be 1 to 256 characters long"),
        (lambda s: s.update(session_id="s" * 257), "field 'session_id' must be 1 to 256 characters long"),
        (
            lambda s: s["browse_history"][0].update(product_code="S10_1678-EXTENDED"),
            "browse_history[0]: field 'product_code' is longer than 15 characters",
        ),
        (
            lambda s: s.update(credit_limit=1e300),
            "field 'credit_limit' must be a finite number within float32 range (|x| <= 3.4e38)",
        ),
        (
            lambda s: s.update(credit_limit=10**50),
            "field 'credit_limit' must be a finite number within float32 range (|x| <= 3.4e38)",
        ),
    ],
)
def test_an_invalid_session_fails_alone_with_a_reason_that_names_the_field_not_the_customer(mutate, reason) -> None:
    bad = _lab_session()
    mutate(bad)
    out = run([("bad", encode(bad)), ("good", encode(_lab_session()))])
    assert [entry.result for entry in out] == ["ProcessingFailed", "Ok"]
    assert out[0].reason is not None and out[0].reason.startswith(reason)
    assert "Pasadena" not in out[0].reason and "59811" not in out[0].reason


def test_not_base64_and_not_json_are_named_as_such() -> None:
    out = run([("a", "not base64!"), ("b", base64.b64encode(b"{oops").decode()), ("c", encode([1, 2]))])
    assert [entry.reason for entry in out] == [
        "the record's data is not valid base64",
        "the record's data is not JSON: Expecting property name enclosed in double quotes at position 1",
        "the record must be a JSON object, got list",
    ]
    for entry in out:
        try:
            base64.b64decode(entry.data, validate=True)
        except binascii.Error:  # pragma: no cover - the assertion below explains
            pytest.fail(f"ProcessingFailed entry {entry.record_id} carries invalid base64")


def test_the_recorded_firehose_event_gets_a_response_firehose_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    event = json.loads((EVENTS / "firehose_sessions.json").read_text())
    db = FakeVectorDb(catalogue=["S12_1108", "S18_3232", "S24_2000", "S10_1678", "S700_2824", "S32_1374"])
    monkeypatch.setattr(transformation.container, "model", FakeModel())
    monkeypatch.setattr(transformation.container, "conn", object())
    monkeypatch.setattr(transformation, "_database_calls", lambda conn: (db.items_for_users, db.similar_items))
    monkeypatch.setenv("TOP_K", "3")

    response = transformation.handler(event, None)

    assert set(response) == {"records"}
    assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
    assert [r["result"] for r in response["records"]] == ["Ok", "Ok", "ProcessingFailed", "ProcessingFailed"]
    first = decode_line(response["records"][0]["data"])
    assert first["similar_items"]["product_code"] == "S18_3232"  # the one in the cart, not the first browsed
    assert len(first["recommended_items"]) == 3


def test_top_k_comes_from_the_environment_and_a_typo_is_a_clear_error() -> None:
    assert transformation.top_k_from_env({}) == 5
    assert transformation.top_k_from_env({"TOP_K": "12"}) == 12
    with pytest.raises(ValueError, match="TOP_K must be an integer from 1 to 100, got 'five'"):
        transformation.top_k_from_env({"TOP_K": "five"})


def test_nan_or_infinity_in_a_record_fails_that_record_instead_of_the_whole_batch() -> None:
    text = json.dumps({**_lab_session(), "score": float("nan")})  # Python writes NaN; JSON has no such number
    out = run([("nan", base64.b64encode(text.encode()).decode()), ("good", encode(_lab_session()))])
    assert [entry.result for entry in out] == ["ProcessingFailed", "Ok"]
    assert out[0].reason == "the record's data is not JSON: NaN is not a JSON number"


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(_lab_session()),
        json.dumps(_lab_session(), indent=2),  # pretty-printed: newlines inside would break JSON Lines
        json.dumps({**_lab_session(), "recommended_items": ["stale"]}),  # ours replace a producer's own field
        "  " + json.dumps(_lab_session(), ensure_ascii=False) + " \n",
    ],
)
def test_a_delivered_record_is_always_one_json_line_equal_to_the_input_plus_our_fields(text: str) -> None:
    (entry,) = run([("r", base64.b64encode(text.encode()).decode())], k=2)
    delivered = decode_line(entry.data)
    expected = json.loads(text)
    assert {k: v for k, v in delivered.items() if k not in ("recommended_items", "similar_items")} == {
        k: v for k, v in expected.items() if k not in ("recommended_items", "similar_items")}
    assert len(delivered["recommended_items"]) == 2 and delivered["recommended_items"] != ["stale"]
    assert delivered["similar_items"]["product_code"] == CATALOGUE[5]


@settings(max_examples=300, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(payload=st.one_of(sessions, broken_sessions(), json_values))
def test_the_fast_path_accepts_exactly_what_the_field_by_field_checks_accept(payload: Any) -> None:
    try:
        expected: Any = firehose.checked_session(payload)
    except firehose.InvalidRecord:
        expected = None
    fast = firehose._well_formed_session(payload, None) if type(payload) is dict else None
    assert fast == expected


# ---- our two fields, written by hand ---------------------------------------------------------------------------------
def _rounded(value: float) -> float:
    return float(f"{value:.9g}")


@settings(max_examples=200, deadline=None)
@given(items=st.lists(st.tuples(st.text(), st.floats(allow_nan=False, allow_infinity=False)), max_size=6),
       code=st.text())
def test_the_hand_written_fields_are_json_of_the_items_with_numbers_to_9_significant_digits(
    items: list[tuple[str, float]], code: str
) -> None:
    recommended = firehose.recommended_json([firehose.ScoredItem(i, s) for i, s in items])
    similar = firehose.similar_json(code, [firehose.NeighbourItem(i, d) for i, d in items])

    assert json.loads(recommended) == [{"id": i, "score": _rounded(s)} for i, s in items]
    assert json.loads(similar) == {"product_code": code,
                                   "similar_items": [{"id": i, "distance": _rounded(d)} for i, d in items]}
    # Always a JSON float (2.0, never 2), so a score's type never changes from one record to the next.
    assert all(type(item["score"]) is float for item in json.loads(recommended))


@settings(max_examples=500, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.floats(width=32, allow_nan=False,
                                                                          allow_infinity=False))
def test_a_number_is_at_most_16_characters_and_every_float32_survives_it(value: float) -> None:
    text = firehose._json_number(value)
    assert len(text) <= firehose.MAX_NUMBER_CHARS
    assert json.loads(text) == _rounded(value)
    as_float32 = float(np.float32(value)) if abs(value) <= 3.4028234663852886e38 else None
    if as_float32 is not None:
        assert np.float32(json.loads(firehose._json_number(as_float32))) == np.float32(as_float32)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_score_fails_the_record_with_a_reason(bad: float) -> None:
    with pytest.raises(firehose.InvalidRecord, match="score or distance is not a finite number"):
        firehose.recommended_json([firehose.ScoredItem("S1", bad)])


def test_a_pretty_printed_record_is_delivered_as_its_own_text_on_one_line_never_longer_than_it_came() -> None:
    session = {**_lab_session(), "amounts": "__AMOUNTS__"}
    # Literals json.dumps would write longer (1000000000000000.0): re-serializing could outgrow the response bound.
    text = json.dumps(session, indent=2).replace('"__AMOUNTS__"', "[1e15, 2E-7, 1.50]")
    (entry,) = run([("r", base64.b64encode(text.encode()).decode())], k=3)
    line = base64.b64decode(entry.data).decode()
    assert entry.result == "Ok"
    assert line.startswith(text.replace("\n", " ")[:-1] + ',"recommended_items":')
    assert decode_line(entry.data)["amounts"] == [1e15, 2e-7, 1.5]
    assert len(line) <= len(text) + firehose.max_enrichment_bytes(3)
