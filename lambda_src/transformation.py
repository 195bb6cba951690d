"""Firehose data-transformation processor: adds `recommended_items` and `similar_items` to every session record.

The handler is wiring only: decoding and validation live in `recsys.firehose`, the batch logic in `recsys.recommend`.
Per container, the serving model is loaded once and one database connection is kept; per batch, the cost is one model
call and two SQL statements. A record that can never be processed comes back `ProcessingFailed` (reason logged, no
record content): nothing in a record's content fails its batch. Only infrastructure fails a batch (the database
unreachable, the model bundle missing): that raises, so Firehose retries the whole batch. The response never exceeds
Lambda's 6 MB (`recsys.firehose.fit_response`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import KinesisFirehoseEvent
from recsys import firehose
from recsys.firehose import InvalidRecord, SessionEvent, TransformedRecord
from recsys.recommend import ItemsForUsers, Recommendation, SimilarItems, UserEmbedder, recommend_batch

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "transformation"))

DEFAULT_TOP_K = 5


def top_k_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    raw = environ.get("TOP_K", "").strip()
    if not raw:
        return DEFAULT_TOP_K
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ValueError(f"TOP_K must be an integer from 1 to 100, got {raw!r}: fix the function's environment")
    return int(raw)


def transform_batch(
    records: Sequence[tuple[str, Any]],
    *,
    model: UserEmbedder,
    items_for_users: ItemsForUsers,
    similar_items: SimilarItems,
    k: int,
    response_limit: int = firehose.LAMBDA_RESPONSE_LIMIT_BYTES,
) -> list[TransformedRecord]:
    """(recordId, base64 data) pairs -> one response entry per recordId, in input order, whose response fits in
    `response_limit` bytes."""
    sessions: list[SessionEvent] = []
    valid_positions: list[int] = []
    out: list[TransformedRecord | None] = [None] * len(records)
    for position, (record_id, data) in enumerate(records):
        try:
            sessions.append(firehose.decode_session(data))
        except InvalidRecord as err:
            out[position] = firehose.failed(record_id, data, str(err))
            continue
        valid_positions.append(position)

    results = recommend_batch(
        sessions, model=model, items_for_users=items_for_users, similar_items=similar_items, k=k
    )
    # Recommendations are shared by the sessions of one user and one product: encode each once. recommend_batch hands
    # the sessions of one user the same tuple object, so the cache keys on its identity (no hashing of the items).
    # A field that cannot be written (a score that is not finite, an id too long for the response bound) is cached as
    # its InvalidRecord and fails the sessions that share it.
    recommended_limit, similar_limit = firehose.max_recommended_bytes(k), firehose.max_similar_bytes(k)
    encoded_recommended: dict[int, str | InvalidRecord] = {}
    encoded_similar: dict[str, str | InvalidRecord] = {}
    for position, session, result in zip(valid_positions, sessions, results, strict=True):
        record_id, data = records[position]
        if not isinstance(result, Recommendation):
            out[position] = firehose.failed(record_id, data, str(result))
            continue
        recommended = encoded_recommended.get(id(result.recommended))
        if recommended is None:
            recommended = encoded_recommended[id(result.recommended)] = _recommended_field(result, recommended_limit)
        similar = encoded_similar.get(result.product_code)
        if similar is None:
            similar = encoded_similar[result.product_code] = _similar_field(result, similar_limit)
        try:
            if isinstance(recommended, InvalidRecord):
                raise recommended
            if isinstance(similar, InvalidRecord):
                raise similar
            out[position] = firehose.ok_data(record_id, firehose.enriched_line(session, recommended, similar))
        except InvalidRecord as err:
            out[position] = firehose.failed(record_id, data, str(err))
    return firehose.fit_response([entry for entry in out if entry is not None], response_limit)


def _recommended_field(result: Recommendation, limit: int) -> str | InvalidRecord:
    try:
        return firehose.checked_field("recommended_items", firehose.recommended_json(result.recommended), limit)
    except InvalidRecord as err:
        return err


def _similar_field(result: Recommendation, limit: int) -> str | InvalidRecord:
    try:
        return firehose.checked_field("similar_items", firehose.similar_json(result.product_code, result.neighbours),
                                      limit)
    except InvalidRecord as err:
        return err


class _Container:
    """What a warm container keeps between invocations: the model (loaded once) and one connection."""

    def __init__(self) -> None:
        self.model: UserEmbedder | None = None
        self.conn: Any = None

    def load_model(self) -> UserEmbedder:
        if self.model is None:
            from recsys.model import ServingModel

            self.model = ServingModel.from_s3(
                os.environ["ARTIFACTS_BUCKET"], os.environ.get("SERVING_PREFIX", "serving/")
            )
        return self.model

    def connection(self) -> Any:
        if self.conn is None or getattr(self.conn, "closed", False):
            from recsys import vectordb

            self.conn = vectordb.connect_from_env()
        return self.conn

    def forget_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - the connection is already broken; we only let go of it
                pass


container = _Container()


def _database_calls(conn: Any) -> tuple[ItemsForUsers, SimilarItems]:
    from recsys import vectordb

    def items_for_users(embeddings: Any, k: int) -> Any:
        return vectordb.items_for_users(conn, embeddings, k)

    def similar_items(item_ids: Sequence[str], k: int) -> Any:
        return vectordb.similar_items(conn, item_ids, k)

    return items_for_users, similar_items


def process_event(event: dict[str, Any]) -> dict[str, Any]:
    firehose_event = KinesisFirehoseEvent(event)
    records = [(record.record_id, record.get("data")) for record in firehose_event.records]
    k = top_k_from_env()
    model = container.load_model()
    try:
        conn = container.connection()
        items_for_users, similar_items = _database_calls(conn)
        transformed = transform_batch(
            records, model=model, items_for_users=items_for_users, similar_items=similar_items, k=k
        )
    except Exception:
        # Whatever broke mid-batch (most often the database), the next invocation starts with a fresh connection.
        container.forget_connection()
        raise
    failures = [entry for entry in transformed if entry.result == "ProcessingFailed"]
    for entry in failures:
        logger.warning("record not processed", extra={"record_id": entry.record_id, "reason": entry.reason})
    oversized = sum(1 for entry in failures if entry.reason == firehose.OVERSIZED_RESPONSE_REASON)
    if oversized:
        logger.error(
            "response over Lambda's limit: records left for the error output",
            extra={"records": oversized, "processor_buffer_bound": "lower recsys:processorBufferSizeMb or recsys:topK"},
        )
    logger.info(
        "batch transformed",
        extra={"invocation_id": firehose_event.invocation_id, "records": len(records), "failed": len(failures)},
    )
    return firehose.response(transformed)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_event(event)
