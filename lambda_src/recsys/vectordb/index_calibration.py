"""Calibrating a freshly built HNSW index: recall@k against exact search on the loaded data, and the smallest
`hnsw.ef_search` that reaches the target (`recsys.calibration` is the pure side; this module runs the index queries).
The loader records the result per index in `embedding_sources.hnsw_search`, and the queries read it back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from recsys import calibration
from recsys.calibration import Metric
from recsys.vectordb.queries import vector_literal
from recsys.vectordb.schema import METRIC_ORDER_BY, METRIC_SCORE, OPCLASS_METRIC, TABLES, TableName, table_exists


def _index_answers(cur: Any, table: str, metric: Metric, queries: np.ndarray, k: int, ef_search: int,
                   rows_of_table: bool) -> list[list[float]]:
    """The scores of the k rows the HNSW index of `metric` on `table` returns for each query at `ef_search`.

    With `rows_of_table` (cosine queries that are rows of the table) the answer is the k nearest *other* rows, as
    `similar_items` asks: k + 1 rows from the index, the query itself (similarity 1) left out.
    """
    fetch = k + 1 if rows_of_table else k
    cur.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
    cur.execute(
        f"SELECT q.ord, {METRIC_SCORE[metric]} "
        f"FROM unnest(%(queries)s::vector[]) WITH ORDINALITY AS q(embedding, ord) "
        f"CROSS JOIN LATERAL (SELECT i.embedding FROM {table} AS i "
        f"ORDER BY i.embedding {METRIC_ORDER_BY[metric]} q.embedding LIMIT %(k)s) AS i",
        {"queries": [vector_literal(row) for row in queries], "k": int(fetch)},
    )
    out: list[list[float]] = [[] for _ in range(len(queries))]
    for ordinal, score in cur.fetchall():
        out[ordinal - 1].append(float(score))
    if rows_of_table:
        for scores in out:
            itself = next((i for i, score in enumerate(scores) if score >= 1.0 - calibration.SCORE_TOLERANCE), None)
            if itself is not None:
                del scores[itself]
    return [scores[:k] for scores in out]


def calibrate_index(cur: Any, table: str, metric: Metric, vectors: np.ndarray, queries: np.ndarray, *,
                    rows_of_table: bool, k: int = calibration.CALIBRATION_K,
                    target: float = calibration.TARGET_RECALL,
                    ladder: Sequence[int] = calibration.EF_SEARCH_LADDER) -> calibration.Calibration:
    """Measure the HNSW index of `metric` on `table` (whose rows are `vectors`) against exact search for `queries`,
    and choose the smallest ef_search on the ladder whose recall@k reaches `target`.

    `rows_of_table`: the queries are rows of the table and, as in `similar_items`, their answer is the k nearest
    other rows (cosine only: the left-out row is recognised by its similarity of 1).

    Runs inside the caller's transaction (it uses SET LOCAL), with sequential scans off so the planner cannot answer
    a small table exactly and make any ef_search look perfect.
    """
    if rows_of_table and metric != "cosine":
        raise ValueError("rows_of_table needs the cosine metric: only there is a row's score with itself known (1)")
    # A row's best match is itself: the k-th nearest other row is the (k+1)-th nearest row.
    kth = calibration.exact_kth_scores(queries, vectors, metric, k + 1 if rows_of_table else k)
    cur.execute("SET LOCAL enable_seqscan = off")
    result = calibration.choose_ef_search(
        lambda ef: calibration.recall_at_k(_index_answers(cur, table, metric, queries, k, ef, rows_of_table), kth,
                                           k),
        metric=metric, k=k, queries=len(queries), target=target, ladder=ladder)
    cur.execute("SET LOCAL enable_seqscan = on")
    return result


def query_sample(vectors: np.ndarray) -> np.ndarray:
    return vectors[calibration.sample_rows(len(vectors), calibration.CALIBRATION_QUERIES)]


def live_user_sample(cur: Any) -> np.ndarray | None:
    """Some live user embeddings (deterministic), when the run does not load users itself."""
    if not table_exists(cur, "user_emb"):
        return None
    cur.execute("SELECT embedding::text FROM user_emb ORDER BY md5(id::text) LIMIT %s",
                (calibration.CALIBRATION_QUERIES,))
    rows = [np.array(text.strip("[]").split(","), dtype=np.float32) for (text,) in cur.fetchall()]
    return np.stack(rows) if rows else None



def calibrate_staging_indexes(cur: Any, table: TableName, vectors: np.ndarray, user_queries: np.ndarray | None,
                              progress: Callable[[str], None]) -> dict[str, Any]:
    """Calibrate every index of `table`'s freshly built staging copy (whose rows are `vectors`); per metric, the
    result as `embedding_sources.hnsw_search` records it at the swap."""
    spec = TABLES[table]
    found: dict[str, Any] = {}
    for _suffix, opclass in spec.indexes:
        metric = OPCLASS_METRIC[opclass]
        # items_for_users searches item_emb by inner product with *user* embeddings: calibrate with those. Cosine
        # serves "similar to this row": the queries are the table's own rows, themselves left out.
        from_users = metric == "inner_product" and user_queries is not None
        queries = user_queries if from_users else query_sample(vectors)
        if len(vectors) == 0 or queries is None or len(queries) == 0:
            continue
        result = calibrate_index(cur, f"{spec.name}_loading", metric, vectors, queries,
                                 rows_of_table=metric == "cosine")
        found[metric] = result.as_json()
        note = "" if result.reached_target else (
            f"; even ef_search={result.ef_search} stays below the target {result.target_recall}: rebuild with a "
            "larger m / ef_construction")
        progress(f"{spec.name}: {metric} index calibrated: ef_search={result.ef_search} gives recall@{result.k} "
                 f"{result.recall:.3f} over {result.queries} queries{note}")
    return found
