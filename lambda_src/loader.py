"""Embeddings loader: `embeddings/{item,user}_embeddings.csv` from the artifacts bucket into pgvector, atomically.

Run by the stack's post-deploy `aws.lambda_.Invocation` (locally by the engine) and by hand when artifacts change.
The work is `recsys.vectordb.load_embeddings`: validate while streaming, binary COPY into fresh tables, HNSW indexes
after the load, swap in one transaction, skip files already loaded (by ETag). This module parses the event and wires
S3 and the database.

Event: `{}` loads `s3://$ARTIFACTS_BUCKET/$EMBEDDINGS_PREFIX{item,user}_embeddings.csv`; optional `bucket`,
`item_key`, `user_key` override those. The result is a summary:
`{"status": "loaded"|"unchanged", "tables": {"item_emb": {"status", "rows", "source", "version", ...}, ...}}`.
A malformed file fails the invocation with a message naming the file and row; the live tables stay as they were.

Guard: a file that lacks ids the live table serves (or has fewer than half its rows) is refused, the invocation fails
with `ReplacementRefused` and a one-line message (table, live and new rows, missing ids), and the live tables stay.
`force: true` loads the files as they are: even unchanged ones (same ETag) and even ones that shrink the catalogue.
One flag is enough: an unchanged file is the live content, which the guard accepts anyway.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "embeddings-loader"))

EVENT_KEYS = frozenset({"bucket", "item_key", "user_key", "force"})


class LoaderEventError(ValueError):
    """The invocation event or the function's environment cannot say what to load."""


@dataclass(frozen=True)
class LoadRequest:
    bucket: str
    item_key: str
    user_key: str
    force: bool


def request_from_event(event: Any, env: Mapping[str, str]) -> LoadRequest:
    """Which files to load: the event's overrides, else the environment's bucket and prefix."""
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        kind = type(event).__name__
        raise LoaderEventError(f"event must be a JSON object like {{}} or {{\"bucket\": ...}}, got {kind}")
    unknown = sorted(set(event) - EVENT_KEYS)
    if unknown:
        raise LoaderEventError(f"unknown event field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(EVENT_KEYS))}")
    for name in ("bucket", "item_key", "user_key"):
        if name in event and (not isinstance(event[name], str) or not event[name].strip()):
            raise LoaderEventError(f"event field {name} must be a non-empty string, got {event[name]!r}")
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise LoaderEventError(f"event field force must be true or false, got {force!r}")
    bucket = event.get("bucket") or env.get("ARTIFACTS_BUCKET", "")
    if not bucket:
        raise LoaderEventError("no bucket: set ARTIFACTS_BUCKET on the function or pass {\"bucket\": ...} in the event")
    prefix = env.get("EMBEDDINGS_PREFIX", "embeddings/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return LoadRequest(
        bucket=bucket,
        item_key=event.get("item_key") or f"{prefix}item_embeddings.csv",
        user_key=event.get("user_key") or f"{prefix}user_embeddings.csv",
        force=force,
    )


def load(request: LoadRequest, *, s3: Any, conn: Any) -> dict[str, Any]:
    from recsys import vectordb

    started = time.perf_counter()
    sources = [
        vectordb.s3_source(s3, "item_emb", request.bucket, request.item_key),
        vectordb.s3_source(s3, "user_emb", request.bucket, request.user_key),
    ]
    results = vectordb.load_embeddings(conn, sources, force=request.force, progress=logger.info)
    tables = {r.table: asdict(r) for r in results}
    status = "loaded" if any(r.status == "loaded" for r in results) else "unchanged"
    return {"status": status, "tables": tables, "seconds": round(time.perf_counter() - started, 3)}


def handler(event: Any, context: Any) -> dict[str, Any]:
    import boto3
    from recsys import vectordb

    request = request_from_event(event, os.environ)
    conn = vectordb.connect_from_env(application_name="recsys-embeddings-loader")
    try:
        summary = load(request, s3=boto3.client("s3"), conn=conn)
    finally:
        conn.close()
    logger.info("embeddings load finished", extra={"summary": summary})
    return summary
