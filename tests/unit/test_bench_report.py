"""From each benchmark's JSON document to results.json, RESULTS.md and the summary table (pure), checked on recorded
documents and on the committed results: a renamed key in a benchmark's output fails here, not in a report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bench import registry
from bench.benchmarks import batch, stack, streaming, vectors_report
from bench.goals import check_goals, lookup
from bench.registry import Benchmark, Goal
from bench.render import render_markdown
from bench.results import merge_results
from bench.stats import ratio, spread
from harness.cli.bench import headline_rows

ROOT = Path(__file__).resolve().parents[2]


def goals() -> list[Goal]:
    return [goal for b in registry.benchmarks() for goal in b.goals]

VECTORS_DOC: dict[str, Any] = {
    "benchmark": "vectors", "quick": False, "serving_ef_search": 100, "results": [
        {"items": 1_000_000, "copy": {"rows_per_s": 250_000, "repeats": 5}, "insert": {"rows_per_s": 20_000,
                                                                                      "rows": 20_000},
         "csv_parse": {"rows_per_s": 90_000}, "hnsw_build": {"seconds": 300.5, "m": 16, "ef_construction": 64},
         "queries": [{"ef_search": 40, "p50_ms": 0.9, "p99_ms": 2.0, "recall_at_10": 0.9},
                     {"ef_search": 100, "p50_ms": 1.2, "p99_ms": 3.1, "recall_at_10": 0.97}]},
        {"items": 100_000, "copy": {"rows_per_s": 200_000, "repeats": 5}, "insert": {"rows_per_s": 19_000,
                                                                                    "rows": 20_000},
         "hnsw_build": {"seconds": 20.0, "m": 16, "ef_construction": 64},
         "queries": [{"ef_search": 100, "p50_ms": 0.8, "p99_ms": 1.9, "recall_at_10": 0.99}]},
    ]}
STREAMING_DOC: dict[str, Any] = {"quick": True, "date": "2026-01-01T00:00:00+00:00", "machine": {"cores": 2},
                                 "streaming": {"scale1": {
                                     "items": 110, "batch_size": 500, "ours_records": 1000, "baseline_records": 40,
                                     "ours_records_per_s": 6000.0, "baseline_records_per_s": 100.0,
                                     "ours": {"median": 6000.0, "min": 5000.0, "max": 7000.0, "runs": 3},
                                     "baseline": {"median": 100.0, "min": 90.0, "max": 110.0, "runs": 3}}}}


def committed_results() -> dict[str, Any]:
    value: dict[str, Any] = json.loads((ROOT / "bench" / "results.json").read_text())
    return value


def test_the_committed_results_md_is_what_the_renderer_makes_of_the_committed_results_json() -> None:
    """The layout of RESULTS.md (sections, tables, wording) is the renderer's: both files come from one run."""
    assert render_markdown(committed_results(), registry.benchmarks()) == (ROOT / "bench" / "RESULTS.md").read_text()


def test_merging_the_committed_sections_gives_back_the_committed_file_with_its_goals() -> None:
    results = committed_results()
    sections = {name: results[name] for name in registry.names()}

    merged = merge_results({}, sections, machine=results["machine"], date=results["date"], quick=results["quick"],
                           benchmarks=registry.benchmarks())

    assert merged == results
    assert [g["key"] for g in merged["goals"]] == [goal.key for goal in goals()]


def test_streaming_figures_keep_their_baseline_and_the_ratio_of_the_medians() -> None:
    summary = streaming.summarize(STREAMING_DOC)

    assert summary["scale1"]["ours_records_per_s"] == 6000.0 and summary["scale1"]["ratio"] == 60.0
    assert summary["scale1"]["ours_spread"] == {"median": 6000.0, "min": 5000.0, "max": 7000.0, "runs": 3}
    assert summary["quick"] is True and "machine" not in summary
    assert headline_rows({"streaming": summary}, registry.benchmarks()) == [
        ("streaming scale1: records/s", "6,000", "100", "60.0x")]


def test_vector_figures_are_the_serving_ef_search_and_the_load_rate_is_the_largest_catalogues() -> None:
    summary = vectors_report.summarize(VECTORS_DOC)

    assert summary["items_1m"]["p99_ms"] == 3.1 and summary["items_1m"]["recall_at_10"] == 0.97
    assert summary["items_1m"]["build_s"] == 300.5 and len(summary["items_1m"]["by_ef_search"]) == 2
    assert summary["items_100k"]["p50_ms"] == 0.8
    assert summary["load"] == {"items": 1_000_000, "copy_vectors_per_s": 250_000, "copy_repeats": 5,
                               "insert_vectors_per_s": 20_000, "insert_rows": 20_000, "ratio": 12.5}
    assert headline_rows({"vectors": summary}, registry.benchmarks())[:2] == [
        ("vectors load (1,000,000): vectors/s", "250,000", "20,000", "12.5x"),
        ("vectors items_100k: p50 / p99 ms, recall@10, build s", "0.8 / 1.90, 0.99, 20.00", "exact: recall 1",
         "–")]


def test_each_size_is_served_at_the_ef_search_its_calibration_chose() -> None:
    doc = copy.deepcopy(VECTORS_DOC)
    doc["results"][0]["serving_ef_search"] = 40
    doc["results"][0]["calibration"] = {"ef_search": 40, "recall": 0.96, "tried": [[10, 0.7], [40, 0.96]]}

    summary = vectors_report.summarize(doc)

    assert summary["items_1m"]["ef_search"] == 40 and summary["items_1m"]["p99_ms"] == 2.0
    assert summary["items_1m"]["calibration"]["recall"] == 0.96
    # A size without a calibration falls back to the document's single value.
    assert summary["items_100k"]["ef_search"] == 100


def test_a_missed_p99_is_explained_by_the_fastest_fitting_and_the_cheapest_accurate_ef_search() -> None:
    size = {"p99_ms": 13.6, "by_ef_search": [
        {"ef_search": 40, "p99_ms": 4.3, "recall_at_10": 0.82, "server": {"buffers_p50": 1434}},
        {"ef_search": 20, "p99_ms": 3.0, "recall_at_10": 0.70},
        {"ef_search": 200, "p99_ms": 13.6, "recall_at_10": 0.953},
        {"ef_search": 400, "p99_ms": 25.0, "recall_at_10": 0.99}]}

    gap = vectors_report.p99_gap(size, 5.0, 0.95)

    assert gap is not None and gap["fast"]["ef_search"] == 40 and gap["accurate"]["ef_search"] == 200
    assert vectors_report.p99_gap({**size, "p99_ms": 4.0}, 5.0, 0.95) is None


def test_size_keys_are_the_issues_names() -> None:
    assert [vectors_report.size_key(n) for n in (100_000, 1_000_000, 5_000, 1234)] == [
        "items_100k", "items_1m", "items_5k", "items_1234"]


def test_goals_are_met_missed_or_not_measured_never_guessed() -> None:
    results = {"streaming": streaming.summarize({"streaming": {"scale1": {
        "ours_records_per_s": 6000.0, "baseline_records_per_s": 100.0}}}), "vectors": vectors_report.summarize(
        VECTORS_DOC)}

    status = {c.goal.key: c.status for c in check_goals(results, goals())}

    assert status["streaming.scale1.ratio"] == "met"  # 60x
    assert status["streaming.scale1.ours_records_per_s"] == "met"
    assert status["streaming.scale100.ratio"] == "not measured"
    assert status["vectors.items_1m.p99_ms"] == "met" and status["vectors.items_1m.recall_at_10"] == "met"
    worse = {**results, "vectors": {**results["vectors"], "items_1m": {"p99_ms": 7.5, "recall_at_10": 0.93}}}
    status = {c.goal.key: c.status for c in check_goals(worse, goals())}
    assert status["vectors.items_1m.p99_ms"] == "missed" and status["vectors.items_1m.recall_at_10"] == "missed"
    assert lookup(worse, "vectors.items_1m.p99_ms") == 7.5 and lookup(worse, "vectors.nothing.here") is None


def test_rerunning_one_benchmark_keeps_the_other_sections_of_the_same_machine() -> None:
    machine = {"cpu_model": "X", "cores": 2}
    previous = {"machine": machine, "quick": False, "vectors": {"load": {"copy_vectors_per_s": 1}},
                "stack": {"up_s": 60.0}}

    merged = merge_results(previous, {"stack": {"up_s": 50.0}}, machine=machine, date="2026-01-01T00:00:00",
                           quick=False, benchmarks=registry.benchmarks())

    assert merged["vectors"] == previous["vectors"] and merged["stack"] == {"up_s": 50.0}
    assert merge_results(previous, {}, machine=machine, date="x", quick=True, benchmarks=registry.benchmarks()).get(
        "vectors") is None
    assert merge_results(previous, {}, machine={"cpu_model": "Y"}, date="x", quick=False,
                         benchmarks=registry.benchmarks()).get("vectors") is None


def test_batch_and_stack_sections_are_their_documents_without_the_machine() -> None:
    document = {"scale1": {"rows": 10, "wall_s": 2.0, "baseline_wall_s": 0.5, "ratio": 0.25}, "quick": True,
                "runs": 1, "machine": {"cores": 2}}

    section = batch.BENCHMARK.summarize(document)

    assert section == {"scale1": document["scale1"], "quick": True, "runs": 1}
    assert stack.BENCHMARK.summarize({"up_s": 50.0, "machine": {}}) == {"up_s": 50.0}
    assert headline_rows({"batch": section, "stack": {"up_s": 50.0, "services_s": 10.0, "up_vs_services": 5.0}},
                         registry.benchmarks()) == [("batch scale1: wall s (10 rows)", "2.00", "0.5", "0.2x"),
                                         ("stack: harness up s", "50.00", "10.00", "5.0x"),
                                         ("stack: make demo s", "–", "–", "–")]


def test_a_benchmark_without_a_renderer_of_its_own_gets_a_table_of_its_figures() -> None:
    def main(argv: list[str] | None = None) -> int:
        return 0

    plain = Benchmark(name="plain", measures="rows/s of something against something else", main=main,
                      full_args=(), goals=(Goal("plain.scale1.ratio", ">=", 2, "plain: ratio"),))
    results = merge_results({}, {"plain": {"scale1": {"ratio": 3.5, "label": "x"}, "quick": True,
                                           "command": "python -m plain"}},
                            machine={"cores": 2}, date="d", quick=True, benchmarks=[plain])

    markdown = render_markdown(results, [plain])

    assert "| plain: ratio | >= 2 | 3.50 | met |" in markdown
    assert ("## Plain\n\nrows/s of something against something else.\n\nCommand: `python -m plain`; measured in this "
            "run.\n\n| figure | value |\n| --- | --- |\n| `scale1.ratio` | 3.50 |\n") in markdown
    assert "Not measured" not in markdown


def test_spread_and_ratio_round_as_asked_and_refuse_to_invent_figures() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0], digits=1) == {"median": 2.5, "min": 1.0, "max": 10.0, "runs": 4}
    assert spread([1.23456], digits=2) == {"median": 1.23, "min": 1.23, "max": 1.23, "runs": 1}
    assert spread([]) == {"runs": 0}
    assert ratio(10.0, 4.0) == 2.5 and ratio(1.0, 3.0, digits=4) == 0.3333
    assert ratio(None, 1.0) is None and ratio(1.0, 0) is None


def test_a_profiled_run_is_rendered_as_where_the_time_goes() -> None:
    profile = {"command": "python -m cProfile -m bench.benchmarks.streaming --quick", "total_s": 12.5,
               "focus": "run_ours",
               "tree": [{"depth": 0, "function": "bench/benchmarks/streaming.py:1(run_ours)", "calls": 3,
                         "cumulative_s": 4.0, "share": 1.0},
                        {"depth": 1, "function": "lambda_src/transformation.py:9(handler)", "calls": 6,
                         "cumulative_s": 3.0, "share": 0.75}],
               "by_own_time": [{"function": "json.dumps", "calls": 600, "own_s": 0.25, "cumulative_s": 0.5}]}
    results = {"machine": {}, "goals": [], "streaming": {"profile": profile}}

    markdown = render_markdown(results, registry.benchmarks())

    assert ("## Where the time goes: streaming\n\n`python -m cProfile -m bench.benchmarks.streaming --quick` (a "
            "separate run: profiling slows the code, so it feeds no figure); 12.50 s in the benchmark process.") in \
        markdown
    assert "| &nbsp;&nbsp;`lambda_src/transformation.py:9(handler)` | 6 | 3.00 | 75 % |" in markdown
    assert "| `json.dumps` | 600 | 0.25 | 0.5 |" in markdown
    assert markdown.endswith("Not measured in this file: vectors, batch, stack.\n")
