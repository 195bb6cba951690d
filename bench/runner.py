"""Run the registered benchmarks one after the other, each in its own process, and write results.json and RESULTS.md.

Never in parallel: they would measure each other. Each benchmark repeats its measurement itself (a warm-up, then at
least `bench.registry.RUNS` measured runs whose median is the figure and whose min/max is the spread) and prints one
JSON document; the runner turns it into the benchmark's section (`Benchmark.summarize`), records the command and the
share of a core its process got, and merges the sections over the previous results file (`--only` re-runs some
benchmarks and keeps the other sections; each keeps its own date). `--quick` runs each at its CI size, only to prove it
still works; its results go to `.build/bench-quick/` unless `out_dir` says otherwise, never over the real results.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import registry
from bench.machine import machine_description
from bench.profiling import profile_table
from bench.registry import Benchmark
from bench.results import merge_results, read_previous, write_results

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
QUICK_OUT_DIR = ROOT / ".build" / "bench-quick"


class BenchError(RuntimeError):
    """A benchmark could not run or printed something that is not its JSON document; the message says which and why."""


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


def benchmark_args(benchmark: Benchmark, *, quick: bool, extra_args: Sequence[str] = ()) -> list[str]:
    return [*(benchmark.quick_args if quick else benchmark.full_args), *extra_args]


def display_command(benchmark: Benchmark, args: Sequence[str]) -> str:
    """The command as a user would type it to reproduce the figures (recorded with them)."""
    return " ".join(["python -m", benchmark.module, *args])


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_benchmark(benchmark: Benchmark, *, quick: bool, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """Run one benchmark in its own process; its stderr (progress) passes through, its stdout is the result."""
    import resource

    args = benchmark_args(benchmark, quick=quick, extra_args=extra_args)
    command = display_command(benchmark, args)
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", benchmark.module, *args], cwd=ROOT, env=_child_env(),
                                stdout=subprocess.PIPE, stderr=None, text=True, timeout=benchmark.timeout_s,
                                check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{benchmark.name}: no result after {benchmark.timeout_s:.0f} s (`{command}`)") from None
    if result.returncode != 0:
        raise BenchError(f"{benchmark.name}: `{command}` exited {result.returncode}; its progress above says "
                         "where it stopped")
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - started
    try:
        document = last_json_document(result.stdout)
    except BenchError as err:
        raise BenchError(f"{benchmark.name}: {err}; stdout began with {result.stdout[:200]!r}") from None
    # How much CPU the benchmark's own process got while it ran: on a shared machine a share well under 1 core means
    # its per-core figures are understated by about that factor (the database servers it starts are not counted).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    document["process"] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cpu_share": round(cpu / wall, 3),
                           "load_average_1m_at_end": round(os.getloadavg()[0], 2)}
    return document


def profile_benchmark(benchmark: Benchmark, extra_args: Sequence[str] = ()) -> dict[str, Any]:
    """The benchmark at its quick size (plus `extra_args`) under cProfile: the Python side's time, by function."""
    args = benchmark_args(benchmark, quick=True, extra_args=extra_args)
    command = " ".join(["python -m cProfile -m", benchmark.module, *args])
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        stats_path = Path(tmp) / f"{benchmark.name}.prof"
        argv = [sys.executable, "-m", "cProfile", "-o", str(stats_path), "-m", benchmark.module, *args]
        result = subprocess.run(argv, cwd=ROOT, env=_child_env(), stdout=subprocess.DEVNULL, stderr=None,
                                timeout=benchmark.timeout_s, check=False)
        if result.returncode != 0 or not stats_path.exists():
            raise BenchError(f"{benchmark.name}: the profiled run `{command}` exited {result.returncode}")
        focus = benchmark.profile_focus.__name__ if benchmark.profile_focus else None
        table = profile_table(stats_path, focus)
    return {"command": command, **table}


@dataclass
class RunOutcome:
    results: dict[str, Any]
    json_path: Path
    md_path: Path
    failed: dict[str, str]
    seconds: dict[str, float]


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_all(names: Sequence[str], *, quick: bool, out_dir: Path | None = None,
            extra_args: Mapping[str, Sequence[str]] | None = None, profile: Collection[str] = (),
            say: Callable[[str], None] = _stderr) -> RunOutcome:
    """Run `names` one after the other, write the merged results; a failing benchmark is reported, the others run."""
    out_dir = out_dir or (QUICK_OUT_DIR if quick else BENCH_DIR)
    registered = registry.benchmarks()
    by_name = {benchmark.name: benchmark for benchmark in registered}
    machine = machine_description()
    sections: dict[str, Any] = {}
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name in names:
        benchmark = by_name[name]
        extra = list((extra_args or {}).get(name, ()))
        command = display_command(benchmark, benchmark_args(benchmark, quick=quick, extra_args=extra))
        say(f"== {name}: {command}")
        started = time.monotonic()
        try:
            document = run_benchmark(benchmark, quick=quick, extra_args=extra)
            sections[name] = {**benchmark.summarize(document), "process": document["process"], "command": command}
        except BenchError as err:
            failed[name] = str(err)
            say(f"== {name} failed: {err}")
        if name in profile and name in sections:
            say(f"== {name}: profiled run (quick size, not timed)")
            try:
                sections[name]["profile"] = profile_benchmark(benchmark, extra)
            except BenchError as err:
                failed[f"{name} profile"] = str(err)
                say(f"== {name} profile failed: {err}")
        seconds[name] = time.monotonic() - started
    date = datetime.now(UTC).isoformat(timespec="seconds")
    results = merge_results(read_previous(out_dir), sections, machine=machine, date=date, quick=quick,
                            benchmarks=registered)
    json_path, md_path = write_results(out_dir, results, registered)
    return RunOutcome(results, json_path, md_path, failed, seconds)
