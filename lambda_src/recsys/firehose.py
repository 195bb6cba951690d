"""The Firehose data-transformation contract and the pure per-record logic of the transformation function.

Firehose hands the processor `{"invocationId", "deliveryStreamArn", "region", "records": [{"recordId", "data", ...}]}`
and expects `{"records": [{"recordId", "result", "data"}]}` back, every recordId exactly once. Everything here is pure:
decoding and validating one session event, choosing the history product whose neighbours we show, and encoding the
enriched record as one line of JSON Lines. The handler (`transformation.py`) only wires these to the model and the
database.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

Result = Literal["Ok", "Dropped", "ProcessingFailed"]
RESULTS: tuple[Result, ...] = ("Ok", "Dropped", "ProcessingFailed")


class InvalidRecord(ValueError):
    """A record this function can never process, whatever the retry. The message is the reason: it names fields and
    expectations, never the record's values (they are customer data and must not reach the logs)."""


# The per-record types are NamedTuples rather than frozen dataclasses: immutable all the same, and built ~5x faster,
# which counts when a batch makes thousands of them.
class HistoryItem(NamedTuple):
    product_code: str
    quantity: str
    in_shopping_cart: bool


class SessionEvent(NamedTuple):
    """One shopper's session as the producer sends it. `payload` is the decoded JSON object, kept whole so the
    delivered record is the input plus our fields, including any field a newer producer adds."""

    session_id: str
    customer_number: int
    city: str
    country: str
    credit_limit: float
    browse_history: tuple[HistoryItem, ...]
    payload: Mapping[str, Any]
    # The record's JSON text as received: a delivered line reuses it instead of serializing the input again.
    text: str | None = None

    def user_features(self) -> dict[str, Any]:
        """The user tower's input, in the shape of the lab's `/user_embeddings` body."""
        return {"city": self.city, "country": self.country, "creditlimit": self.credit_limit}


class ScoredItem(NamedTuple):
    id: str
    score: float


class NeighbourItem(NamedTuple):
    id: str
    distance: float


class TransformedRecord(NamedTuple):
    """One entry of the processor's response. `reason` is for the log only; Firehose never sees it."""

    record_id: str
    result: Result
    data: str
    reason: str | None = None

    def asdict(self) -> dict[str, str]:
        return {"recordId": self.record_id, "result": self.result, "data": self.data}


def _require(payload: Mapping[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in payload:
        raise InvalidRecord(f"missing field '{name}'")
    value = payload[name]
    # bool is an int in Python, but `true` is not a customer number or a credit limit.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise InvalidRecord(f"field '{name}' must be {what}, got a boolean")
    if not isinstance(value, kind):
        raise InvalidRecord(f"field '{name}' must be {what}, got {type(value).__name__}")
    return value


def _history_item(entry: Any, index: int) -> HistoryItem:
    where = f"browse_history[{index}]"
    if not isinstance(entry, dict):
        raise InvalidRecord(f"{where} must be an object, got {type(entry).__name__}")
    try:
        code = _require(entry, "product_code", str, "a string")
        quantity = _require(entry, "quantity", str, "a string of digits")
        in_cart = _require(entry, "in_shopping_cart", bool, "a boolean")
    except InvalidRecord as err:
        raise InvalidRecord(f"{where}: {err}") from None
    if not code.strip():
        raise InvalidRecord(f"{where}: field 'product_code' is empty")
    if not quantity.isascii() or not quantity.isdigit():
        raise InvalidRecord(f"{where}: field 'quantity' must be a string of digits")
    return HistoryItem(product_code=code, quantity=quantity, in_shopping_cart=in_cart)


def _well_formed_session(payload: dict[str, Any], text: str | None) -> SessionEvent | None:
    """The common case checked in one pass (exact JSON types); None sends the record to the checks that name faults."""
    session_id, number = payload.get("session_id"), payload.get("customer_number")
    city, country = payload.get("city"), payload.get("country")
    credit, history = payload.get("credit_limit"), payload.get("browse_history")
    if not (type(session_id) is str and type(number) is int and type(city) is str and type(country) is str
            and (type(credit) is int or (type(credit) is float and math.isfinite(credit)))
            and type(history) is list and history):
        return None
    items = []
    for entry in history:
        if type(entry) is not dict:
            return None
        code, quantity, in_cart = entry.get("product_code"), entry.get("quantity"), entry.get("in_shopping_cart")
        if not (type(code) is str and code.strip() and type(quantity) is str and quantity.isascii()
                and quantity.isdigit() and type(in_cart) is bool):
            return None
        items.append(HistoryItem(code, quantity, in_cart))
    return SessionEvent(session_id, number, city, country, float(credit), tuple(items), payload, text)


def parse_session(payload: Any, text: str | None = None) -> SessionEvent:
    """Validate one decoded event; raise `InvalidRecord` naming the first thing that is wrong."""
    if type(payload) is dict:
        session = _well_formed_session(payload, text)
        if session is not None:
            return session
    return checked_session(payload, text)


def checked_session(payload: Any, text: str | None = None) -> SessionEvent:
    """Field-by-field validation that names the first fault (the slow path; `parse_session` tries the fast one first,
    and the two must agree: tests/unit/test_transformation.py proves it on arbitrary payloads)."""
    if not isinstance(payload, dict):
        raise InvalidRecord(f"the record must be a JSON object, got {type(payload).__name__}")
    session_id = _require(payload, "session_id", str, "a string")
    customer_number = _require(payload, "customer_number", int, "an integer")
    city = _require(payload, "city", str, "a string")
    country = _require(payload, "country", str, "a string")
    credit_limit = _require(payload, "credit_limit", (int, float), "a number")
    if not math.isfinite(credit_limit):
        raise InvalidRecord("field 'credit_limit' must be a finite number")
    history = _require(payload, "browse_history", list, "a list")
    if not history:
        raise InvalidRecord("field 'browse_history' is empty: there is no product to recommend from")
    items = tuple(_history_item(entry, i) for i, entry in enumerate(history))
    return SessionEvent(
        session_id=session_id,
        customer_number=customer_number,
        city=city,
        country=country,
        credit_limit=float(credit_limit),
        browse_history=items,
        payload=payload,
        text=text,
    )


def decode_record_data(data: Any) -> tuple[str, Any]:
    """base64 -> UTF-8 -> JSON, each failure named; returns the text and its value."""
    if not isinstance(data, str):
        raise InvalidRecord("the record's data is not a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRecord("the record's data is not valid base64") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRecord("the record's data is not UTF-8 text") from None
    try:
        return text, _DECODER.decode(text)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidRecord("the record's data is not JSON") from None
    except _NotJsonConstant:
        raise InvalidRecord("the record's data is not JSON (NaN and Infinity are not JSON numbers)") from None


class _NotJsonConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; they are not JSON, Athena cannot read them, and we could not write them back.
    raise _NotJsonConstant(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_session(data: Any) -> SessionEvent:
    text, payload = decode_record_data(data)
    return parse_session(payload, text)


def choose_history_product(history: Sequence[HistoryItem]) -> str:
    """The product whose neighbours the shopper sees: the first one in the cart, else the first one browsed.

    Deterministic on purpose (the lab picked one at random): the same session always gets the same answer, so a
    retried batch delivers identical records and tests can state what they expect.
    """
    if not history:
        raise InvalidRecord("field 'browse_history' is empty: there is no product to recommend from")
    for item in history:
        if item.in_shopping_cart:
            return item.product_code
    return history[0].product_code


def encode_json_line(payload: Mapping[str, Any]) -> str:
    """base64 of one JSON object plus a newline: the delivered objects are JSON Lines that Athena and pandas read."""
    line = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
    return base64.b64encode(line.encode("utf-8")).decode("ascii")


_OUR_FIELDS = ("recommended_items", "similar_items")


# Our two fields are written by hand: the same text json.dumps(..., separators=(",", ":"), ensure_ascii=False,
# allow_nan=False) gives (tests/unit/test_transformation.py checks it on arbitrary ids and numbers), at a fraction of
# its cost per call, and a batch makes two calls per distinct user and product.
_json_string = json.encoder.encode_basestring  # what json.dumps uses for ensure_ascii=False (the C one when built)


def _json_number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    return float.__repr__(float(value))


def recommended_json(recommended: Sequence[ScoredItem]) -> str:
    return "[" + ",".join(f'{{"id":{_json_string(item.id)},"score":{_json_number(item.score)}}}'
                          for item in recommended) + "]"


def similar_json(product_code: str, neighbours: Sequence[NeighbourItem]) -> str:
    items = ",".join(f'{{"id":{_json_string(item.id)},"distance":{_json_number(item.distance)}}}'
                     for item in neighbours)
    return f'{{"product_code":{_json_string(product_code)},"similar_items":[{items}]}}'


def enriched_line(session: SessionEvent, recommended: str, similar: str) -> str:
    """base64 of the delivered JSON line, given our two fields already encoded (once per distinct user and product,
    not once per record). The input's own text is reused when it is one compact object line; otherwise (pretty-printed
    input, or one already carrying our fields) the whole record is serialized again."""
    text = session.text.strip() if session.text else ""
    if (text.endswith("}") and len(session.payload) > 0 and "\n" not in text and "\r" not in text
            and not any(name in session.payload for name in _OUR_FIELDS)):
        line = f'{text[:-1]},"recommended_items":{recommended},"similar_items":{similar}}}\n'
        return base64.b64encode(line.encode("utf-8")).decode("ascii")
    out = dict(session.payload)
    out["recommended_items"] = json.loads(recommended)
    out["similar_items"] = json.loads(similar)
    return encode_json_line(out)


def ok_data(record_id: str, data: str) -> TransformedRecord:
    return TransformedRecord(record_id=record_id, result="Ok", data=data)


def failed(record_id: str, original_data: Any, reason: str) -> TransformedRecord:
    """A ProcessingFailed entry. Firehose writes the *original* record to the error output, so the data we return is
    only required to be valid base64: we echo the input when it is, and return empty data otherwise."""
    data = original_data if isinstance(original_data, str) and _is_base64(original_data) else ""
    return TransformedRecord(record_id=record_id, result="ProcessingFailed", data=data, reason=reason)


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def response(records: Sequence[TransformedRecord]) -> dict[str, list[dict[str, str]]]:
    return {"records": [record.asdict() for record in records]}
