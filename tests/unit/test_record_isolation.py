"""Nothing in a record's content fails its batch (issue 11, item 2).

Poison records (any JSON value, extreme numbers, huge integer literals, deep nesting, huge strings, invalid UTF-8, data
that is not base64) are mixed into batches of valid sessions and run through `transformation.transform_batch` with the
real `ServingModel` (the bundle of tests/unit/test_model.py) and the in-memory catalogue of test_transformation.py:
every valid record comes back Ok with its recommendations, every poison ProcessingFailed, every recordId once.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import transformation
from hypothesis import given, settings
from hypothesis import strategies as st
from recsys import firehose
from recsys.model import FeatureError, ServingModel

from tests.unit.test_model import bundle_spec, write_bundle
from tests.unit.test_transformation import (
    CATALOGUE,
    SHARED_MACHINE,
    FakeModel,
    FakeVectorDb,
    broken_sessions,
    decode_line,
    encode,
    json_values,
    sessions,
)

K = 4
# The bundle's credit_limit scale is tiny, so that values a session may carry (finite in float32) still reach the
# model's own checks: a scaled value beyond float32 (MODEL_INPUT_POISON) and layers that overflow (MODEL_OUTPUT_POISON).
TINY_SCALE = 1e-4
MODEL_INPUT_POISON = 1e35  # scaled: 1e39, beyond float32
MODEL_OUTPUT_POISON = 3e34  # scaled: 3e38, a float32, but the first layer overflows it


def _model(directory: Path) -> ServingModel:
    spec = bundle_spec()
    spec["towers"]["user"]["numeric"][0]["scale"] = TINY_SCALE
    write_bundle(directory, spec)
    return ServingModel.from_dir(directory)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ServingModel:
    return _model(tmp_path_factory.mktemp("bundle"))


def _user(credit_limit: float) -> dict[str, Any]:
    return {"city": "Nantes", "country": "France", "credit_limit": credit_limit}


def test_the_model_level_poisons_are_refused_by_the_model_itself(model: ServingModel) -> None:
    """The premise of the tests below: these credit limits pass the record's checks and fail in the model."""
    for value, feature in ((MODEL_INPUT_POISON, "credit_limit"), (MODEL_OUTPUT_POISON, None)):
        assert firehose.decode_session(encode({**_session(0), "credit_limit": value})).credit_limit == value
        with pytest.raises(FeatureError) as raised:
            model.user_embeddings([_user(value)])
        assert raised.value.feature == feature
    assert np.isfinite(model.user_embeddings([_user(250_000.0), _user(-0.0)])).all()


def _session(i: int) -> dict[str, Any]:
    return {
        "session_id": f"session-{i:04d}",
        "customer_number": 100 + i,
        "city": ["Nantes", "Pasadena", "Madrid"][i % 3],
        "country": ["France", "USA", "Spain"][i % 3],
        "credit_limit": 1000.0 * (i % 17),
        "browse_history": [{"product_code": CATALOGUE[i % len(CATALOGUE)], "quantity": "1", "in_shopping_cart": True}],
    }


def _text_data(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _with_literal(session: dict[str, Any], field: str, literal: str) -> str:
    """The session's compact JSON with `field` written as `literal` (json.dumps cannot write 10**400 or 1e15)."""
    text = json.dumps({**session, field: "__LITERAL__"}, separators=(",", ":"))
    return _text_data(text.replace('"__LITERAL__"', literal))


# (poison data, the reason its record fails with)
POISONS = {
    "credit_limit 10**400": (
        _with_literal(_session(0), "credit_limit", str(10**400)),
        "the record's data is not JSON: an integer literal has 401 digits (at most 100 are accepted)"),
    "an integer literal of 4,301 digits": (
        _with_literal(_session(0), "customer_number", "9" * 4301),
        "the record's data is not JSON: an integer literal has 4301 digits (at most 100 are accepted)"),
    "credit_limit 1e300": (
        encode({**_session(0), "credit_limit": 1e300}),
        "field 'credit_limit' must be a finite number within float32 range (|x| <= 3.4e38)"),
    "credit_limit 1e400": (
        _with_literal(_session(0), "credit_limit", "1e400"),
        "the record's data is not JSON: a number literal is too large for a 64-bit float"),
    "a credit_limit the model cannot scale": (
        encode({**_session(0), "credit_limit": MODEL_INPUT_POISON}),
        "the model cannot use this session's credit_limit: out of the range it computes in (a finite float32 once "
        "scaled)"),
    "a credit_limit whose embedding overflows": (
        encode({**_session(0), "credit_limit": MODEL_OUTPUT_POISON}),
        "the model's embedding of this session's city, country and credit_limit is not finite (values far outside "
        "what it was trained on)"),
    "nesting 100,000 deep": (_text_data("[" * 100_000 + "]" * 100_000),
                             "the record's data is not JSON: JSON nested too deeply"),
    "invalid UTF-8": (base64.b64encode(b'{"session_id": "\xff\xfe"}').decode(), "the record's data is not UTF-8 text"),
    "not base64": ("session=1;credit=10**400", "the record's data is not valid base64"),
}


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_one_poison_among_99_valid_records_fails_alone(model: ServingModel, poison: str) -> None:
    data, reason = POISONS[poison]
    valid = [_session(i) for i in range(99)]
    records = [(f"r{i:03d}", encode(s)) for i, s in enumerate(valid)]
    records.insert(42, ("poison", data))
    db = FakeVectorDb()

    out = transformation.transform_batch(records, model=model, items_for_users=db.items_for_users,
                                         similar_items=db.similar_items, k=K)

    assert [entry.record_id for entry in out] == [record_id for record_id, _ in records]
    assert [entry.result for entry in out].count("Ok") == 99
    assert (out[42].result, out[42].reason, out[42].data) == ("ProcessingFailed", reason, data if poison != "not base64"
                                                              else "")
    for session, entry in zip(valid, out[:42] + out[43:], strict=True):
        delivered = decode_line(entry.data)
        assert {key: delivered[key] for key in session} == session
        assert [item["id"] in CATALOGUE for item in delivered["recommended_items"]] == [True] * K
        assert delivered["similar_items"]["product_code"] == session["browse_history"][0]["product_code"]
        assert len(delivered["similar_items"]["similar_items"]) == K
    assert db.round_trips == 2, "the poison cost no extra database call"


# ---- the property: arbitrary poisons mixed into batches of valid sessions ------------------------------------------
RESERVED = {"session_id", "customer_number", "city", "country", "credit_limit", "browse_history",
            "recommended_items", "similar_items"}
extreme_numbers = st.sampled_from([1e300, -1e300, 3.5e38, 1e39, 5e-324, -0.0, 2.0**-149, 1e15, 10**99, -(10**99)])
extra_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**99), 10**99) | extreme_numbers
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30) | st.just("\ud800 lone surrogate"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def valid_records(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid session, perhaps with extra fields of any JSON value (extreme numbers, huge strings, nesting, a lone
    surrogate escape), written compact, pretty-printed or padded: (the session, its base64 data)."""
    session = draw(sessions | st.builds(lambda s: {**s, "credit_limit": -0.0}, sessions))
    extras = draw(st.dictionaries(st.text(max_size=10).filter(lambda key: key not in RESERVED), extra_values,
                                  max_size=2))
    if draw(st.booleans()):
        extras["note"] = draw(st.sampled_from(["x" * 100_000, "[" * 50 + "]" * 50]))
    session = {**session, **extras}
    style = draw(st.sampled_from(["compact", "pretty", "padded", "ascii"]))
    text = {"compact": lambda: json.dumps(session, separators=(",", ":"), ensure_ascii=False),
            "pretty": lambda: json.dumps(session, indent=2, ensure_ascii=False),
            "padded": lambda: "\r\n  " + json.dumps(session, ensure_ascii=False) + " \n",
            "ascii": lambda: json.dumps(session)}[style]()
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate is valid JSON only escaped (raw, it is not UTF-8: a poison)
        raw = json.dumps(session).encode()
    return session, base64.b64encode(raw).decode()


def _extreme_credit_session(draw: st.DrawFn) -> str:
    value = draw(st.sampled_from([1e300, -1e300, 1e39, -3.5e38, 10**50, MODEL_INPUT_POISON, -MODEL_INPUT_POISON,
                                  MODEL_OUTPUT_POISON]))
    return encode({**draw(sessions), "credit_limit": value})


@st.composite
def poison_records(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["json", "broken", "credit", "literal", "nested", "huge", "utf8", "base64", "our"]))
    if kind == "json":
        return encode(draw(json_values | extra_values))
    if kind == "broken":
        return encode(draw(broken_sessions()))
    if kind == "credit":
        return _extreme_credit_session(draw)
    if kind == "literal":
        digits = draw(st.sampled_from([101, 401, 4301]))
        field = draw(st.sampled_from(["credit_limit", "customer_number", "extra"]))
        return _with_literal(draw(sessions), field, "9" * digits)
    if kind == "nested":
        depth = draw(st.integers(5_000, 50_000))
        return _with_literal(draw(sessions), "extra", "[" * depth + "]" * depth)
    if kind == "huge":
        return encode({**draw(sessions), "session_id": "s" * draw(st.sampled_from([257, 1000, 100_000]))})
    if kind == "utf8":
        raw = draw(st.binary(min_size=1, max_size=30)) + b"\xff"
        return base64.b64encode(raw).decode()
    if kind == "base64":
        return draw(st.sampled_from(["%%%", "abc", "a===", "not base64!", "é" * 4])
                    | st.text(min_size=1, max_size=19).map(lambda t: t if len(t) % 4 else t + "="))
    # A record carrying our own fields is written again: not with a lone surrogate, nor with numbers that grow (1e15).
    carrying = {**draw(sessions), "recommended_items": []}
    if draw(st.booleans()):
        return _text_data(json.dumps({**carrying, "note": "\ud800"}, separators=(",", ":")))
    return _with_literal(carrying, "numbers", "[" + ",".join(["1e15"] * 5) + "]")


@st.composite
def mixed_batches(draw: st.DrawFn) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(recordId, data, the session when the record is valid, None for a poison), in a random order."""
    valid = draw(st.lists(valid_records(), min_size=1, max_size=12))
    poisons = draw(st.lists(poison_records(), min_size=1, max_size=8))
    entries: list[tuple[str, dict[str, Any] | None]] = [(data, session) for session, data in valid]
    entries += [(data, None) for data in poisons]
    order = draw(st.permutations(range(len(entries))))
    return [(f"record-{i:03d}", entries[j][0], entries[j][1]) for i, j in enumerate(order)]


@settings(max_examples=80, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(batch=mixed_batches())
def test_poisons_fail_alone_and_every_valid_record_is_ok_with_its_recommendations(
    model: ServingModel, batch: list[tuple[str, str, dict[str, Any] | None]]
) -> None:
    db = FakeVectorDb()
    out = transformation.transform_batch([(record_id, data) for record_id, data, _ in batch], model=model,
                                         items_for_users=db.items_for_users, similar_items=db.similar_items, k=K)

    assert [entry.record_id for entry in out] == [record_id for record_id, _, _ in batch]
    for (record_id, data, session), entry in zip(batch, out, strict=True):
        if session is None:
            assert entry.result == "ProcessingFailed" and entry.reason, record_id
            continue
        assert entry.result == "Ok", (record_id, entry.reason)
        delivered = decode_line(entry.data)
        assert {key: value for key, value in delivered.items() if key not in ("recommended_items", "similar_items")
                } == json.loads(base64.b64decode(data))
        scores = [item["score"] for item in delivered["recommended_items"]]
        assert len(scores) == K and all(np.isfinite(scores)) and scores == sorted(scores, reverse=True)
        assert all(item["id"] in CATALOGUE for item in delivered["recommended_items"])
        in_cart = [h["product_code"] for h in session["browse_history"] if h["in_shopping_cart"]]
        chosen = (in_cart or [session["browse_history"][0]["product_code"]])[0]
        assert delivered["similar_items"]["product_code"] == chosen
        assert len(delivered["similar_items"]["similar_items"]) == K
        # The response bound's premise: a delivered line is its record plus at most our two fields.
        line = base64.b64decode(entry.data)
        assert len(line) <= len(base64.b64decode(data)) + firehose.max_enrichment_bytes(K)


# ---- what the model or the database return for one user fails that user's sessions only ------------------------------
class NotFiniteForOneCity(FakeModel):
    """An embedder (not ServingModel) that returns NaN for one city instead of raising."""

    def user_embeddings(self, users: list[dict[str, Any]]) -> np.ndarray:
        rows = super().user_embeddings(users)
        rows[[user["city"] == "Madrid" for user in users]] = np.nan
        return rows


def test_a_non_finite_embedding_from_any_embedder_fails_only_that_users_sessions() -> None:
    db = FakeVectorDb()
    records = [(f"r{i}", encode(_session(i))) for i in range(9)]  # every third session is in Madrid
    out = transformation.transform_batch(records, model=NotFiniteForOneCity(), items_for_users=db.items_for_users,
                                         similar_items=db.similar_items, k=K)
    assert [entry.result for entry in out] == ["Ok", "Ok", "ProcessingFailed"] * 3
    assert out[2].reason == "the model's embedding of this session's city, country and credit_limit is not finite"


def test_a_non_finite_score_from_the_database_fails_only_the_sessions_that_share_it() -> None:
    db = FakeVectorDb()

    def items_for_users(embeddings: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        answers = db.items_for_users(embeddings, k)
        answers[0] = [(item, float("inf")) for item, _ in answers[0]]
        return answers

    records = [(f"r{i}", encode({**_session(i), "credit_limit": 1000.0})) for i in range(6)]  # 3 users, by city
    out = transformation.transform_batch(records, model=FakeModel(), items_for_users=items_for_users,
                                         similar_items=db.similar_items, k=K)
    assert [entry.result for entry in out] == ["ProcessingFailed", "Ok", "Ok"] * 2  # the first user is every third
    assert out[0].reason is not None and "score or distance is not a finite number" in out[0].reason


def test_a_product_code_no_catalogue_can_hold_is_never_sent_to_the_database() -> None:
    db = FakeVectorDb()
    asked: list[str] = []

    def similar_items(item_ids: list[str], k: int) -> list[list[tuple[str, float]]]:
        asked.extend(item_ids)
        return db.similar_items(item_ids, k)

    nul = {**_session(1), "browse_history": [{"product_code": "S10\x00", "quantity": "1", "in_shopping_cart": True}]}
    surrogate = {**_session(2), "browse_history": [{"product_code": "\ud800", "quantity": "1",
                                                    "in_shopping_cart": True}]}
    out = transformation.transform_batch([("nul", encode(nul)), ("surrogate", encode(surrogate)),
                                          ("good", encode(_session(0)))], model=FakeModel(),
                                         items_for_users=db.items_for_users, similar_items=similar_items, k=K)
    assert [(entry.result, entry.reason) for entry in out[:2]] == [
        ("ProcessingFailed", "the chosen browse_history product is not in the item catalogue")] * 2
    assert out[2].result == "Ok"
    assert asked == [CATALOGUE[0]]


def test_only_infrastructure_fails_a_batch() -> None:
    db = FakeVectorDb()
    db.down = True
    records = [("poison", POISONS["credit_limit 1e300"][0]), ("good", encode(_session(0)))]
    with pytest.raises(ConnectionError):
        transformation.transform_batch(records, model=FakeModel(), items_for_users=db.items_for_users,
                                       similar_items=db.similar_items, k=K)

    class BrokenModel:
        def user_embeddings(self, users: list[dict[str, Any]]) -> np.ndarray:
            raise OSError("serving bundle unreadable")

    with pytest.raises(OSError, match="serving bundle unreadable"):
        transformation.transform_batch(records, model=BrokenModel(), items_for_users=FakeVectorDb().items_for_users,
                                       similar_items=FakeVectorDb().similar_items, k=K)
