"""Exact search in memory: `item_emb` read once per load into a matrix, and the top k of a batch by one matrix product.
Serves catalogues up to EXACT_SEARCH_MAX_ITEMS; above that the queries go to the HNSW indexes (`queries`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg2.extensions

from recsys import calibration
from recsys.vectordb.binary_copy import COPY_SIGNATURE, vector_field_dtype
from recsys.vectordb.schema import EMBEDDING_DIM

# User embeddings come from another tower than item embeddings: to a graph built over the items they are
# out-of-distribution queries, and HNSW's greedy walk misses many of their true top items (docs/vectors.md: the
# scale-100 catalogue's inner-product index stays below recall@10 0.82 even at ef_search 1000, while item -> item
# cosine queries reach 0.99 at 20). Below a few hundred thousand items exact search is also the faster one: a batch
# is one matrix product (500 queries x 200k items x 32 dims is ~3 GFLOP) instead of 500 index scans, and the
# catalogue costs ~200 bytes per item of memory (about 40 MB at 200k, with ids and the normalised copy).
EXACT_SEARCH_MAX_ITEMS = 200_000


@dataclass(frozen=True)
class ItemCatalogue:
    """item_emb held in memory: ids and a float32 (n, dim) matrix, tagged with the load it came from."""

    load: tuple[str, str]
    ids: list[str]
    matrix: np.ndarray

    @functools.cached_property
    def row_of(self) -> dict[str, int]:
        return {item_id: row for row, item_id in enumerate(self.ids)}

    @functools.cached_property
    def unit(self) -> np.ndarray:
        return calibration.unit_rows(self.matrix)


# Per server and database (a process may talk to several: tests, the benchmark), the catalogue last read.
_catalogues: dict[tuple[str, str], ItemCatalogue] = {}


def read_catalogue(cur: Any, load: tuple[str, str], table: str = "item_emb") -> ItemCatalogue:
    """Every item of `table`, in one consistent snapshot: ids, then the vectors as binary COPY (138 bytes a row)."""
    import io

    # Serving connections are autocommit: the two reads get a snapshot of their own. (A caller's open transaction is
    # used as it is.)
    own_snapshot = bool(cur.connection.autocommit)
    if own_snapshot:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        cur.execute(f"SELECT id FROM {table} ORDER BY id")
        ids = [str(row[0]) for row in cur.fetchall()]
        buffer = io.BytesIO()
        cur.copy_expert(f"COPY (SELECT embedding FROM {table} ORDER BY id) TO STDOUT (FORMAT binary)", buffer)
    finally:
        if own_snapshot:
            cur.execute("COMMIT")
    data = buffer.getvalue()
    row_dtype = np.dtype([("fields", ">i2"), *vector_field_dtype(EMBEDDING_DIM)])
    header = len(COPY_SIGNATURE)
    if len(data) < header + len(ids) * row_dtype.itemsize:
        raise RuntimeError(f"{table} came back short ({len(data)} bytes for {len(ids)} rows); the next batch "
                           "reads it again")
    rows = np.frombuffer(data, dtype=row_dtype, count=len(ids), offset=header)
    if not (rows["fields"] == 1).all() or not (rows["dim"] == EMBEDDING_DIM).all():
        raise RuntimeError(f"{table} rows are not {EMBEDDING_DIM}-d vectors; the next batch reads it again")
    return ItemCatalogue(load, ids, rows["values"].astype(np.float32))


def item_catalogue(conn: psycopg2.extensions.connection) -> ItemCatalogue | None:
    """item_emb in memory when it is small enough for exact search (else None), re-read only after a new load.

    One small query per call checks which load is live (`embedding_sources.loaded_at` changes at every load, whoever
    loaded), so a swap by the loader is seen by the next batch.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT source_version, loaded_at::text, row_count FROM embedding_sources "
                    "WHERE table_name = 'item_emb'")
        found = cur.fetchone()
        if found is None or int(found[2]) > EXACT_SEARCH_MAX_ITEMS:
            return None
        dsn = conn.get_dsn_parameters()
        where = (f"{dsn.get('host')}:{dsn.get('port')}", str(dsn.get("dbname")))
        load = (str(found[0]), str(found[1]))
        cached = _catalogues.get(where)
        if cached is None or cached.load != load:
            cached = _catalogues[where] = read_catalogue(cur, load)
        return cached


# Scores are computed for this many (query, item) pairs at a time: 32 MB of float32, so a batch of 500 users against
# 200k items never needs a 400 MB matrix inside a 512 MB function.
SCORE_CHUNK_PAIRS = 8_000_000


def exact_top_k(queries: np.ndarray, matrix: np.ndarray, k: int,
                exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers and scores of the k highest inner products per query, best first (ties: lower row first).
    `exclude[i]`, when given, is a row query i must not get (the item itself, for similar items)."""
    q = np.asarray(queries, dtype=np.float32)
    per_chunk = max(1, SCORE_CHUNK_PAIRS // max(1, matrix.shape[0]))
    rows, scores = [], []
    for start in range(0, len(q), per_chunk):
        chunk = q[start:start + per_chunk] @ matrix.T
        if exclude is not None:
            chunk[np.arange(len(chunk)), exclude[start:start + per_chunk]] = -np.inf
        top, top_scores = top_k_of(chunk, k)
        rows.append(top)
        scores.append(top_scores)
    if not rows:
        return np.empty((0, min(k, matrix.shape[0])), dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    return np.concatenate(rows), np.concatenate(scores)


_TOP_K_BLOCK = 64


def top_k_of(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a score matrix, the columns of its k highest scores and the scores, best first (ties: lower column
    first); all columns when k is larger.

    A full selection (argpartition) over every score of a 500 x 11k batch costs more than the matrix product that made
    them. So candidates are found first: cut each row into blocks of 64 columns; the k-th largest block maximum is a
    score that at least k entries reach (one per block), so it is at most the k-th largest score, and every entry of
    the true top k reaches it and lies in a block whose maximum reaches it. Only those few blocks are searched.
    """
    n_rows, n = scores.shape
    k = min(k, n)
    if k == 0:
        return np.empty((n_rows, 0), dtype=np.int64), np.empty((n_rows, 0), dtype=scores.dtype)
    starts = np.arange(0, n, _TOP_K_BLOCK)
    if len(starts) < 4 * k:
        # Too few blocks to prune anything (a small catalogue): sort every row.
        top = np.lexsort((np.broadcast_to(np.arange(n), scores.shape), -scores), axis=1)[:, :k]
        return top, np.take_along_axis(scores, top, axis=1)
    block_max = np.maximum.reduceat(scores, starts, axis=1)
    threshold = np.partition(block_max, len(starts) - k, axis=1)[:, len(starts) - k]
    block_rows, blocks = np.nonzero(block_max >= threshold[:, None])
    columns = blocks[:, None] * _TOP_K_BLOCK + np.arange(_TOP_K_BLOCK)
    inside = columns < n  # the last block may be short
    columns = np.minimum(columns, n - 1)
    values = scores[block_rows[:, None], columns]
    keep = inside & (values >= threshold[block_rows][:, None])
    rows, columns, values = np.broadcast_to(block_rows[:, None], columns.shape)[keep], columns[keep], values[keep]
    order = np.lexsort((columns, -values, rows))
    rows, columns, values = rows[order], columns[order], values[order]
    # Every row has at least k candidates (see above), in row order: its first k are its answer.
    take = np.searchsorted(rows, np.arange(n_rows))[:, None] + np.arange(k)
    return columns[take], values[take]


def exact_similar(catalogue: ItemCatalogue, ids: list[str], k: int) -> list[list[tuple[str, float]]]:
    known = [catalogue.row_of.get(item_id) for item_id in ids]
    rows = np.array([row for row in known if row is not None], dtype=np.int64)
    out: list[list[tuple[str, float]]] = [[] for _ in ids]
    if not len(rows):
        return out
    top, top_scores = exact_top_k(catalogue.unit[rows], catalogue.unit, min(k, len(catalogue.ids) - 1),
                                  exclude=rows)
    answers = iter(zip(top.tolist(), top_scores.tolist(), strict=True))
    for position, row in enumerate(known):
        if row is not None:
            columns, values = next(answers)
            out[position] = [(catalogue.ids[c], float(v)) for c, v in zip(columns, values, strict=True)]
    return out

