"""The processor's response never exceeds Lambda's 6 MB (issue 11, item 4).

`recsys.firehose.max_response_bytes` bounds the response from the record contract (the smallest valid session, the
longest enrichment for topK); config validation refuses settings whose bound is over 6 MB
(tests/unit/program/test_config.py), and the transformation demotes records rather than return an oversized response.
Here: each premise of the bound, the worst batch measured against it, and the guard.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import transformation
from hypothesis import given, settings
from hypothesis import strategies as st
from recsys import firehose

from tests.unit.test_transformation import SHARED_MACHINE, FakeModel

MIB = 1024 * 1024
LONG_IDS = [f"S{n:03d}_LONG_ID_XY" for n in range(120)]  # 15 characters, the longest catalogue id
# Numbers at their longest once written: -1.23456789e-100 (score) and, as 1 - similarity, -1.23456789e+100 (distance).
LONGEST_SCORE, LONGEST_SIMILARITY = -1.23456789e-100, 1.23456789e100


def test_the_bound_constants_are_what_they_say() -> None:
    assert all(len(code) == firehose.MAX_ITEM_ID_CHARS for code in LONG_IDS)
    assert len(firehose._json_number(LONGEST_SCORE)) == firehose.MAX_NUMBER_CHARS
    assert len(firehose._json_number(1.0 - LONGEST_SIMILARITY)) == firehose.MAX_NUMBER_CHARS
    assert firehose.MIN_SESSION_BYTES == len(firehose.MIN_SESSION.encode()) == 157
    assert firehose.LAMBDA_RESPONSE_LIMIT_BYTES == 6_291_456


# ---- the smallest valid session --------------------------------------------------------------------------------------
def test_the_smallest_session_is_valid_and_no_character_of_it_can_go() -> None:
    session = firehose.decode_session(base64.b64encode(firehose.MIN_SESSION.encode()).decode())
    assert firehose.choose_history_product(session.browse_history) == "x"
    for i in range(len(firehose.MIN_SESSION)):
        shorter = firehose.MIN_SESSION[:i] + firehose.MIN_SESSION[i + 1:]
        with pytest.raises(firehose.InvalidRecord):
            firehose.decode_session(base64.b64encode(shorter.encode()).decode())


short_text = st.text(max_size=3)
tiny_sessions = st.fixed_dictionaries({
    "session_id": short_text, "customer_number": st.integers(-10, 10), "city": short_text, "country": short_text,
    "credit_limit": st.integers(-10, 10) | st.floats(-1, 1),
    "browse_history": st.lists(st.fixed_dictionaries({
        "product_code": short_text, "quantity": st.text("0123456789", max_size=2), "in_shopping_cart": st.booleans(),
    }), max_size=2),
})


@settings(max_examples=300, deadline=None, suppress_health_check=SHARED_MACHINE)
@given(session=tiny_sessions, order=st.randoms(use_true_random=False))
def test_no_valid_session_is_shorter_than_the_smallest(session: dict[str, Any], order: Any) -> None:
    items = list(session.items())
    order.shuffle(items)
    text = json.dumps(dict(items), separators=(",", ":"), ensure_ascii=False)
    try:
        firehose.decode_session(base64.b64encode(text.encode("utf-8", "surrogatepass")).decode())
    except firehose.InvalidRecord:
        return
    assert len(text.encode("utf-8")) >= firehose.MIN_SESSION_BYTES


# ---- the enrichment at its longest -----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 5, 31, 100])
def test_our_fields_at_their_longest_take_exactly_the_bound_and_longer_ids_fail_the_record(k: int) -> None:
    recommended = firehose.recommended_json([firehose.ScoredItem(i, LONGEST_SCORE) for i in LONG_IDS[:k]])
    similar = firehose.similar_json(LONG_IDS[-1], [firehose.NeighbourItem(i, 1.0 - LONGEST_SIMILARITY)
                                                   for i in LONG_IDS[:k]])
    assert len(recommended) == firehose.max_recommended_bytes(k)
    assert len(similar) == firehose.max_similar_bytes(k)
    assert firehose.checked_field("similar_items", similar, firehose.max_similar_bytes(k)) == similar
    line_growth = len(f',"recommended_items":{recommended},"similar_items":{similar}\n')
    assert line_growth == firehose.max_enrichment_bytes(k)

    longer = firehose.recommended_json([firehose.ScoredItem(i + "!", LONGEST_SCORE) for i in LONG_IDS[:k]])
    with pytest.raises(firehose.InvalidRecord, match="an item id is longer than 15 plain characters"):
        firehose.checked_field("recommended_items", longer, firehose.max_recommended_bytes(k))


# ---- the worst batch -------------------------------------------------------------------------------------------------
class WorstCaseDb:
    """Every answer at its longest: top-k of 15-character ids with the longest numbers, for a product "x"."""

    def items_for_users(self, embeddings: Any, k: int) -> list[list[tuple[str, float]]]:
        return [[(code, LONGEST_SCORE) for code in LONG_IDS[:k]] for _ in range(len(embeddings))]

    def similar_items(self, item_ids: list[str], k: int) -> list[list[tuple[str, float]]]:
        return [[(code, LONGEST_SIMILARITY) for code in LONG_IDS[:k]] if item_id == "x" else [] for item_id in item_ids]


def worst_batch(buffer_bytes: int) -> list[tuple[str, str]]:
    """As many of the smallest sessions as the buffer holds, each with a recordId of RECORD_ID_CHARS digits."""
    data = base64.b64encode(firehose.MIN_SESSION.encode()).decode()
    return [(f"{i:0{firehose.RECORD_ID_CHARS}d}", data) for i in range(buffer_bytes // firehose.MIN_SESSION_BYTES)]


def lambda_response_bytes(entries: list[firehose.TransformedRecord]) -> int:
    # Lambda's Python 3.12 runtime: json.dumps with the default separators, ensure_ascii=False, sent as UTF-8.
    return len(json.dumps(firehose.response(entries), ensure_ascii=False).encode())


@pytest.mark.parametrize(("buffer_mb", "k"), [(0.2, 5), (0.2, 31), (0.8, 5), (0.83, 5), (1.61, 1)])
def test_the_worst_batch_of_an_accepted_config_fits_the_bound_and_6_mb_with_every_record_ok(
    buffer_mb: float, k: int
) -> None:
    buffer_bytes = int(buffer_mb * MIB)
    bound = firehose.max_response_bytes(buffer_bytes, k)
    assert bound <= firehose.LAMBDA_RESPONSE_LIMIT_BYTES, "these are configurations validation accepts"
    db = WorstCaseDb()

    out = transformation.transform_batch(worst_batch(buffer_bytes), model=FakeModel(),
                                         items_for_users=db.items_for_users, similar_items=db.similar_items, k=k)

    assert {entry.result for entry in out} == {"Ok"}
    size = lambda_response_bytes(out)
    assert size <= bound
    # Not a loose guess: within 4 % (the bound counts similar_items' product_code at 15 characters, where the
    # smallest session's is 1, and base64's padding at its largest).
    assert size >= 0.96 * bound


@pytest.mark.parametrize(("buffer_mb", "k"), [(1.0, 5), (3.0, 5), (0.2, 100)])
def test_configs_over_the_limit_have_a_worst_batch_that_would_really_exceed_6_mb(buffer_mb: float, k: int) -> None:
    """The other side: the bound is not pessimistic where validation refuses (the guard is off here)."""
    buffer_bytes = int(buffer_mb * MIB)
    db = WorstCaseDb()
    out = transformation.transform_batch(worst_batch(buffer_bytes), model=FakeModel(),
                                         items_for_users=db.items_for_users, similar_items=db.similar_items, k=k,
                                         response_limit=10**12)
    assert lambda_response_bytes(out) > firehose.LAMBDA_RESPONSE_LIMIT_BYTES


def test_a_record_larger_than_the_buffer_comes_alone_and_fits_the_bound() -> None:
    big = json.loads(firehose.MIN_SESSION) | {"padding": "p" * (firehose.MAX_RECORD_BYTES - 200)}
    text = json.dumps(big, separators=(",", ":"))
    assert firehose.MAX_RECORD_BYTES - 100 < len(text) <= firehose.MAX_RECORD_BYTES
    db = WorstCaseDb()
    out = transformation.transform_batch([("0" * firehose.RECORD_ID_CHARS, base64.b64encode(text.encode()).decode())],
                                         model=FakeModel(), items_for_users=db.items_for_users,
                                         similar_items=db.similar_items, k=100)
    assert out[0].result == "Ok"
    assert lambda_response_bytes(out) <= firehose.max_response_bytes(int(0.2 * MIB), 100)


# ---- the response's size, computed, and the guard --------------------------------------------------------------------
BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
entries = st.lists(st.builds(
    firehose.TransformedRecord, record_id=st.text(max_size=70), result=st.sampled_from(firehose.RESULTS),
    data=st.text(BASE64_ALPHABET, max_size=200),
), max_size=20)
# As the transformation makes them: Ok data is a line of at least MIN_SESSION_BYTES, in base64.
our_entries = st.lists(st.one_of(
    st.builds(firehose.TransformedRecord, record_id=st.text(max_size=70), result=st.just("Ok"),
              data=st.text(BASE64_ALPHABET, min_size=firehose.MIN_SESSION_BYTES, max_size=300)),
    st.builds(firehose.TransformedRecord, record_id=st.text(max_size=70), result=st.just("ProcessingFailed"),
              data=st.text(BASE64_ALPHABET, max_size=300), reason=st.just("a reason")),
), max_size=20)


@settings(max_examples=300, deadline=None)
@given(batch=entries)
def test_response_bytes_is_the_size_of_the_json_lambda_writes(batch: list[firehose.TransformedRecord]) -> None:
    assert firehose.response_bytes(batch) == len(
        json.dumps(firehose.response(batch), ensure_ascii=False).encode("utf-8", "surrogatepass"))


@settings(max_examples=400, deadline=None)
@given(batch=our_entries, limit=st.integers(0, 8000))
def test_the_guard_drops_echoes_then_demotes_the_fewest_last_ok_records_that_make_the_response_fit(
    batch: list[firehose.TransformedRecord], limit: int
) -> None:
    def smallest(entry: firehose.TransformedRecord) -> firehose.TransformedRecord:
        return entry._replace(result="ProcessingFailed", data="")

    if firehose.response_bytes([smallest(entry) for entry in batch]) > limit:
        with pytest.raises(firehose.ResponseTooLarge, match="with every record failed, over the"):
            firehose.fit_response(batch, limit)
        return
    out = firehose.fit_response(batch, limit)

    assert [entry.record_id for entry in out] == [entry.record_id for entry in batch]
    assert firehose.response_bytes(out) <= limit
    if firehose.response_bytes(batch) <= limit:
        assert out == batch
        return
    ok = [i for i, entry in enumerate(batch) if entry.result == "Ok"]
    demoted = [i for i in ok if out[i] != batch[i]]
    assert demoted == ok[len(ok) - len(demoted):], "the last Ok records, none before them"
    demoted_entry = ("ProcessingFailed", "", firehose.OVERSIZED_RESPONSE_REASON)
    assert all((out[i].result, out[i].data, out[i].reason) == demoted_entry for i in demoted)
    for before, after in zip(batch, out, strict=True):
        if before.result != "Ok":
            assert after == before or after == before._replace(data="")
    if demoted:
        assert all(entry.data == "" for entry in out if entry.result == "ProcessingFailed"), "echoes go first"
        one_fewer = [batch[i] if i == demoted[0] else entry for i, entry in enumerate(out)]
        assert firehose.response_bytes(one_fewer) > limit, "no more records than needed"


def test_the_guard_never_makes_a_response_larger() -> None:
    """Demoting an Ok entry with less than 14 characters of data would grow it; then the guard says it cannot fit."""
    tiny_ok = [firehose.TransformedRecord("r1", "Ok", "AAAA"), firehose.TransformedRecord("r2", "Ok", "")]
    size = firehose.response_bytes(tiny_ok)
    with pytest.raises(firehose.ResponseTooLarge, match=f"would be {size} bytes with every record failed"):
        firehose.fit_response(tiny_ok, size - 1)


def test_a_6_mb_response_is_never_returned_the_records_that_do_not_fit_go_to_the_error_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stack deployed with a config the bound refuses (topK 100, 600 small sessions: 8.6 MB of response)."""
    db = WorstCaseDb()
    monkeypatch.setattr(transformation.container, "model", FakeModel())
    monkeypatch.setattr(transformation.container, "conn", object())
    monkeypatch.setattr(transformation, "_database_calls", lambda conn: (db.items_for_users, db.similar_items))
    monkeypatch.setenv("TOP_K", "100")
    records = worst_batch(600 * firehose.MIN_SESSION_BYTES)
    unguarded = transformation.transform_batch(records, model=FakeModel(), items_for_users=db.items_for_users,
                                               similar_items=db.similar_items, k=100, response_limit=10**12)
    assert lambda_response_bytes(unguarded) > 8 * MIB

    event = {"invocationId": "i", "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
             "region": "us-east-1", "records": [{"recordId": r, "approximateArrivalTimestamp": 0, "data": d}
                                                for r, d in records]}
    response = transformation.handler(event, None)

    size = len(json.dumps(response, ensure_ascii=False).encode())
    assert firehose.LAMBDA_RESPONSE_LIMIT_BYTES - 20_000 < size <= firehose.LAMBDA_RESPONSE_LIMIT_BYTES
    results = [entry["result"] for entry in response["records"]]
    assert [entry["recordId"] for entry in response["records"]] == [r for r, _ in records]
    ok = results.count("Ok")
    assert results == ["Ok"] * ok + ["ProcessingFailed"] * (600 - ok) and 0 < ok < 600
    assert {entry["data"] for entry in response["records"][ok:]} == {""}
    assert response["records"][:ok] == [entry.asdict() for entry in unguarded[:ok]]
