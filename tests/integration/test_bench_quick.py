"""Every benchmark still runs: `python -m harness bench --quick --only NAME` at its CI size yields a well-formed
results.json and RESULTS.md. No timing is asserted (the machine is shared; figures at CI size mean little); what is
asserted is that each figure the issue names is there, is a positive number, and sits next to its baseline and ratio.

The aggregator's pure parts (turning each benchmark's document into results.json keys, the goals, merging, the
markdown) are checked on recorded documents, so a renamed key in a benchmark's output fails here, not in a report.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.cli.bench import load_bench_runner

ROOT = Path(__file__).resolve().parents[2]
runner = load_bench_runner()

# The keys results.json must carry for each benchmark (issue 7), in their quick form.
REQUIRED: dict[str, list[str]] = {
    "streaming": ["scale1.ours_records_per_s", "scale1.baseline_records_per_s", "scale1.ratio"],
    "vectors": ["load.copy_vectors_per_s", "load.insert_vectors_per_s", "load.ratio", "items_5k.p50_ms",
                "items_5k.p99_ms", "items_5k.recall_at_10", "items_5k.build_s"],
    "batch": ["scale1.rows", "scale1.wall_s", "scale1.rows_per_s", "scale1.partitions", "scale1.output_files",
              "scale1.baseline_wall_s", "scale1.ratio"],
    "stack": ["up_s", "services_s", "up_vs_services"],
}


def run_bench(out_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "harness", "bench", "--out-dir", str(out_dir), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1800)


@pytest.mark.parametrize("name", list(REQUIRED))
def test_the_quick_benchmark_yields_every_figure_with_its_baseline(name: str, tmp_path: Path) -> None:
    result = run_bench(tmp_path, "--quick", "--only", name)

    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True
    assert set(results["machine"]) >= {"cores", "memory_mb", "cpu_model"} and results["machine"]["cores"] >= 1
    datetime.fromisoformat(results["date"])
    for key in REQUIRED[name]:
        value = runner.lookup(results[name], key)
        assert isinstance(value, int | float) and value > 0, f"{name}.{key} = {value!r}"
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert "| goal | target | measured | status |" in markdown
    assert {"streaming": "## Streaming", "vectors": "## Vectors", "batch": "## Batch", "stack": "## Stack"}[name] in \
        markdown


def test_an_unknown_benchmark_name_is_refused_with_the_choices(tmp_path: Path) -> None:
    result = run_bench(tmp_path, "--quick", "--only", "streeming")

    assert result.returncode == 2
    assert "streeming" in result.stderr and "streaming, vectors, batch, stack" in result.stderr
    assert not (tmp_path / "results.json").exists()


# ---- the aggregator on recorded documents (pure) --------------------------------------------------------------------

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


def test_vector_figures_are_the_serving_ef_search_and_the_load_rate_is_the_largest_catalogues() -> None:
    summary = runner.summarize_vectors(VECTORS_DOC)

    assert summary["items_1m"]["p99_ms"] == 3.1 and summary["items_1m"]["recall_at_10"] == 0.97
    assert summary["items_1m"]["build_s"] == 300.5 and len(summary["items_1m"]["by_ef_search"]) == 2
    assert summary["items_100k"]["p50_ms"] == 0.8
    assert summary["load"] == {"items": 1_000_000, "copy_vectors_per_s": 250_000, "copy_repeats": 5,
                               "insert_vectors_per_s": 20_000, "insert_rows": 20_000, "ratio": 12.5}


def test_each_size_is_served_at_the_ef_search_its_calibration_chose() -> None:
    doc = copy.deepcopy(VECTORS_DOC)
    doc["results"][0]["serving_ef_search"] = 40
    doc["results"][0]["calibration"] = {"ef_search": 40, "recall": 0.96, "tried": [[10, 0.7], [40, 0.96]]}

    summary = runner.summarize_vectors(doc)

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

    gap = runner.p99_gap(size, 5.0, 0.95)

    assert gap is not None and gap["fast"]["ef_search"] == 40 and gap["accurate"]["ef_search"] == 200
    assert runner.p99_gap({**size, "p99_ms": 4.0}, 5.0, 0.95) is None


def test_goals_are_met_missed_or_not_measured_never_guessed() -> None:
    results = {"streaming": runner.summarize_streaming({"streaming": {"scale1": {
        "ours_records_per_s": 6000.0, "baseline_records_per_s": 100.0}}}), "vectors": runner.summarize_vectors(
        VECTORS_DOC)}

    status = {c.goal.key: c.status for c in runner.check_goals(results)}

    assert status["streaming.scale1.ratio"] == "met"  # 60x
    assert status["streaming.scale1.ours_records_per_s"] == "met"
    assert status["streaming.scale100.ratio"] == "not measured"
    assert status["vectors.items_1m.p99_ms"] == "met" and status["vectors.items_1m.recall_at_10"] == "met"
    worse = {**results, "vectors": {**results["vectors"], "items_1m": {"p99_ms": 7.5, "recall_at_10": 0.93}}}
    status = {c.goal.key: c.status for c in runner.check_goals(worse)}
    assert status["vectors.items_1m.p99_ms"] == "missed" and status["vectors.items_1m.recall_at_10"] == "missed"


def test_rerunning_one_benchmark_keeps_the_other_sections_of_the_same_machine() -> None:
    machine = runner.machine_description()
    previous = {"machine": machine, "quick": False, "vectors": {"load": {"copy_vectors_per_s": 1}},
                "stack": {"up_s": 60.0}}

    merged = runner.merge_results(previous, {"stack": {"up_s": 50.0}}, machine=machine, date="2026-01-01T00:00:00",
                                  quick=False)

    assert merged["vectors"] == previous["vectors"] and merged["stack"] == {"up_s": 50.0}
    assert runner.merge_results(previous, {}, machine=machine, date="x", quick=True).get("vectors") is None


def test_a_benchmarks_json_is_found_after_noise_a_library_printed() -> None:
    stdout = 'some library says hello\n{"not": "this"} trailing\n{\n  "streaming": {"scale1": {}}\n}\n'

    assert runner.last_json_document(stdout) == {"streaming": {"scale1": {}}}
    with pytest.raises(runner.BenchError):
        runner.last_json_document("no json at all")


def test_size_keys_are_the_issues_names() -> None:
    assert [runner.size_key(n) for n in (100_000, 1_000_000, 5_000, 1234)] == [
        "items_100k", "items_1m", "items_5k", "items_1234"]


def test_a_profile_breaks_the_time_of_our_path_down_by_callee(tmp_path: Path) -> None:
    import cProfile

    def inner() -> int:
        return sum(i * i for i in range(200_000))

    def run_ours() -> None:
        inner()
        inner()

    profiler = cProfile.Profile()
    profiler.runcall(run_ours)
    profiler.dump_stats(tmp_path / "run.prof")

    table = runner.profile_table(tmp_path / "run.prof", "run_ours")

    assert table["tree"][0]["function"].endswith("(run_ours)") and table["tree"][0]["share"] == 1.0
    assert any(row["function"].endswith("(inner)") and row["calls"] == 2 and row["depth"] == 1
               for row in table["tree"])
    assert table["by_own_time"] and all(row["own_s"] >= 0 for row in table["by_own_time"])
