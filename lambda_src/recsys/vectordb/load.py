"""The atomic loader: every changed CSV COPYed into a fresh table, indexed, checked by the replacement guard,
calibrated, and all of them swapped in under one transaction, so readers see the old tables or the new ones.

Use an autocommit connection for reading (`connect_from_env` returns one): a reader that keeps a transaction open holds
a lock on `item_emb` that makes the loader's swap wait.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import psycopg2
import psycopg2.errors
import psycopg2.extensions

from recsys.vectordb.binary_copy import COPY_SIGNATURE, COPY_TRAILER, CopyStream, encode_copy_rows
from recsys.vectordb.embeddings_csv import parse_embeddings
from recsys.vectordb.guard import guard_replacement
from recsys.vectordb.index_calibration import calibrate_staging_indexes, live_user_sample, query_sample
from recsys.vectordb.schema import (
    EMBEDDING_DIM,
    LOADER_LOCK_KEY,
    TABLES,
    HnswParams,
    TableName,
    ensure_schema,
    index_name,
    table_exists,
)
from recsys.vectordb.sources import EmbeddingSource


class SwapLockTimeout(RuntimeError):
    """The loader could not get the live table's lock for the swap; the load was rolled back."""


LoadStatus = Literal["loaded", "unchanged"]


@dataclass
class TableLoad:
    table: TableName
    status: LoadStatus
    source: str
    version: str
    rows: int
    copy_seconds: float = 0.0
    index_seconds: float = 0.0
    calibration_seconds: float = 0.0
    # Per metric, the calibrated ef_search and its measured recall (`recsys.calibration.Calibration.as_json`).
    hnsw_search: dict[str, Any] | None = None


def _recorded(cur: Any, table: TableName) -> tuple[str, str] | None:
    if not table_exists(cur, table):
        return None
    cur.execute("SELECT source_uri, source_version FROM embedding_sources WHERE table_name = %s", (table,))
    found = cur.fetchone()
    return (found[0], found[1]) if found else None


def _build_fresh_table(cur: Any, source: EmbeddingSource, params: HnswParams,
                       progress: Callable[[str], None], *, guard: bool = True) -> tuple[TableLoad, np.ndarray]:
    """COPY the source into `<table>_loading` and index it; returns the load and the vectors (for the calibration).
    With `guard`, a file that would drop live ids is refused after the COPY (`guard_replacement`)."""
    spec = TABLES[source.table]
    staging = f"{spec.name}_loading"
    cur.execute(f"DROP TABLE IF EXISTS {staging}")
    cur.execute(f"CREATE TABLE {staging} (id {spec.id_type} NOT NULL, embedding vector({EMBEDDING_DIM}) NOT NULL)")
    rows = 0
    # float32, as stored: 128 MB for 1M items, well inside the loader's memory.
    kept: list[np.ndarray] = []

    def blocks() -> Iterator[bytes]:
        nonlocal rows
        yield COPY_SIGNATURE
        for chunk in parse_embeddings(source.open_lines(), id_type=spec.id_type, source=source.uri):
            rows += len(chunk.ids)
            kept.append(np.asarray(chunk.vectors, dtype=np.float32))
            yield encode_copy_rows(chunk, spec.id_type)
        yield COPY_TRAILER

    started = time.perf_counter()
    progress(f"{spec.name}: copying {source.uri}")
    stream = CopyStream(blocks())
    try:
        cur.copy_expert(f"COPY {staging} (id, embedding) FROM STDIN WITH (FORMAT binary)", stream, size=1 << 20)
    except psycopg2.Error:
        if stream.error is not None:
            raise stream.error from None
        raise
    copied = time.perf_counter()
    progress(f"{spec.name}: {rows} rows copied in {copied - started:.1f}s; building indexes")
    # Indexes after the load: one bulk build is far faster than maintaining them row by row.
    cur.execute(f"SET LOCAL maintenance_work_mem = '{params.maintenance_work_mem}'")
    cur.execute(f"ALTER TABLE {staging} ADD CONSTRAINT {staging}_pkey PRIMARY KEY (id)")
    if guard:
        guard_replacement(cur, spec.name, staging, rows, source.uri)
    for suffix, opclass in spec.indexes:
        cur.execute(
            f"CREATE INDEX {index_name(staging, suffix)} ON {staging} USING hnsw (embedding {opclass}) "
            f"WITH (m = {int(params.m)}, ef_construction = {int(params.ef_construction)})"
        )
    indexed = time.perf_counter()
    vectors = np.concatenate(kept) if kept else np.empty((0, EMBEDDING_DIM), dtype=np.float32)
    return TableLoad(spec.name, "loaded", source.uri, source.version, rows, copied - started, indexed - copied), vectors

def _swap_in(cur: Any, load: TableLoad, *, lock_timeout_ms: int, attempts: int) -> None:
    """Replace the live table by the staging one inside the caller's transaction (readers see old, then new)."""
    spec = TABLES[load.table]
    staging = f"{spec.name}_loading"
    for attempt in range(1, attempts + 1):
        cur.execute("SAVEPOINT swap")
        try:
            # A short lock timeout, retried: waiting long for the exclusive lock would queue every reader behind us.
            cur.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            if table_exists(cur, spec.name):
                cur.execute(f"LOCK TABLE {spec.name} IN ACCESS EXCLUSIVE MODE")
            break
        except psycopg2.errors.LockNotAvailable:
            cur.execute("ROLLBACK TO SAVEPOINT swap")
            if attempt == attempts:
                raise SwapLockTimeout(
                    f"could not swap in the new {spec.name}: another session kept a lock on it through {attempts} "
                    f"attempts (most likely a transaction left open; see pg_stat_activity, state 'idle in "
                    "transaction'). Nothing was changed; run the loader again once it is gone."
                ) from None
            time.sleep(0.2 * attempt)
    cur.execute("SET LOCAL lock_timeout = 0")
    cur.execute(f"DROP TABLE IF EXISTS {spec.name}")
    cur.execute(f"ALTER TABLE {staging} RENAME TO {spec.name}")
    cur.execute(f"ALTER TABLE {spec.name} RENAME CONSTRAINT {staging}_pkey TO {spec.name}_pkey")
    for suffix, _ in spec.indexes:
        cur.execute(f"ALTER INDEX {index_name(staging, suffix)} RENAME TO {index_name(spec.name, suffix)}")
    cur.execute(
        "INSERT INTO embedding_sources (table_name, source_uri, source_version, row_count, loaded_at, hnsw_search) "
        "VALUES (%s, %s, %s, %s, now(), %s) ON CONFLICT (table_name) DO UPDATE SET source_uri = EXCLUDED.source_uri, "
        "source_version = EXCLUDED.source_version, row_count = EXCLUDED.row_count, loaded_at = now(), "
        "hnsw_search = EXCLUDED.hnsw_search",
        (spec.name, load.source, load.version, load.rows,
         None if load.hnsw_search is None else json.dumps(load.hnsw_search)),
    )


def load_embeddings(conn: psycopg2.extensions.connection, sources: Sequence[EmbeddingSource], *, force: bool = False,
                    params: HnswParams | None = None, progress: Callable[[str], None] | None = None,
                    lock_timeout_ms: int = 2000, lock_attempts: int = 30) -> list[TableLoad]:
    """Load every changed source into a fresh table, index it, and swap all of them in one transaction.

    All or nothing: a bad row in any file rolls everything back and the live tables stay as they were. Unless `force`,
    a source whose (uri, version) is already recorded for an existing table is skipped, and a file that lacks ids the
    live table serves (or has fewer than half its rows) is refused with `ReplacementRefused`. One flag for both: a file
    skipped as unchanged is the live content, which the guard would accept anyway, so `force` means "load these files
    as they are, whatever is live".
    """
    params = params or HnswParams()
    say = progress or (lambda _message: None)
    was_autocommit = conn.autocommit
    conn.autocommit = False
    results: list[TableLoad] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOADER_LOCK_KEY,))
            # Under the lock: two first-ever loads racing on CREATE EXTENSION / CREATE TABLE would otherwise collide.
            ensure_schema(conn)
            fresh: list[tuple[TableLoad, np.ndarray]] = []
            for source in sources:
                recorded = _recorded(cur, source.table)
                if not force and recorded == (source.uri, source.version):
                    cur.execute("SELECT row_count FROM embedding_sources WHERE table_name = %s", (source.table,))
                    row = cur.fetchone()
                    assert row is not None  # _recorded just read this table's row, under the lock
                    results.append(TableLoad(source.table, "unchanged", source.uri, source.version, int(row[0])))
                    say(f"{source.table}: unchanged ({source.uri} {source.version})")
                    continue
                load, vectors = _build_fresh_table(cur, source, params, say, guard=not force)
                fresh.append((load, vectors))
                results.append(load)
            # The item table's inner-product index is calibrated with user embeddings: this run's, else the live ones.
            fresh_users = [vectors for load, vectors in fresh if load.table == "user_emb"]
            user_queries = None
            if any(load.table == "item_emb" for load, _vectors in fresh):
                user_queries = query_sample(fresh_users[0]) if fresh_users else live_user_sample(cur)
            for load, vectors in fresh:
                started = time.perf_counter()
                load.hnsw_search = calibrate_staging_indexes(cur, load.table, vectors, user_queries, say)
                load.calibration_seconds = time.perf_counter() - started
            for load, _vectors in fresh:
                _swap_in(cur, load, lock_timeout_ms=lock_timeout_ms, attempts=lock_attempts)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.autocommit = was_autocommit
    return results
