"""The Firehose data-transformation contract and the pure per-record logic of the transformation function.

Firehose hands the processor `{"invocationId", "deliveryStreamArn", "region", "records": [{"recordId", "data", ...}]}`
and expects `{"records": [{"recordId", "result", "data"}]}` back, every recordId exactly once. Everything here is pure:
decoding and validating one session event, choosing the history product whose neighbours we show, encoding the
enriched record as one line of JSON Lines, and the bound on the size of the processor's response (Lambda refuses a
synchronous response over 6 MB; see `max_response_bytes`). The handler (`transformation.py`) only wires these to the
model and the database.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

from recsys import safejson

Result = Literal["Ok", "Dropped", "ProcessingFailed"]
RESULTS: tuple[Result, ...] = ("Ok", "Dropped", "ProcessingFailed")

# ---- the record contract's limits (docs/streaming.md) ----------------------------------------------------------------
# session_id is the stream's partition key, which Kinesis limits to 1..256 characters; it must be non-empty to tell
# sessions apart (a redriven record is recognised by it).
MAX_SESSION_ID_CHARS = 256
# A product code is a catalogue id: classicmodels' productCode is VARCHAR(15). A longer code can never be recommended
# from, and an id in a recommendation is never longer (the response bound below counts on it).
MAX_ITEM_ID_CHARS = 15
# Scores and distances are written with 9 significant digits: every float32 (what the model and the search compute
# in) survives the round trip, and the text is at most 16 characters ("-1.23456789e-100"), where repr() can take 24.
SCORE_DIGITS = 9
MAX_NUMBER_CHARS = 16
# The smallest record that can come back Ok: every required field with its shortest valid value (the product code must
# be a catalogue id, 1 character at least). Any other valid session is longer (tests/unit/test_response_bound.py).
MIN_SESSION = ('{"session_id":"x","customer_number":0,"city":"","country":"","credit_limit":0,'
               '"browse_history":[{"product_code":"x","quantity":"0","in_shopping_cart":true}]}')
MIN_SESSION_BYTES = len(MIN_SESSION)  # 157
# Lambda's limit on a synchronous invocation's response (and request): 6 MB, as AWS counts it.
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024  # 6,291,456
# Firehose's recordIds are 56 digits on AWS (the local runner's are shorter); the bound allows 64.
RECORD_ID_CHARS = 64
# Firehose refuses records over 1,000 KiB; one record bigger than the processor buffer is sent alone.
MAX_RECORD_BYTES = 1_024_000
MIB = 1024 * 1024


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
    if len(code) > MAX_ITEM_ID_CHARS:
        raise InvalidRecord(f"{where}: field 'product_code' is longer than {MAX_ITEM_ID_CHARS} characters, the longest "
                            "catalogue id")
    if not quantity.isascii() or not quantity.isdigit():
        raise InvalidRecord(f"{where}: field 'quantity' must be a string of digits")
    return HistoryItem(product_code=code, quantity=quantity, in_shopping_cart=in_cart)


def _well_formed_session(payload: dict[str, Any], text: str | None) -> SessionEvent | None:
    """The common case checked in one pass (exact JSON types); None sends the record to the checks that name faults."""
    session_id, number = payload.get("session_id"), payload.get("customer_number")
    city, country = payload.get("city"), payload.get("country")
    credit, history = payload.get("credit_limit"), payload.get("browse_history")
    # The credit limit's range is safejson.float32's, compared in place (NaN fails it): this runs for every record.
    if not (type(session_id) is str and 0 < len(session_id) <= MAX_SESSION_ID_CHARS and type(number) is int
            and type(city) is str and type(country) is str and (type(credit) is int or type(credit) is float)
            and -safejson.FLOAT32_MAX <= credit <= safejson.FLOAT32_MAX and type(history) is list and history):
        return None
    items = []
    for entry in history:
        if type(entry) is not dict:
            return None
        code, quantity, in_cart = entry.get("product_code"), entry.get("quantity"), entry.get("in_shopping_cart")
        if not (type(code) is str and len(code) <= MAX_ITEM_ID_CHARS and code.strip() and type(quantity) is str
                and quantity.isascii() and quantity.isdigit() and type(in_cart) is bool):
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
    if not 0 < len(session_id) <= MAX_SESSION_ID_CHARS:
        raise InvalidRecord(f"field 'session_id' must be 1 to {MAX_SESSION_ID_CHARS} characters long (the stream's "
                            "partition key)")
    customer_number = _require(payload, "customer_number", int, "an integer")
    city = _require(payload, "city", str, "a string")
    country = _require(payload, "country", str, "a string")
    credit_limit = safejson.float32(_require(payload, "credit_limit", (int, float), "a number"))
    if credit_limit is None:
        # The model computes in float32: 1e300 is a finite Python float but infinity there.
        raise InvalidRecord("field 'credit_limit' must be a finite number within float32 range (|x| <= 3.4e38)")
    history = _require(payload, "browse_history", list, "a list")
    if not history:
        raise InvalidRecord("field 'browse_history' is empty: there is no product to recommend from")
    items = tuple(_history_item(entry, i) for i, entry in enumerate(history))
    return SessionEvent(
        session_id=session_id,
        customer_number=customer_number,
        city=city,
        country=country,
        credit_limit=credit_limit,
        browse_history=items,
        payload=payload,
        text=text,
    )


def decode_record_data(data: Any) -> tuple[str, Any]:
    """base64 -> UTF-8 -> JSON, each failure named; returns the text and its value. Nothing but `InvalidRecord` comes
    out, whatever the data: the JSON is parsed by `safejson` (no huge integers, no nesting past the recursion limit,
    no NaN or Infinity)."""
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
        return text, safejson.loads(text)
    except safejson.NotJson as err:
        detail = str(err)
        if detail.startswith("not valid JSON (") and detail.endswith(")"):
            detail = detail[len("not valid JSON ("):-1]
        raise InvalidRecord(f"the record's data is not JSON: {detail}") from None


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


_OUR_FIELDS = ("recommended_items", "similar_items")


# Our two fields are written by hand: the text json.dumps(..., separators=(",", ":"), ensure_ascii=False) gives for the
# same items with each number rounded to SCORE_DIGITS (tests/unit/test_transformation.py checks it on arbitrary ids and
# numbers), at a fraction of its cost per call, and a batch makes two calls per distinct user and product.
_json_string = json.encoder.encode_basestring  # what json.dumps uses for ensure_ascii=False (the C one when built)


def _json_number(value: float) -> str:
    """A finite number with SCORE_DIGITS significant digits, at most MAX_NUMBER_CHARS characters, always a JSON float
    (`2.0`, not `2`, so a consumer never sees the type of a score change); a NaN or an infinity fails the record."""
    text = f"{value:.{SCORE_DIGITS}g}"
    if text[-1] == "n" or text[-1] == "f":  # 'nan', 'inf', '-inf'
        raise InvalidRecord("a recommendation's score or distance is not a finite number (NaN or infinity): the "
                            "embedding is outside what the model and the catalogue can compute with")
    return text if "." in text or "e" in text else text + ".0"


def recommended_json(recommended: Sequence[ScoredItem]) -> str:
    return "[" + ",".join(f'{{"id":{_json_string(item.id)},"score":{_json_number(item.score)}}}'
                          for item in recommended) + "]"


def similar_json(product_code: str, neighbours: Sequence[NeighbourItem]) -> str:
    items = ",".join(f'{{"id":{_json_string(item.id)},"distance":{_json_number(item.distance)}}}'
                     for item in neighbours)
    return f'{{"product_code":{_json_string(product_code)},"similar_items":[{items}]}}'


def utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def checked_field(name: str, text: str, limit: int) -> str:
    """`text` (one of our encoded fields) if it is within the bytes the response bound allows it, else InvalidRecord:
    an item id longer than MAX_ITEM_ID_CHARS (or escaped in JSON) would let a response outgrow the bound."""
    if utf8_length(text) > limit:
        raise InvalidRecord(f"field '{name}' would take more than the {limit} bytes the response bound allows for this "
                            f"topK: an item id is longer than {MAX_ITEM_ID_CHARS} plain characters (docs/streaming.md)")
    return text


def enriched_line(session: SessionEvent, recommended: str, similar: str) -> str:
    """base64 of the delivered JSON line, given our two fields already encoded (once per distinct user and product,
    not once per record).

    The line is never longer than the record's data plus our two fields, which the response bound relies on. The input's
    own text is reused, its line breaks turned into spaces (JSON allows raw line breaks only between tokens: the decoder
    refuses them inside strings), so a pretty-printed record is one line of the same length. A record that already
    carries one of our fields is written again without it; if that makes it longer than it came in (json writes `1e15`
    as `1000000000000000.0`), or it cannot be written as UTF-8 (a lone surrogate escape), the record fails alone.
    """
    text = session.text.strip() if session.text else ""
    if text.endswith("}") and len(session.payload) > 0 and not any(name in session.payload for name in _OUR_FIELDS):
        if "\n" in text or "\r" in text:
            text = text.replace("\r", " ").replace("\n", " ")
        line = f'{text[:-1]},"recommended_items":{recommended},"similar_items":{similar}}}\n'
        return base64.b64encode(line.encode("utf-8")).decode("ascii")
    rest = {key: value for key, value in session.payload.items() if key not in _OUR_FIELDS}
    try:
        body = json.dumps(rest, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise InvalidRecord("the record carries recommended_items or similar_items and cannot be written again as "
                            "UTF-8 JSON (a lone surrogate escape, or nesting too deep)") from None
    if session.text is not None and len(body) > utf8_length(session.text):
        raise InvalidRecord("the record carries recommended_items or similar_items and would be longer written again "
                            "than it came in (numbers such as 1e15 are written in full): leave those fields out")
    separator = "," if rest else ""
    tail = f'{separator}"recommended_items":{recommended},"similar_items":{similar}}}\n'.encode()
    return base64.b64encode(body[:-1] + tail).decode("ascii")


# ---- the size of the processor's response ----------------------------------------------------------------------------
# Lambda's Python runtime writes the handler's answer with json.dumps' default separators (", " and ": "); the sizes
# below are counted that way, a little more than the compact form.
_RESPONSE_ENVELOPE = '{"records": []}'
_ENTRY_SEPARATOR = ", "
_ENTRY_TEMPLATE = '{"recordId": "", "result": "", "data": ""}'


def max_recommended_bytes(top_k: int) -> int:
    """`[{"id":"<id>","score":<number>}, ...]` with top_k items, each id MAX_ITEM_ID_CHARS, each number the longest."""
    return len("[]") + top_k * (len('{"id":"","score":}') + MAX_ITEM_ID_CHARS + MAX_NUMBER_CHARS) + (top_k - 1)


def max_similar_bytes(top_k: int) -> int:
    """`{"product_code":"<id>","similar_items":[{"id":"<id>","distance":<number>}, ...]}` with top_k neighbours."""
    return (len('{"product_code":"","similar_items":[]}') + MAX_ITEM_ID_CHARS
            + top_k * (len('{"id":"","distance":}') + MAX_ITEM_ID_CHARS + MAX_NUMBER_CHARS) + (top_k - 1))


def max_enrichment_bytes(top_k: int) -> int:
    """What a delivered line adds to its record at most: our two fields, their names, and the newline (607 for 5)."""
    return (len(',"recommended_items":') + max_recommended_bytes(top_k) + len(',"similar_items":')
            + max_similar_bytes(top_k) + len("\n"))


def _base64_bytes(raw_bytes: int) -> int:
    return 4 * ((raw_bytes + 2) // 3)


def max_response_bytes(processor_buffer_bytes: int, top_k: int, record_id_chars: int = RECORD_ID_CHARS) -> int:
    """The largest response the transformation can return for a batch of `processor_buffer_bytes` of records.

    The arithmetic (docs/streaming.md, "How big a response can be"):
    - every record that comes back Ok is at least MIN_SESSION_BYTES long, so a batch holds at most
      n = processor_buffer_bytes // MIN_SESSION_BYTES of them;
    - each Ok entry is its envelope `{"recordId": "<id>", "result": "Ok", "data": ""}, ` (46 bytes + the recordId)
      around base64 (4 bytes per 3, rounded up: at most 4/3 (L + 2)) of a line of L <= record + max_enrichment_bytes;
    - so the Ok entries take at most n * (46 + recordId) + 4/3 * (processor_buffer_bytes + n * (enrichment + 2)), plus
      15 bytes of `{"records": []}`. The worst batch is made of the smallest records: a larger record adds 4/3 of
      its extra bytes, where splitting those bytes into records of MIN_SESSION_BYTES would add more;
    - a ProcessingFailed entry echoes its data (or none): 14 bytes of envelope more than Ok, but no enrichment, so
      never more than an Ok entry for the same record;
    - a record larger than the whole buffer comes alone (it is at most MAX_RECORD_BYTES), which is the second case.
    Records smaller than MIN_SESSION_BYTES can only fail; a batch flooded with them is what `fit_response` is for.
    """
    entry = len(_ENTRY_TEMPLATE) + len("Ok") + len(_ENTRY_SEPARATOR) + record_id_chars
    enrichment = max_enrichment_bytes(top_k)
    records = processor_buffer_bytes // MIN_SESSION_BYTES
    many_small = (len(_RESPONSE_ENVELOPE) + records * entry
                  + -(-4 * (processor_buffer_bytes + records * (enrichment + 2)) // 3))
    one_large = len(_RESPONSE_ENVELOPE) + entry + _base64_bytes(MAX_RECORD_BYTES + enrichment)
    return max(many_small, one_large)


def entry_bytes(entry: TransformedRecord) -> int:
    """The bytes one entry takes in the response as Lambda writes it (without the separator before it)."""
    return len(_ENTRY_TEMPLATE) + utf8_length(_json_string(entry.record_id)) - 2 + len(entry.result) + len(entry.data)


def response_bytes(entries: Sequence[TransformedRecord]) -> int:
    """The size of `json.dumps(response(entries))` encoded as UTF-8, computed without building it."""
    return (len(_RESPONSE_ENVELOPE) + sum(entry_bytes(entry) for entry in entries)
            + len(_ENTRY_SEPARATOR) * max(len(entries) - 1, 0))


OVERSIZED_RESPONSE_REASON = (
    f"the batch's response would exceed Lambda's {LAMBDA_RESPONSE_LIMIT_BYTES:,}-byte limit: this record is left for "
    "the error output (redrive it); lower recsys:processorBufferSizeMb or recsys:topK (docs/streaming.md)"
)


class ResponseTooLarge(RuntimeError):
    """Even with every record failed and no data echoed, the response would exceed the limit (impossible for a
    request Lambda accepted: each such entry is smaller than the record's entry in the request)."""


def fit_response(entries: Sequence[TransformedRecord], limit: int = LAMBDA_RESPONSE_LIMIT_BYTES,
                 reason: str = OVERSIZED_RESPONSE_REASON) -> list[TransformedRecord]:
    """`entries` unchanged when their response fits in `limit` bytes. Otherwise, until it fits: first the data that
    ProcessingFailed entries echo is dropped (Firehose ignores it and writes the original record to the error output),
    then Ok entries, from the last one back, become ProcessingFailed with empty data.

    Lambda would refuse the whole response (every record of the batch retried, then all of them in the error output);
    this way only the records that do not fit go to the error output, from where a redrive sends them again. Config
    validation keeps this from happening (`max_response_bytes`); it guards a stack whose config predates the bound, and
    batches padded with records too small to be sessions.
    """
    # First a quick upper bound (a recordId character takes at most 6 bytes, escaped): one pass of len() per batch.
    quick = len(_RESPONSE_ENVELOPE) + sum(
        len(_ENTRY_TEMPLATE) + len(_ENTRY_SEPARATOR) + len(entry.result) + len(entry.data) + 6 * len(entry.record_id)
        for entry in entries)
    if quick <= limit:
        return list(entries)
    total = response_bytes(entries)
    if total <= limit:
        return list(entries)
    out = list(entries)
    for wanted in ("ProcessingFailed", "Ok"):
        for position in range(len(out) - 1, -1, -1):
            if total <= limit:
                return out
            entry = out[position]
            if entry.result != wanted or (wanted == "ProcessingFailed" and not entry.data):
                continue
            smaller = (entry._replace(data="") if wanted == "ProcessingFailed" else
                       TransformedRecord(record_id=entry.record_id, result="ProcessingFailed", data="", reason=reason))
            saved = entry_bytes(entry) - entry_bytes(smaller)
            if saved > 0:  # an Ok entry with less than 14 characters of data would grow (never one of ours)
                total -= saved
                out[position] = smaller
    if total > limit:
        raise ResponseTooLarge(f"the processor's response would be {total:,} bytes with every record failed, over the "
                               f"{limit:,}-byte limit: Firehose retries the batch, then writes it to the error output")
    return out


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
