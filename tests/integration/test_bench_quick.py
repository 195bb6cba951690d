"""Every benchmark still runs: `python -m harness bench --quick --only NAME` at its CI size yields a well-formed
results.json and RESULTS.md. No timing is asserted (the machine is shared; figures at CI size mean little); what is
asserted is that each figure the issue names is there, is a positive number, and sits next to its baseline and ratio.

The pure parts (documents into results.json keys, goals, merging, the markdown) are checked on recorded documents in
tests/unit/test_bench_report.py; the registry and the runner in tests/unit/test_bench_registry.py and
test_bench_runner.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from bench import registry
from bench.goals import lookup
from bench.render import render_markdown

ROOT = Path(__file__).resolve().parents[2]

# The keys results.json must carry for each benchmark (issue 7), in their quick form. A new benchmark adds its own:
# the test below runs every registered benchmark and fails for one missing here.
REQUIRED: dict[str, list[str]] = {
    "streaming": ["scale1.ours_records_per_s", "scale1.baseline_records_per_s", "scale1.ratio"],
    "vectors": ["load.copy_vectors_per_s", "load.insert_vectors_per_s", "load.ratio", "items_5k.p50_ms",
                "items_5k.p99_ms", "items_5k.recall_at_10", "items_5k.build_s"],
    "batch": ["scale1.rows", "scale1.wall_s", "scale1.rows_per_s", "scale1.partitions", "scale1.output_files",
              "scale1.baseline_wall_s", "scale1.ratio"],
    "stack": ["up_s", "services_s", "up_vs_services"],
}
HEADINGS = {"streaming": "## Streaming", "vectors": "## Vectors", "batch": "## Batch", "stack": "## Stack"}


def run_bench(out_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "harness", "bench", "--out-dir", str(out_dir), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=1800)


@pytest.mark.parametrize("name", registry.names())
def test_the_quick_benchmark_yields_every_figure_with_its_baseline(name: str, tmp_path: Path) -> None:
    required = REQUIRED[name]  # a registered benchmark without its keys here fails
    result = run_bench(tmp_path, "--quick", "--only", name)

    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True
    assert set(results["machine"]) >= {"cores", "memory_mb", "cpu_model"} and results["machine"]["cores"] >= 1
    datetime.fromisoformat(results["date"])
    assert results[name]["command"] == f"python -m bench.benchmarks.{name} --quick"
    for key in required:
        value = lookup(results[name], key)
        assert isinstance(value, int | float) and value > 0, f"{name}.{key} = {value!r}"
    markdown = (tmp_path / "RESULTS.md").read_text()
    assert markdown == render_markdown(results, registry.benchmarks())
    assert "| goal | target | measured | status |" in markdown and HEADINGS[name] in markdown
    assert f"results: {tmp_path / 'results.json'}" in result.stdout  # the summary table printed before it
