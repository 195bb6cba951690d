"""Choosing `hnsw.ef_search` from measured recall, so serving is as fast as the index allows and never less accurate
than promised.

HNSW's recall at a given `ef_search` depends on the data and on how the graph was built: on the lab's 110 items any
value is exact, on 1M random vectors `ef_search = 40` finds only 82 % of the true top 10. One fixed setting is either
slow for small catalogues or inaccurate for large ones. So the loader measures, right after it builds each index: a
sample of queries, their exact top-k from numpy, and the index's answers at rising `ef_search` values; the first value
whose recall@k reaches the target is recorded next to the table and the serving queries use it.

Recall here is distance-based, as ANN benchmarks count it: a returned item is a hit when its exact score is at least
the k-th best exact score (ties at the boundary count), so duplicate vectors cannot make a correct answer look wrong.

Everything in this module is pure numpy; `recsys.vectordb` runs the index queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Metric = Literal["inner_product", "cosine"]

# The values tried, smallest first. pgvector's cost per query grows about linearly with ef_search, so the first that
# is good enough is the one to use; the top of the ladder is pgvector's maximum.
EF_SEARCH_LADDER: tuple[int, ...] = (10, 20, 40, 60, 80, 100, 150, 200, 300, 400, 600, 800, 1000)
TARGET_RECALL = 0.95
CALIBRATION_K = 10
CALIBRATION_QUERIES = 500
# Scores from PostgreSQL (float4 arithmetic) and numpy (float32 BLAS) differ in the last bits.
SCORE_TOLERANCE = 1e-5
# Candidates are scored in blocks so 1M items x 500 queries never needs a 2 GB score matrix.
_BLOCK_ROWS = 65_536


@dataclass(frozen=True)
class Calibration:
    """What the loader records for one index: the chosen ef_search and the recall it measured there."""

    metric: Metric
    ef_search: int
    recall: float
    target_recall: float
    k: int
    queries: int
    # False when even the top of the ladder missed the target: the index (m, ef_construction) is too coarse.
    reached_target: bool
    # (ef_search, recall) for every value tried, smallest first.
    tried: tuple[tuple[int, float], ...]

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tried"] = [list(pair) for pair in self.tried]
        return out


def sample_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Row numbers of a deterministic sample without replacement (all rows, in order, when there are few)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """The rows scaled to length 1 (a zero row stays zero): cosine similarity is then a plain dot product."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, np.float32(1e-30))


def exact_kth_scores(queries: np.ndarray, candidates: np.ndarray, metric: Metric, k: int) -> np.ndarray:
    """For each query, the k-th best exact score over all candidates (higher is better: inner product, or cosine
    similarity). With fewer than k candidates, the worst score (every candidate is then a true neighbour)."""
    q = np.asarray(queries, dtype=np.float32)
    if metric == "cosine":
        q = unit_rows(q)
    kk = min(k, len(candidates))
    if kk == 0 or len(q) == 0:
        return np.full(len(q), -np.inf, dtype=np.float64)
    best: np.ndarray = np.full((len(q), 0), -np.inf, dtype=np.float32)
    for start in range(0, len(candidates), _BLOCK_ROWS):
        block = np.asarray(candidates[start:start + _BLOCK_ROWS], dtype=np.float32)
        if metric == "cosine":
            block = unit_rows(block)
        scores = np.concatenate([best, q @ block.T], axis=1)
        keep = min(kk, scores.shape[1])
        best = np.partition(scores, scores.shape[1] - keep, axis=1)[:, -keep:]
    return best.min(axis=1).astype(np.float64)


def recall_at_k(found_scores: Sequence[Sequence[float]], kth_scores: np.ndarray, k: int) -> float:
    """Share of the true top-k slots filled: per query, the returned items (at most k) whose exact score reaches the
    k-th best, over k slots per query (fewer when the table holds fewer than k rows: then `kth_scores` is the worst)."""
    if len(found_scores) != len(kth_scores):
        raise ValueError(f"{len(found_scores)} result lists for {len(kth_scores)} queries")
    if not len(kth_scores):
        return 1.0
    hits = 0
    for scores, kth in zip(found_scores, kth_scores, strict=True):
        threshold = float(kth) - SCORE_TOLERANCE * max(1.0, abs(float(kth)))
        hits += sum(1 for score in list(scores)[:k] if score >= threshold)
    return hits / (k * len(kth_scores))


def choose_ef_search(measure: Callable[[int], float], *, metric: Metric, k: int, queries: int,
                     target: float = TARGET_RECALL, ladder: Sequence[int] = EF_SEARCH_LADDER) -> Calibration:
    """Walk the ladder until `measure(ef_search)` (a recall) reaches `target`; the top rung when none does."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target recall must be in (0, 1], got {target}")
    rungs = sorted({int(ef) for ef in ladder if int(ef) >= 1})
    if not rungs:
        raise ValueError("the ef_search ladder is empty")
    tried: list[tuple[int, float]] = []
    for ef in rungs:
        recall = float(measure(ef))
        tried.append((ef, round(recall, 4)))
        if recall >= target:
            return Calibration(metric, ef, round(recall, 4), target, k, queries, True, tuple(tried))
    return Calibration(metric, rungs[-1], tried[-1][1], target, k, queries, False, tuple(tried))
