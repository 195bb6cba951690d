"""results.json: the sections of this run over those of the previous file, the machine, the date and the goals."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.goals import check_goals
from bench.registry import Benchmark
from bench.render import render_markdown

RESULTS_JSON = "results.json"
RESULTS_MD = "RESULTS.md"


def merge_results(previous: Mapping[str, Any], sections: Mapping[str, Any], *, machine: Mapping[str, Any],
                  date: str, quick: bool, benchmarks: Sequence[Benchmark]) -> dict[str, Any]:
    """The new sections over the previous file's (a section from another machine or mode is not kept)."""
    merged: dict[str, Any] = {}
    same_machine = (previous.get("machine") or {}).get("cpu_model") == machine.get("cpu_model")
    if same_machine and bool(previous.get("quick")) == quick:
        merged.update({b.name: previous[b.name] for b in benchmarks if b.name in previous})
    merged.update(sections)
    merged["machine"] = dict(machine)
    merged["date"] = date
    merged["quick"] = quick
    checks = check_goals(merged, (goal for b in benchmarks for goal in b.goals))
    merged["goals"] = [{"key": c.goal.key, "label": c.goal.label, "target": f"{c.goal.op} {c.goal.target:g}",
                        "value": c.value, "status": c.status} for c in checks]
    return merged


def write_results(out_dir: Path, results: Mapping[str, Any], benchmarks: Sequence[Benchmark]) -> tuple[Path, Path]:
    """results.json and RESULTS.md, each replaced atomically (a reader never sees half a file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / RESULTS_JSON, out_dir / RESULTS_MD
    for path, text in ((json_path, json.dumps(results, indent=2, sort_keys=True) + "\n"),
                       (md_path, render_markdown(results, benchmarks))):
        staging = path.with_suffix(path.suffix + ".tmp")
        staging.write_text(text)
        staging.replace(path)
    return json_path, md_path


def read_previous(out_dir: Path) -> dict[str, Any]:
    try:
        value = json.loads((out_dir / RESULTS_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
