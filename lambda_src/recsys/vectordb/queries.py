"""The batch similarity queries, exact in memory for catalogues up to EXACT_SEARCH_MAX_ITEMS (`exact`), else one SQL
statement per batch over the HNSW indexes.

Metrics (higher score is always better):
- user -> items (`items_for_users`): inner product, `score = user . item`, because the model predicts
  `rating = offset + user . item`; the best-scored item is the one with the highest predicted rating.
- item -> items (`similar_items`): cosine similarity, `score = 1 - cosine_distance` in [-1, 1], so a popular item with a
  long vector does not crowd out the items that really resemble the query item.

Each statement covers the whole batch (`unnest ... WITH ORDINALITY` + `CROSS JOIN LATERAL`), and each lateral subquery
is `ORDER BY embedding <op> query LIMIT k`, the shape the HNSW indexes serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg2.extensions

from recsys.calibration import Metric
from recsys.vectordb.exact import exact_similar, exact_top_k, item_catalogue
from recsys.vectordb.schema import EMBEDDING_DIM

MAX_K = 1000
# Only for tables the loader did not calibrate (loaded by sql/embeddings.sql): the loader records, per index, the
# smallest ef_search that reaches recall@10 >= 0.95 on the loaded data (recsys.calibration), and the queries use that.
# 200 is what 1M random vectors need with the default graph (bench/benchmarks/vectors.py, docs/vectors.md).
DEFAULT_EF_SEARCH = 200


class QueryInputError(ValueError):
    """A query argument is unusable (wrong dimension, non-finite number, bad k)."""


# Sent in the same round trip before each query: the ef_search for the index it is about to search. Pinned by the
# connection, else the loader's calibration for item_emb (read every time, so a reload's new value applies at once),
# else DEFAULT_EF_SEARCH; never below the rows the query needs (pgvector returns at most ef_search rows per scan).
EF_SEARCH_SQL = """
SELECT set_config('hnsw.ef_search', greatest(%(min_ef_search)s, coalesce(%(pinned_ef_search)s, (
    SELECT (hnsw_search -> %(metric)s ->> 'ef_search')::int FROM embedding_sources WHERE table_name = 'item_emb'
), %(default_ef_search)s))::text, false);
"""

ITEMS_FOR_USERS_SQL = """
SELECT q.ord, r.id, r.score
FROM unnest(%(embeddings)s::vector[]) WITH ORDINALITY AS q(embedding, ord)
CROSS JOIN LATERAL (
    SELECT i.id, -(i.embedding <#> q.embedding) AS score
    FROM item_emb AS i
    ORDER BY i.embedding <#> q.embedding
    LIMIT %(k)s
) AS r
ORDER BY q.ord, r.score DESC
"""

SIMILAR_ITEMS_SQL = """
SELECT q.ord, r.id, r.score
FROM unnest(%(item_ids)s::varchar[]) WITH ORDINALITY AS q(item_id, ord)
JOIN item_emb AS src ON src.id = q.item_id
CROSS JOIN LATERAL (
    SELECT i.id, 1 - (i.embedding <=> src.embedding) AS score
    FROM item_emb AS i
    WHERE i.id <> src.id
    ORDER BY i.embedding <=> src.embedding
    LIMIT %(k)s
) AS r
ORDER BY q.ord, r.score DESC
"""


def vector_literal(values: Sequence[float] | np.ndarray) -> str:
    # tolist() turns the row into Python floats in one call; repr is the shortest text that round-trips.
    as_list = values.tolist() if isinstance(values, np.ndarray) else [float(v) for v in values]
    return "[" + ",".join(map(repr, as_list)) + "]"


def _ef_search_params(conn: Any, metric: Metric, rows_needed: int) -> dict[str, Any]:
    return {"metric": metric, "min_ef_search": int(rows_needed), "default_ef_search": DEFAULT_EF_SEARCH,
            "pinned_ef_search": getattr(conn, "pinned_ef_search", None)}


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= MAX_K:
        raise QueryInputError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return int(k)


def _check_embeddings(embeddings: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    try:
        matrix = np.asarray(embeddings, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QueryInputError(f"embeddings must be a list of {EMBEDDING_DIM}-number lists ({exc})") from exc
    if matrix.ndim == 1 and matrix.size == EMBEDDING_DIM:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or (matrix.size and matrix.shape[1] != EMBEDDING_DIM):
        raise QueryInputError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {matrix.shape}")
    bad: np.ndarray | list[int] = np.flatnonzero(~np.isfinite(matrix).all(axis=1)) if matrix.size else []
    if len(bad):
        raise QueryInputError(f"embedding #{int(bad[0])} contains NaN or infinity")
    return matrix


def _group(rows: Sequence[tuple[int, str, float]], n: int) -> list[list[tuple[str, float]]]:
    out: list[list[tuple[str, float]]] = [[] for _ in range(n)]
    for ordinal, item_id, score in rows:
        out[ordinal - 1].append((str(item_id), float(score)))
    return out



def items_for_users(conn: psycopg2.extensions.connection, embeddings: np.ndarray | Sequence[Sequence[float]],
                    k: int) -> list[list[tuple[str, float]]]:
    """For each user embedding, the k items with the highest inner product `(item_id, score)`, best first.

    Exact for catalogues up to EXACT_SEARCH_MAX_ITEMS (in memory, see above); above that, one statement over the
    inner-product HNSW index at its calibrated ef_search.
    """
    k = _check_k(k)
    matrix = _check_embeddings(embeddings)
    if len(matrix) == 0:
        return []
    catalogue = item_catalogue(conn)
    if catalogue is not None:
        rows, scores = exact_top_k(matrix, catalogue.matrix, k)
        return [[(catalogue.ids[r], float(v)) for r, v in zip(row, score, strict=True)]
                for row, score in zip(rows.tolist(), scores.tolist(), strict=True)]
    with conn.cursor() as cur:
        cur.execute(EF_SEARCH_SQL + ITEMS_FOR_USERS_SQL,
                    {"embeddings": [vector_literal(row) for row in matrix], "k": k,
                     **_ef_search_params(conn, "inner_product", k)})
        return _group(cur.fetchall(), len(matrix))


def similar_items(conn: psycopg2.extensions.connection, item_ids: Sequence[str],
                  k: int) -> list[list[tuple[str, float]]]:
    """For each item id, the k other items with the highest cosine similarity, best first: exact for catalogues up to
    EXACT_SEARCH_MAX_ITEMS, else over the cosine HNSW index at its calibrated ef_search.

    An id that is not in `item_emb` gets an empty list (the caller decides whether that is an error: the inference
    Function URL answers 404 for a single unknown id).
    """
    k = _check_k(k)
    if isinstance(item_ids, str):
        raise QueryInputError("item_ids must be a list of ids, not a single string")
    ids = [str(i) for i in item_ids]
    if not ids:
        return []
    catalogue = item_catalogue(conn)
    if catalogue is not None:
        return exact_similar(catalogue, ids, k)
    with conn.cursor() as cur:
        # k + 1 rows: the index scan also meets the item itself, which the query then filters out.
        cur.execute(EF_SEARCH_SQL + SIMILAR_ITEMS_SQL,
                    {"item_ids": ids, "k": k, **_ef_search_params(conn, "cosine", k + 1)})
        return _group(cur.fetchall(), len(ids))
