"""Vector search without a database: choosing hnsw.ef_search from measured recall (recsys.calibration: exact
neighbours, distance-based recall, the ladder walk) and the exact in-memory top-k that serves small catalogues
(recsys.vectordb.top_k_of / exact_top_k)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recsys import calibration


def brute_force_kth(queries: np.ndarray, candidates: np.ndarray, metric: str, k: int) -> np.ndarray:
    q, c = queries.astype(np.float64), candidates.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        c = c / np.linalg.norm(c, axis=1, keepdims=True)
    scores = np.sort(q @ c.T, axis=1)[:, ::-1]
    return scores[:, min(k, len(candidates)) - 1]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), k=st.integers(1, 12), block=st.sampled_from([7, 64, 65_536]),
       metric=st.sampled_from(["inner_product", "cosine"]), seed=st.integers(0, 2**16))
def test_the_kth_exact_score_matches_a_full_sort_whatever_the_block_size(
        n: int, k: int, block: int, metric: calibration.Metric, seed: int) -> None:
    rng = np.random.default_rng(seed)
    candidates = rng.normal(size=(n, 8)).astype(np.float32)
    queries = rng.normal(size=(5, 8)).astype(np.float32)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(calibration, "_BLOCK_ROWS", block)
        got = calibration.exact_kth_scores(queries, candidates, metric, k)

    np.testing.assert_allclose(got, brute_force_kth(queries, candidates, metric, k), rtol=1e-4, atol=1e-4)


def test_recall_counts_results_that_reach_the_kth_exact_score_ties_included() -> None:
    kth = np.array([0.5, 0.9])
    found = [[0.9, 0.7, 0.5, 0.2],  # three reach 0.5 (the tie counts), one does not
             [0.95, 0.9]]  # only two results for a query that had four true neighbours
    assert calibration.recall_at_k(found, kth, 4) == pytest.approx((3 + 2) / 8)


def test_recall_looks_at_no_more_than_k_results_per_query() -> None:
    assert calibration.recall_at_k([[1.0, 1.0, 1.0]], np.array([1.0]), 2) == 1.0


def test_recall_refuses_results_for_a_different_number_of_queries() -> None:
    with pytest.raises(ValueError, match="2 result lists for 1 queries"):
        calibration.recall_at_k([[1.0], [1.0]], np.array([1.0]), 1)


def test_the_first_ef_search_that_reaches_the_target_is_chosen_and_larger_ones_are_not_tried() -> None:
    asked: list[int] = []

    def measure(ef: int) -> float:
        asked.append(ef)
        return {10: 0.7, 20: 0.9, 40: 0.96, 60: 0.99}[ef]

    result = calibration.choose_ef_search(measure, metric="cosine", k=10, queries=50, target=0.95,
                                          ladder=(60, 10, 40, 20))

    assert (result.ef_search, result.recall, result.reached_target) == (40, 0.96, True)
    assert asked == [10, 20, 40]
    assert result.tried == ((10, 0.7), (20, 0.9), (40, 0.96))
    assert result.as_json()["tried"] == [[10, 0.7], [20, 0.9], [40, 0.96]]


def test_a_target_no_rung_reaches_gives_the_top_rung_and_says_so() -> None:
    result = calibration.choose_ef_search(lambda ef: ef / 1000, metric="inner_product", k=10, queries=5,
                                          target=0.99, ladder=(100, 200))
    assert (result.ef_search, result.recall, result.reached_target) == (200, 0.2, False)


@pytest.mark.parametrize("target", [0.0, -0.5, 1.01])
def test_an_impossible_target_is_refused(target: float) -> None:
    with pytest.raises(ValueError, match="target recall must be in"):
        calibration.choose_ef_search(lambda ef: 1.0, metric="cosine", k=10, queries=1, target=target)


def test_the_query_sample_is_deterministic_without_repeats_and_everything_when_small() -> None:
    np.testing.assert_array_equal(calibration.sample_rows(5, 10), np.arange(5))
    sample = calibration.sample_rows(1000, 100)
    assert len(set(sample.tolist())) == 100 and sample.max() < 1000
    np.testing.assert_array_equal(sample, calibration.sample_rows(1000, 100))


# ---- exact top-k in memory (recsys.vectordb.top_k_of) ----------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(rows=st.integers(1, 6), columns=st.integers(1, 3000), k=st.integers(1, 12), seed=st.integers(0, 2**16),
       tied=st.booleans(), excluded=st.booleans())
def test_top_k_is_the_k_best_columns_best_first_ties_to_the_lower_column(
        rows: int, columns: int, k: int, seed: int, tied: bool, excluded: bool) -> None:
    from recsys import vectordb

    rng = np.random.default_rng(seed)
    # Rounded scores make many ties; -inf marks excluded entries, as similar_items does for the item itself.
    scores = rng.normal(size=(rows, columns)).astype(np.float32)
    if tied:
        scores = np.round(scores, 1)
    if excluded:
        scores[np.arange(rows), rng.integers(0, columns, size=rows)] = -np.inf

    got_columns, got_scores = vectordb.top_k_of(scores, k)

    expected = np.array([np.lexsort((np.arange(columns), -row))[:min(k, columns)] for row in scores])
    np.testing.assert_array_equal(got_columns, expected)
    np.testing.assert_array_equal(got_scores, np.take_along_axis(scores, expected, axis=1))


def test_exact_top_k_in_chunks_of_queries_gives_the_same_answer_and_never_the_excluded_row(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys import vectordb
    from recsys.vectordb import exact

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(700, 8)).astype(np.float32)
    queries = matrix[:50]
    whole_rows, whole_scores = vectordb.exact_top_k(queries, matrix, 5, exclude=np.arange(50))
    monkeypatch.setattr(exact, "SCORE_CHUNK_PAIRS", 700 * 7)  # 7 queries per chunk: exact_top_k reads it there
    chunks: list[int] = []
    select = exact.top_k_of
    monkeypatch.setattr(exact, "top_k_of", lambda scores, k: chunks.append(len(scores)) or select(scores, k))

    rows, scores = vectordb.exact_top_k(queries, matrix, 5, exclude=np.arange(50))

    assert chunks == [7] * 7 + [1], "the batch was scored in chunks"
    np.testing.assert_array_equal(rows, whole_rows)
    np.testing.assert_allclose(scores, whole_scores, rtol=1e-6)  # BLAS rounds differently per shape
    assert not (rows == np.arange(50)[:, None]).any()
