"""Run the benchmarks side by side and write `bench/results.json` and a readable `bench/RESULTS.md`.

    python bench/run.py [--quick] [--only streaming --only vectors ...] [--out-dir DIR]
    python -m harness bench [--quick] [--only NAME]          (what `make bench` calls)

Each benchmark is its own script under `bench/` that prints one JSON document on stdout (progress on stderr) and
repeats its measurement itself: a warm-up, then at least `RUNS` measured runs whose median is the figure and whose
min/max is the spread. This module only runs them one after the other (never in parallel: they would measure each
other), turns their documents into the flat keys the issue asks for (`streaming.scale1.ratio`,
`vectors.items_1m.p99_ms`, ...), checks the goals and renders the tables.

The machine is shared and noisy, so every figure sits next to a baseline measured in the same run on the same machine,
and the ratio is the number to quote. `--only` re-runs some benchmarks and keeps the other sections of an existing
results file (each section keeps its own date). `--quick` runs each benchmark at its CI size, only to prove it still
works; its results go to `.build/bench-quick/` unless `--out-dir` says otherwise, never over the real results.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
QUICK_OUT_DIR = ROOT / ".build" / "bench-quick"
RESULTS_JSON = "results.json"
RESULTS_MD = "RESULTS.md"
RUNS = 5
# The headline query figures are the ones users get: at the serving hnsw.ef_search, which bench/vectors.py reports
# as `serving_ef_search` (recsys.vectordb.DEFAULT_EF_SEARCH); this is only the fallback for documents without it.
FALLBACK_SERVING_EF_SEARCH = 200
STDERR_TAIL_LINES = 40

BenchName = Literal["streaming", "vectors", "batch", "stack"]
BENCH_NAMES: tuple[BenchName, ...] = ("streaming", "vectors", "batch", "stack")
GoalStatus = Literal["met", "missed", "not measured"]


class BenchError(RuntimeError):
    """A benchmark could not run or printed something that is not its JSON document; the message says which and why."""


@dataclass(frozen=True)
class BenchSpec:
    name: BenchName
    script: str
    full_args: tuple[str, ...]
    quick_args: tuple[str, ...]
    timeout_s: float
    # The function of the script whose call tree is "ours" (what a profile should break down), if there is one.
    profile_focus: str | None = None


SPECS: dict[BenchName, BenchSpec] = {
    "streaming": BenchSpec("streaming", "streaming.py", ("--runs", str(RUNS)), ("--quick",), 3600, "run_ours"),
    "vectors": BenchSpec("vectors", "vectors.py", ("--repeats", str(RUNS)), ("--quick",), 7200, "bench_size"),
    "batch": BenchSpec("batch", "batch.py", ("--runs", str(RUNS)), ("--quick",), 7200, "run_glue_once"),
    "stack": BenchSpec("stack", "stack.py", ("--runs", str(RUNS)), ("--quick",), 7200),
}


# ---------------------------------------------------------------------------------------------------------------------
# the machine


def machine_description() -> dict[str, Any]:
    """Cores, memory, CPU model and the load when the run started (a busy shared machine explains odd figures)."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_mb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cores": os.cpu_count() or 0, "memory_mb": memory_mb, "cpu_model": cpu,
            "load_average_1m": round(load[0], 2), "python": platform.python_version(),
            "platform": platform.platform()}


# ---------------------------------------------------------------------------------------------------------------------
# running one benchmark


def last_json_document(stdout: str) -> dict[str, Any]:
    """The JSON object a benchmark printed; a library that wrote to stdout before it does not break the parse."""
    text = stdout.strip()
    with contextlib.suppress(json.JSONDecodeError):
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    # Something else was printed first: the document is the last top-level `{` that parses to the end.
    for index in [i for i, char in enumerate(text) if char == "{" and (i == 0 or text[i - 1] == "\n")][::-1]:
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(text[index:])
            if isinstance(value, dict):
                return value
    raise BenchError("printed no JSON document on stdout")


def run_benchmark(spec: BenchSpec, *, quick: bool, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run one benchmark script in its own process; its stderr (progress) passes through, its stdout is the result."""
    import resource

    argv = [sys.executable, str(BENCH_DIR / spec.script), *(spec.quick_args if quick else spec.full_args), *extra_args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    try:
        result = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=None, text=True,
                                timeout=spec.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{spec.name}: no result after {spec.timeout_s:.0f} s (`{' '.join(argv[1:])}`)") from None
    if result.returncode != 0:
        raise BenchError(f"{spec.name}: `{' '.join(argv[1:])}` exited {result.returncode}; its progress above says "
                         "where it stopped")
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - started
    try:
        document = last_json_document(result.stdout)
    except BenchError as err:
        raise BenchError(f"{spec.name}: {err}; stdout began with {result.stdout[:200]!r}") from None
    # How much CPU the benchmark's own process got while it ran: on a shared machine a share well under 1 core means
    # its per-core figures are understated by about that factor (the database servers it starts are not counted).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    document["process"] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cpu_share": round(cpu / wall, 3),
                           "load_average_1m_at_end": round(os.getloadavg()[0], 2)}
    return document


# ---------------------------------------------------------------------------------------------------------------------
# each benchmark's document -> the flat keys of results.json (pure)


def spread(values: Iterable[float]) -> dict[str, Any]:
    items = sorted(float(v) for v in values)
    if not items:
        return {"runs": 0}
    middle = len(items) // 2
    median = items[middle] if len(items) % 2 else (items[middle - 1] + items[middle]) / 2
    return {"median": round(median, 3), "min": round(items[0], 3), "max": round(items[-1], 3), "runs": len(items)}


def ratio(ours: float | None, baseline: float | None) -> float | None:
    if ours is None or baseline is None or baseline == 0:
        return None
    return round(ours / baseline, 2)


def summarize_streaming(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"quick": bool(raw.get("quick")), "date": raw.get("date")}
    for key, scale in sorted((raw.get("streaming") or {}).items()):
        ours, baseline = scale.get("ours_records_per_s"), scale.get("baseline_records_per_s")
        out[key] = {
            "items": scale.get("items"), "batch_size": scale.get("batch_size"),
            "ours_records": scale.get("ours_records"), "baseline_records": scale.get("baseline_records"),
            "ours_records_per_s": ours, "baseline_records_per_s": baseline, "ratio": ratio(ours, baseline),
            "ours_spread": scale.get("ours"), "baseline_spread": scale.get("baseline"),
        }
    return out


def size_key(items: int) -> str:
    """100000 -> items_100k, 1000000 -> items_1m (the issue's names), anything else likewise."""
    if items >= 1_000_000 and items % 1_000_000 == 0:
        return f"items_{items // 1_000_000}m"
    if items >= 1_000 and items % 1_000 == 0:
        return f"items_{items // 1_000}k"
    return f"items_{items}"


def serving_query(queries: Sequence[Mapping[str, Any]], serving_ef_search: int) -> Mapping[str, Any] | None:
    for row in queries:
        if row.get("ef_search") == serving_ef_search:
            return row
    return queries[0] if queries else None


def summarize_vectors(raw: Mapping[str, Any]) -> dict[str, Any]:
    fallback_ef_search = int(raw.get("uncalibrated_ef_search") or raw.get("serving_ef_search")
                             or FALLBACK_SERVING_EF_SEARCH)
    out: dict[str, Any] = {"quick": bool(raw.get("quick")), "date": raw.get("date"), "server": raw.get("server"),
                           "uncalibrated_ef_search": fallback_ef_search}
    sizes = sorted(raw.get("results") or [], key=lambda r: int(r["items"]))
    for size in sizes:
        # Each size is served at the ef_search its calibration chose (older documents: one value for all sizes).
        serving_ef_search = int(size.get("serving_ef_search") or fallback_ef_search)
        query = serving_query(size.get("queries") or [], serving_ef_search) or {}
        out[size_key(int(size["items"]))] = {
            "items": int(size["items"]),
            "ef_search": query.get("ef_search"),
            "calibration": size.get("calibration"),
            "server": query.get("server"),
            "exact_in_memory": size.get("exact_in_memory"),
            "p50_ms": query.get("p50_ms"), "p99_ms": query.get("p99_ms"), "recall_at_10": query.get("recall_at_10"),
            "build_s": (size.get("hnsw_build") or {}).get("seconds"),
            "hnsw": {k: v for k, v in (size.get("hnsw_build") or {}).items() if k != "seconds"},
            "copy_vectors_per_s": (size.get("copy") or {}).get("rows_per_s"),
            "insert_vectors_per_s": (size.get("insert") or {}).get("rows_per_s"),
            "csv_parse_rows_per_s": (size.get("csv_parse") or {}).get("rows_per_s"),
            "by_ef_search": list(size.get("queries") or []),
        }
    if sizes:
        # The load figure is taken at the largest size: the one a catalogue reload is about.
        largest = sizes[-1]
        copy, insert = (largest.get("copy") or {}), (largest.get("insert") or {})
        out["load"] = {"items": int(largest["items"]), "copy_vectors_per_s": copy.get("rows_per_s"),
                       "copy_repeats": copy.get("repeats"), "insert_vectors_per_s": insert.get("rows_per_s"),
                       "insert_rows": insert.get("rows"),
                       "ratio": ratio(copy.get("rows_per_s"), insert.get("rows_per_s"))}
    return out


def summarize_passthrough(raw: Mapping[str, Any]) -> dict[str, Any]:
    """batch.py and stack.py already print the keys results.json uses."""
    return {key: value for key, value in raw.items() if key != "machine"}


Summarizer = Callable[[Mapping[str, Any]], dict[str, Any]]


def with_process(summarize: Summarizer) -> Summarizer:
    def summarized(raw: Mapping[str, Any]) -> dict[str, Any]:
        out = summarize(raw)
        if "process" in raw:
            out["process"] = raw["process"]
        return out

    return summarized


SUMMARIZERS: dict[BenchName, Summarizer] = {
    "streaming": with_process(summarize_streaming), "vectors": with_process(summarize_vectors),
    "batch": summarize_passthrough, "stack": summarize_passthrough,
}


# ---------------------------------------------------------------------------------------------------------------------
# goals (from the streaming and vector issues)


@dataclass(frozen=True)
class Goal:
    key: str
    op: Literal[">=", "<="]
    target: float
    label: str


@dataclass(frozen=True)
class GoalCheck:
    goal: Goal
    value: float | None
    status: GoalStatus


GOALS: tuple[Goal, ...] = (
    Goal("streaming.scale1.ratio", ">=", 50, "streaming: ours / lab-style at scale 1"),
    Goal("streaming.scale100.ratio", ">=", 50, "streaming: ours / lab-style at scale 100"),
    # The streaming benchmark runs the transformation in one process with numpy on one thread: records/s is per core.
    Goal("streaming.scale1.ours_records_per_s", ">=", 5_000, "streaming: records/s per core at scale 1"),
    Goal("vectors.load.copy_vectors_per_s", ">=", 200_000, "vectors: binary COPY load rate (vectors/s)"),
    Goal("vectors.items_1m.p99_ms", "<=", 5, "vectors: k=10 query p99 at 1M items (ms)"),
    Goal("vectors.items_1m.recall_at_10", ">=", 0.95, "vectors: recall@10 at 1M items"),
)


def lookup(results: Mapping[str, Any], dotted: str) -> Any:
    node: Any = results
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def check_goals(results: Mapping[str, Any]) -> list[GoalCheck]:
    checks = []
    for goal in GOALS:
        value = lookup(results, goal.key)
        if not isinstance(value, int | float):
            checks.append(GoalCheck(goal, None, "not measured"))
            continue
        met = value >= goal.target if goal.op == ">=" else value <= goal.target
        checks.append(GoalCheck(goal, float(value), "met" if met else "missed"))
    return checks


# ---------------------------------------------------------------------------------------------------------------------
# results.json and RESULTS.md


def merge_results(previous: Mapping[str, Any], sections: Mapping[str, Any], *, machine: Mapping[str, Any],
                  date: str, quick: bool) -> dict[str, Any]:
    """The new sections over the previous file's (a section from another machine or mode is not kept)."""
    merged: dict[str, Any] = {}
    same_machine = (previous.get("machine") or {}).get("cpu_model") == machine.get("cpu_model")
    if same_machine and bool(previous.get("quick")) == quick:
        merged.update({name: previous[name] for name in BENCH_NAMES if name in previous})
    merged.update(sections)
    merged["machine"] = dict(machine)
    merged["date"] = date
    merged["quick"] = quick
    merged["goals"] = [{"key": c.goal.key, "label": c.goal.label, "target": f"{c.goal.op} {c.goal.target:g}",
                        "value": c.value, "status": c.status} for c in check_goals(merged)]
    return merged


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 100):
        return f"{value:,.0f}{unit}"
    if isinstance(value, float):
        return f"{value:,.3g}{unit}" if abs(value) < 1 else f"{value:,.2f}{unit}"
    return f"{value}{unit}"


def fmt_ratio(value: Any) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value:,.1f}x" if abs(value) >= 0.1 else f"{value:.2g}x"  # a slower path must not read as 0.0x


def fmt_spread(s: Mapping[str, Any] | None, unit: str = "") -> str:
    if not s or not s.get("runs"):
        return "–"
    return f"{fmt(s.get('min'), unit)} – {fmt(s.get('max'), unit)} ({s['runs']} runs)"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _command_line(section: Mapping[str, Any]) -> list[str]:
    if not section.get("command"):
        return []
    line = f"Command: `{section['command']}`; measured {section.get('date') or 'in this run'}"
    process = section.get("process") or {}
    if process.get("cpu_share") is not None:
        line += (f"; load average {process.get('load_average_1m_at_end')} at its end; the benchmark process got "
                 f"{process['cpu_share']:.2f} of a core on average over its "
                 f"{fmt(process.get('wall_s'))} s (CPU {fmt(process.get('cpu_s'))} s; database servers not counted)")
    return [line + ".", ""]


def _vector_profile(vectors: Mapping[str, Any]) -> list[str]:
    """Where a vector query's time goes, per size and ef_search: recall bought against buffers touched."""
    rows = []
    for key in sorted((k for k in vectors if k.startswith("items_")), key=lambda k: vectors[k]["items"]):
        v = vectors[key]
        for q in v.get("by_ef_search") or []:
            server = q.get("server") or {}
            chosen = " (serving)" if q.get("ef_search") == v.get("ef_search") else ""
            rows.append((fmt(v["items"]), f"{q.get('ef_search')}{chosen}", fmt(q.get("recall_at_10")),
                         f"{fmt(q.get('p50_ms'))} / {fmt(q.get('p99_ms'))}", fmt(server.get("execution_p50_ms")),
                         fmt(server.get("buffers_p50")), fmt(server.get("us_per_buffer"))))
    if not any(row[4] != "–" for row in rows):
        return []
    return ["", "## Where the time goes: vector queries", "",
            "Per size and hnsw.ef_search: recall@10, client latency, and a server-side profile of the same statement "
            "(`EXPLAIN (ANALYZE, BUFFERS)` over 100 of the queries, medians): execution time inside PostgreSQL and "
            "the shared buffers it touched. pgvector's HNSW scan reads one buffer per graph element it visits, so "
            "the time follows the buffers, and the buffers follow ef_search; client minus server time is the round "
            "trip and the protocol.", "",
            *_table(("items", "ef_search", "recall@10", "client p50 / p99 ms", "server p50 ms", "buffers p50",
                     "µs per buffer"), rows), *_p99_gap(vectors)]


def p99_gap(size: Mapping[str, Any], target_ms: float, target_recall: float) -> dict[str, Any] | None:
    """Why a size misses the p99 target, from its own measurements: the ef_search values fast enough and the recall
    they reach, against the value that reaches the recall target and what it costs. None when nothing is missed."""
    measured = [q for q in size.get("by_ef_search") or [] if q.get("p99_ms") is not None]
    if not measured or (size.get("p99_ms") is not None and size["p99_ms"] <= target_ms):
        return None
    fast = [q for q in measured if q["p99_ms"] <= target_ms]
    accurate = [q for q in measured if (q.get("recall_at_10") or 0) >= target_recall]
    best_fast = max(fast, key=lambda q: q.get("recall_at_10") or 0) if fast else None
    cheapest_accurate = min(accurate, key=lambda q: q["p99_ms"]) if accurate else None
    return {"fast": best_fast, "accurate": cheapest_accurate}


def _p99_gap(vectors: Mapping[str, Any]) -> list[str]:
    size = vectors.get("items_1m")
    if not size:
        return []
    gap = p99_gap(size, 5.0, 0.95)
    if not gap:
        return []
    lines = ["", "Why p99 <= 5 ms at 1M items is missed, from the rows above:"]
    fast, accurate = gap["fast"], gap["accurate"]
    if fast:
        server = fast.get("server") or {}
        lines.append(f"- within 5 ms: ef_search {fast['ef_search']} (p99 {fmt(fast['p99_ms'])} ms, "
                     f"{fmt(server.get('buffers_p50'))} buffers per query) finds only recall@10 "
                     f"{fmt(fast.get('recall_at_10'))} of the true neighbours;")
    if accurate:
        server = accurate.get("server") or {}
        lines.append(f"- recall@10 >= 0.95 first at ef_search {accurate['ef_search']}: "
                     f"{fmt(server.get('buffers_p50'))} buffers per query at {fmt(server.get('us_per_buffer'))} µs "
                     f"each is {fmt(server.get('execution_p50_ms'))} ms inside PostgreSQL (median), p99 "
                     f"{fmt(accurate['p99_ms'])} ms at the client.")
    hnsw = size.get("hnsw") or {}
    lines.append(
        f"- So on this graph (m {hnsw.get('m')}, ef_construction {hnsw.get('ef_construction')}, random 32-d vectors "
        "with no cluster structure) the two goals pull apart: the time is pgvector visiting graph elements, one "
        "buffer each, and the graph needs that many visits to find 95 % of the true neighbours. What would close it: "
        "a denser graph (larger m / ef_construction: a longer build, after which the calibration picks a smaller "
        "ef_search), or embeddings with structure (a trained model's are clustered, which HNSW needs fewer visits "
        "for). Exact search in memory is no way out at this size: it reads the whole 128 MB matrix per query (the "
        "exact-in-memory row above).")
    return lines


def render_markdown(results: Mapping[str, Any]) -> str:
    machine = results.get("machine") or {}
    lines = [
        "# Benchmark results",
        "",
        f"Measured {results.get('date')} on {machine.get('cores')} cores ({machine.get('cpu_model')}), "
        f"{fmt(machine.get('memory_mb'))} MB memory, load average {machine.get('load_average_1m')} at the start, "
        f"Python {machine.get('python')}. Written by `python -m harness bench`"
        + (" --quick: CI sizes, the figures prove the benchmarks run and mean little." if results.get("quick")
           else "."),
        "",
        "Every figure is the median of the measured runs (after a warm-up); the baseline is measured in the same run "
        "on the same machine, so the ratio is the number to quote: this machine is shared and absolute times drift. "
        "How each benchmark measures: docs/bench.md.",
        "",
        "## Goals",
        "",
    ]
    lines += _table(("goal", "target", "measured", "status"), (
        (g["label"], g["target"], fmt(g["value"]), g["status"]) for g in results.get("goals") or []))
    streaming = results.get("streaming")
    if streaming:
        lines += ["", "## Streaming: transformation records/s", "",
                  "Ours: `transformation.handler` on Firehose events of 500 records (one model call and two SQL "
                  "statements per batch; catalogues of these sizes are searched exactly in memory). Baseline: the "
                  "lab's per-record path, three HTTP calls per record to the inference Function URL (which searches "
                  "the same way). Same PostgreSQL + pgvector, same sessions.", ""]
        lines += _command_line(streaming)
        # Each table has its own number of columns.
        rows: list[tuple[str, ...]] = []
        for key in sorted(k for k in streaming if k.startswith("scale")):
            s = streaming[key]
            rows.append((f"scale {key[5:]} ({fmt(s.get('items'))} items; {fmt(s.get('ours_records'))} / "
                         f"{fmt(s.get('baseline_records'))} records)",
                         fmt(s.get("ours_records_per_s"), " rec/s"), fmt(s.get("baseline_records_per_s"), " rec/s"),
                         fmt_ratio(s.get("ratio")), fmt_spread(s.get("ours_spread")),
                         fmt_spread(s.get("baseline_spread"))))
        lines += _table(("workload", "ours", "baseline", "ratio", "ours spread", "baseline spread"), rows)
    vectors = results.get("vectors")
    if vectors:
        lines += ["", "## Vectors: load, HNSW build, k=10 queries", "",
                  "Load: the loader's binary COPY against multi-row INSERT (1,000 rows per statement) of a sample, "
                  "random 32-d vectors. Queries: the `similar_items` statement, one id per statement over TCP, at "
                  "the hnsw.ef_search the loader's calibration chose for that index (the smallest value whose "
                  "recall@10 over 500 sampled queries reaches 0.95; what the Lambdas use); the other values are in "
                  "the profile below. Baseline for recall: exact cosine search in numpy.", ""]
        lines += _command_line(vectors)
        load = vectors.get("load") or {}
        rows = [(f"load {fmt(load.get('items'))} vectors", fmt(load.get("copy_vectors_per_s"), " vec/s"),
                 fmt(load.get("insert_vectors_per_s"), " vec/s"), fmt_ratio(load.get("ratio")),
                 f"COPY median of {load.get('copy_repeats')} loads; INSERT sample {fmt(load.get('insert_rows'))} rows")]
        for key in sorted((k for k in vectors if k.startswith("items_")), key=lambda k: vectors[k]["items"]):
            v = vectors[key]
            rows.append((f"{fmt(v['items'])} items: query p50 / p99", f"{fmt(v.get('p50_ms'))} / "
                         f"{fmt(v.get('p99_ms'))} ms", "–", "–",
                         f"ef_search {fmt(v.get('ef_search'))}: recall@10 {fmt(v.get('recall_at_10'))} vs exact; "
                         f"HNSW build {fmt(v.get('build_s'))} s (m={v['hnsw'].get('m')}, "
                         f"ef_construction={v['hnsw'].get('ef_construction')})"))
            exact = v.get("exact_in_memory")
            if exact:
                rows.append((f"{fmt(v['items'])} items, exact in memory: query p50 / p99",
                             f"{fmt(exact.get('p50_ms'))} / {fmt(exact.get('p99_ms'))} ms", "–", "–",
                             f"recall@10 {fmt(exact.get('recall_at_10'))}; catalogue read once per load in "
                             f"{fmt(exact.get('read_seconds'))} s (how the Lambdas answer up to "
                             "`EXACT_SEARCH_MAX_ITEMS` items)"))
        lines += _table(("workload", "ours", "baseline", "ratio", "notes"), rows)
        lines += _vector_profile(vectors)
    batch = results.get("batch")
    if batch:
        lines += ["", "## Batch: the Glue script on local Spark", "",
                  "The deployed script run by `harness.workflows.etl.run_job` (local[2] Spark, MariaDB source over "
                  "JDBC, "
                  "publish to S3 in the emulator) at seeder scales. Baseline: the same join run by MariaDB itself and "
                  "read to a client (no Spark, no Parquet, no publish): what the work costs without the platform.", ""]
        lines += _command_line(batch)
        rows = []
        for key in sorted((k for k in batch if k.startswith("scale")), key=lambda k: int(k[5:])):
            b = batch[key]
            rows.append((f"scale {key[5:]}: {fmt(b.get('rows'))} rows, {fmt(b.get('partitions'))} partitions, "
                         f"{fmt(b.get('output_files'))} files", f"{fmt(b.get('wall_s'))} s "
                         f"({fmt(b.get('rows_per_s'))} rows/s)", f"{fmt(b.get('baseline_wall_s'))} s "
                         f"({fmt(b.get('baseline_rows_per_s'))} rows/s)", fmt_ratio(b.get("ratio")),
                         fmt_spread(b.get("wall_spread"), " s")))
        lines += _table(("workload", "ours (wall, rows/s)", "baseline (wall, rows/s)", "ratio (rows/s)",
                         "ours spread"), rows)
    stack = results.get("stack")
    if stack:
        lines += ["", "## Stack: `harness up` and `make demo` on a warm machine", "",
                  "Each run in a fresh temporary state directory after a warm-up run (caches warm: packages, layer "
                  "build, page cache). Baseline for `up`: starting the three services alone (moto, PostgreSQL, "
                  "MariaDB), the floor any deploy adds to.", ""]
        lines += _command_line(stack)
        rows = [("`harness up` (services + deploy of every resource)", fmt(stack.get("up_s"), " s"),
                 fmt(stack.get("services_s"), " s"), fmt_ratio(stack.get("up_vs_services")),
                 fmt_spread(stack.get("up_spread"), " s"))]
        if stack.get("demo_s") is not None or stack.get("demo_spread"):
            stages = ", ".join(f"{name} {fmt(value, ' s')}"
                               for name, value in (stack.get("demo_stages_s") or {}).items())
            rows.append((f"`make demo` (up, seed, etl, train, load, stream); stages: {stages or '–'}",
                         fmt(stack.get("demo_s"), " s"), "–", "–", fmt_spread(stack.get("demo_spread"), " s")))
        elif stack.get("demo_error"):
            error = " ".join(str(stack["demo_error"]).split())[:300].replace("|", "/")
            rows.append(("`make demo`", "failed, not timed", "–", "–", error))
        else:
            rows.append(("`make demo`", "not measured in this run", "–", "–", "–"))
        lines += _table(("workload", "ours", "baseline", "ratio", "spread"), rows)
    for name in BENCH_NAMES:
        section = results.get(name) or {}
        for key in sorted(k for k in section if k.startswith("profile")):
            profile = section[key]
            lines += ["", f"## Where the time goes: {name}" + (f" ({key[8:]})" if key != "profile" else ""), "",
                      f"`{profile['command']}` (a separate run: profiling slows the code, so it feeds no figure); "
                      f"{fmt(profile.get('total_s'))} s in the benchmark process."]
            if profile.get("tree"):
                lines += ["", f"The call tree under `{profile['focus']}` (ours), callees of at least 3 % of its time; "
                          "time waiting on the database or a socket shows up under the call that waited:", ""]
                lines += _table(("function", "calls", "cumulative s", "share"), (
                    ("&nbsp;&nbsp;" * row["depth"] + f"`{row['function']}`", fmt(row["calls"]),
                     fmt(row["cumulative_s"]), f"{row['share'] * 100:.0f} %") for row in profile["tree"]))
            lines += ["", "Whole process, by own time:", ""]
            lines += _table(("function", "calls", "own s", "cumulative s"), (
                (f"`{row['function']}`", fmt(row["calls"]), fmt(row["own_s"]), fmt(row["cumulative_s"]))
                for row in profile["by_own_time"]))
    missing = [name for name in BENCH_NAMES if name not in results]
    if missing:
        lines += ["", f"Not measured in this file: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, results: Mapping[str, Any]) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / RESULTS_JSON, out_dir / RESULTS_MD
    for path, text in ((json_path, json.dumps(results, indent=2, sort_keys=True) + "\n"),
                       (md_path, render_markdown(results))):
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


# ---------------------------------------------------------------------------------------------------------------------
# where the time goes: a separate, profiled run (profiling slows the code down, so it never feeds the figures)

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
    """The call tree under the script's `focus` function (every call of it together): each callee that took at least
    `min_share` of the focus's time, with its share, `depth` levels down. Time spent waiting (on a database, on a
    socket) shows up under the call that waited."""
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


def profile_benchmark(spec: BenchSpec, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """The benchmark at its quick size (plus `extra_args`) under cProfile: the Python side's time, by function."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        stats_path = Path(tmp) / f"{spec.name}.prof"
        argv = [sys.executable, "-m", "cProfile", "-o", str(stats_path), str(BENCH_DIR / spec.script),
                *spec.quick_args, *extra_args]
        result = subprocess.run(argv, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                stdout=subprocess.DEVNULL, stderr=None, timeout=spec.timeout_s, check=False)
        if result.returncode != 0 or not stats_path.exists():
            raise BenchError(f"{spec.name}: the profiled run `{' '.join(argv[3:])}` exited {result.returncode}")
        table = profile_table(stats_path, spec.profile_focus)
    return {"command": " ".join(["python -m cProfile", f"bench/{spec.script}", *spec.quick_args, *extra_args]),
            **table}


# ---------------------------------------------------------------------------------------------------------------------
# the run


@dataclass
class RunOutcome:
    results: dict[str, Any]
    json_path: Path
    md_path: Path
    failed: dict[str, str]
    seconds: dict[str, float]


def run_all(names: Sequence[BenchName], *, quick: bool, out_dir: Path | None = None,
            extra_args: Mapping[str, Sequence[str]] | None = None, profile: Sequence[BenchName] = (),
            say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)) -> RunOutcome:
    """Run `names` one after the other, write the merged results; a failing benchmark is reported, the others run."""
    out_dir = out_dir or (QUICK_OUT_DIR if quick else BENCH_DIR)
    machine = machine_description()
    sections: dict[str, Any] = {}
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name in names:
        spec = SPECS[name]
        extra = list((extra_args or {}).get(name, ()))
        command = " ".join([f"bench/{spec.script}", *(spec.quick_args if quick else spec.full_args), *extra])
        say(f"== {name}: {command}")
        started = time.monotonic()
        try:
            sections[name] = {**SUMMARIZERS[name](run_benchmark(spec, quick=quick, extra_args=extra)),
                              "command": command}
        except BenchError as err:
            failed[name] = str(err)
            say(f"== {name} failed: {err}")
        if name in profile and name in sections:
            say(f"== {name}: profiled run (quick size, not timed)")
            try:
                sections[name]["profile"] = profile_benchmark(spec, extra)
            except BenchError as err:
                failed[f"{name} profile"] = str(err)
                say(f"== {name} profile failed: {err}")
        seconds[name] = time.monotonic() - started
    date = datetime.now(UTC).isoformat(timespec="seconds")
    results = merge_results(read_previous(out_dir), sections, machine=machine, date=date, quick=quick)
    json_path, md_path = write_results(out_dir, results)
    return RunOutcome(results, json_path, md_path, failed, seconds)


def parse_names(only: Sequence[str] | None) -> list[BenchName]:
    if not only:
        return list(BENCH_NAMES)
    names: list[BenchName] = []
    for raw in only:
        for name in filter(None, (part.strip() for part in raw.split(","))):
            if name not in BENCH_NAMES:
                raise ValueError(f"--only {name!r}: no such benchmark; choose from {', '.join(BENCH_NAMES)}")
            if name not in names:
                names.append(name)
    return names


def parse_extra_args(items: Sequence[str] | None) -> dict[str, list[str]]:
    """`vectors=--sizes 100000` -> {"vectors": ["--sizes", "100000"]}: arguments passed through to one benchmark."""
    import shlex

    out: dict[str, list[str]] = {}
    for item in items or ():
        name, sep, args = item.partition("=")
        if not sep or name not in BENCH_NAMES:
            raise ValueError(f"--args {item!r}: write NAME=ARGS with NAME one of {', '.join(BENCH_NAMES)}, e.g. "
                             "--args 'vectors=--sizes 100000'")
        out.setdefault(name, []).extend(shlex.split(args))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes: proves each benchmark runs")
    parser.add_argument("--only", action="append", help=f"run only these ({', '.join(BENCH_NAMES)}); repeatable")
    parser.add_argument("--out-dir", type=Path, default=None, help="where results.json and RESULTS.md go")
    parser.add_argument("--profile", action="append", help="also profile this benchmark (a separate quick run under "
                                                           "cProfile); repeatable")
    parser.add_argument("--args", action="append", help="NAME=ARGS passed to one benchmark, e.g. 'vectors=--sizes "
                                                        "100000'; repeatable")
    args = parser.parse_args(argv)
    try:
        names = parse_names(args.only)
        extra = parse_extra_args(args.args)
        profiled = parse_names(args.profile) if args.profile else []
    except ValueError as err:
        parser.error(str(err))
    outcome = run_all(names, quick=args.quick, out_dir=args.out_dir, extra_args=extra, profile=profiled)
    print(json.dumps({"results": str(outcome.json_path), "markdown": str(outcome.md_path), "failed": outcome.failed}))
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
