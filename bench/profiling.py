"""Where the time goes: a cProfile dump of a benchmark's separate, profiled run as tables (profiling slows the code
down, so such a run never feeds a figure). `bench.runner.profile_benchmark` makes the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFILE_TOP = 15


def _function_label(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":
        return function  # a builtin, e.g. <method 'execute' of 'psycopg2.extensions.cursor' objects>
    path = filename
    for root in (str(ROOT) + "/", "site-packages/", "lib/python3."):
        if root in path:
            path = path.split(root, 1)[1]
            break
    return f"{path}:{line}({function})"


def call_tree(stats: Any, focus: str, *, depth: int = 8, min_share: float = 0.03) -> list[dict[str, Any]]:
    """The call tree under the benchmark's `focus` function (every call of it together): each callee that took at
    least `min_share` of the focus's time, with its share, `depth` levels down. Time spent waiting (on a database, on
    a socket) shows up under the call that waited."""
    roots = [key for key in stats.stats if key[2] == focus and key[0] != "~"]
    if not roots:
        return []
    root = max(roots, key=lambda key: stats.stats[key][3])
    total = stats.stats[root][3] or 1e-9
    callees = stats.all_callees
    rows = [{"depth": 0, "function": _function_label(root), "calls": int(stats.stats[root][1]),
             "cumulative_s": round(stats.stats[root][3], 3), "share": 1.0}]

    def walk(key: tuple[str, int, str], level: int, path: frozenset[tuple[str, int, str]]) -> None:
        for callee, (_cc, nc, _tt, ct) in sorted(callees.get(key, {}).items(), key=lambda item: -item[1][3]):
            if ct < min_share * total or callee in path:
                continue
            rows.append({"depth": level, "function": _function_label(callee), "calls": int(nc),
                         "cumulative_s": round(ct, 3), "share": round(ct / total, 3)})
            if level < depth:
                walk(callee, level + 1, path | {callee})

    walk(root, 1, frozenset({root}))
    return rows


def profile_table(stats_path: Path, focus: str | None = None, top: int = PROFILE_TOP) -> dict[str, Any]:
    """A cProfile dump as tables: the tree under `focus` and the top functions by own time (seconds, calls)."""
    import pstats

    stats = pstats.Stats(str(stats_path))
    stats.calc_callees()
    # typeshed's pstats.Stats declares neither `stats` nor `total_tt`, both set by its constructor.
    rows = [{"function": _function_label(key), "calls": int(nc), "own_s": round(tt, 3), "cumulative_s": round(ct, 3)}
            for key, (_cc, nc, tt, ct, _callers) in stats.stats.items()]  # type: ignore[attr-defined]
    return {"total_s": round(float(stats.total_tt), 3),  # type: ignore[attr-defined]
            "focus": focus, "tree": call_tree(stats, focus) if focus else [],
            "by_own_time": sorted(rows, key=lambda r: r["own_s"], reverse=True)[:top]}
