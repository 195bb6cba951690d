"""The benchmarks `harness bench` runs: each module under `bench/benchmarks/` registers one `Benchmark` when imported.

A registration says everything the runner, results.json, RESULTS.md and the summary table need to know:

    BENCHMARK = register(Benchmark(
        name="streaming", measures="records/s of ... against ...", main=main,
        full_args=("--runs", str(RUNS)), quick_args=("--quick",), timeout_s=3600,
        summarize=summarize, render=render, headline=headline, goals=(Goal("streaming.scale1.ratio", ...),),
        profile_focus=run_ours))

`main(argv)` runs in the benchmark's own process (`python -m <its module>`) and prints one JSON document; `summarize`
turns that document into the benchmark's section of results.json (default: the document itself), `render` the section
into its part of RESULTS.md (default: a table of its figures), `headline` into rows of `harness bench`'s summary.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bench import benchmarks as benchmarks_package

# Measured runs per figure in a full run (after a warm-up): the median is the figure, min/max the spread.
RUNS = 5

Summarizer = Callable[[Mapping[str, Any]], dict[str, Any]]
Renderer = Callable[[Mapping[str, Any]], list[str]]
HeadlineRow = tuple[str, str, str, str]  # (figure, ours, baseline, ratio), already formatted
Headline = Callable[[Mapping[str, Any]], list[HeadlineRow]]


class RegistryError(RuntimeError):
    """A benchmark module that is not registered as the runner needs it; the message says what to write where."""


@dataclass(frozen=True)
class Goal:
    """A target for one figure: `key` is its dotted path in results.json (`streaming.scale1.ratio`)."""

    key: str
    op: Literal[">=", "<="]
    target: float
    label: str


def document_as_section(document: Mapping[str, Any]) -> dict[str, Any]:
    """The default summary: the document already uses results.json's keys (the machine is recorded once per file)."""
    return {key: value for key, value in document.items() if key != "machine"}


@dataclass(frozen=True)
class Benchmark:
    name: str  # its section in results.json and its `--only` name: the module's own name
    measures: str  # one line: what is measured, against which baseline
    main: Callable[[list[str] | None], int]  # its process's entry point: parses argv, prints one JSON document
    full_args: tuple[str, ...]
    quick_args: tuple[str, ...] = ("--quick",)
    timeout_s: float = 3600
    summarize: Summarizer = document_as_section
    render: Renderer | None = None
    headline: Headline | None = None
    goals: tuple[Goal, ...] = ()
    # The function whose call tree is "ours" (what `--profile` breaks down), if the benchmark has one.
    profile_focus: Callable[..., Any] | None = None

    @property
    def module(self) -> str:
        """The module `python -m` runs: where `main` is defined."""
        return self.main.__module__


_registered: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Record `benchmark` (called by its module at import); returns it, for the module's `BENCHMARK` constant."""
    for goal in benchmark.goals:
        if not goal.key.startswith(benchmark.name + "."):
            raise RegistryError(f"benchmark {benchmark.name!r}: goal key {goal.key!r} must start with "
                                f"'{benchmark.name}.' (a figure of its own section)")
    known = _registered.get(benchmark.name)
    # Run as `python -m`, a module registers as __main__; that is the same benchmark, not a second one.
    if known is not None and "__main__" not in (known.module, benchmark.module) and known.module != benchmark.module:
        raise RegistryError(f"two benchmarks are named {benchmark.name!r}: {known.module} and {benchmark.module}")
    _registered[benchmark.name] = benchmark
    return benchmark


def names() -> tuple[str, ...]:
    """The benchmarks' names in run order, without importing them (cheap enough for `--help`)."""
    return benchmarks_package.RUN_ORDER


def benchmarks() -> tuple[Benchmark, ...]:
    """Every benchmark, in run order. Imports each module under bench/benchmarks/ (so numpy and friends): each
    registers its benchmark; a module that registers none is a helper of one that does."""
    package = benchmarks_package.__name__
    for info in pkgutil.iter_modules(benchmarks_package.__path__):
        importlib.import_module(f"{package}.{info.name}")
    found = {name: b for name, b in _registered.items() if b.module.startswith(package + ".")}
    unlisted = sorted(set(found) - set(names()))
    if unlisted:
        raise RegistryError(f"{found[unlisted[0]].module} registers {unlisted[0]!r}, which is not in "
                            f"{package}.RUN_ORDER: add it there (the order benchmarks run in and RESULTS.md lists "
                            "them)")
    missing = [name for name in names() if name not in found]
    if missing:
        raise RegistryError(f"{package}.RUN_ORDER names {missing[0]!r} but no module registers it: end "
                            f"bench/benchmarks/{missing[0]}.py with `BENCHMARK = register(Benchmark(name="
                            f"{missing[0]!r}, ...))`")
    return tuple(found[name] for name in names())


def scales_and_runs(parser: Any, scales: str | None, runs: int | None, *, quick: bool, default_scales: str,
                    example: str) -> tuple[list[int], int]:
    """The `--scales`/`--runs` a benchmark was given (defaults: `default_scales` and RUNS; quick: scale 1, one run);
    a malformed or non-positive value stops with argparse's usage error (exit 2)."""
    try:
        chosen = [int(s) for s in (scales or ("1" if quick else default_scales)).split(",")]
    except ValueError:
        parser.error(f"--scales takes comma-separated integers, e.g. --scales {example}")
    count = runs if runs is not None else (1 if quick else RUNS)
    if count < 1 or any(s < 1 for s in chosen):
        parser.error("--runs and every scale must be at least 1")
    return chosen, count
