"""The benchmark registry: every module under bench/benchmarks/ is registered and run in order, a benchmark left out of
the order (or registering nothing) is refused with what to write where, and reading the registry changes nothing in
the process that reads it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bench.benchmarks
from bench import registry
from bench.registry import RUNS, Benchmark, Goal, RegistryError, register

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Benchmarks a test registers are forgotten after it."""
    registry.benchmarks()  # the real ones first, so the snapshot holds them
    saved = dict(registry._registered)
    yield
    registry._registered.clear()
    registry._registered.update(saved)


def fake(name: str, module: str = "bench.benchmarks.fake", **fields: Any) -> Benchmark:
    def main(argv: list[str] | None = None) -> int:
        return 0

    main.__module__ = module
    return Benchmark(name=name, measures="nothing", main=main, full_args=(), **fields)


def test_the_four_benchmarks_are_registered_in_run_order_by_their_own_modules() -> None:
    benchmarks = registry.benchmarks()

    assert registry.names() == ("streaming", "vectors", "batch", "stack")
    assert [b.name for b in benchmarks] == list(registry.names())
    assert [b.module for b in benchmarks] == [f"bench.benchmarks.{name}" for name in registry.names()]
    for benchmark in benchmarks:
        assert benchmark.measures and benchmark.quick_args == ("--quick",)
        assert str(RUNS) in benchmark.full_args and benchmark.timeout_s >= 3600
        assert benchmark.render is not None and benchmark.headline is not None
    goals = [goal.key for b in benchmarks for goal in b.goals]
    assert goals == ["streaming.scale1.ratio", "streaming.scale100.ratio", "streaming.scale1.ours_records_per_s",
                     "vectors.load.copy_vectors_per_s", "vectors.items_1m.p99_ms", "vectors.items_1m.recall_at_10"]
    assert {b.name: b.profile_focus.__name__ for b in benchmarks if b.profile_focus} == {
        "streaming": "run_ours", "vectors": "bench_size", "batch": "run_glue_once"}


def test_a_benchmark_left_out_of_the_run_order_is_refused_with_where_to_add_it(clean_registry: None) -> None:
    register(fake("fake"))

    with pytest.raises(RegistryError, match=r"bench.benchmarks.fake registers 'fake', which is not in "
                                            r"bench.benchmarks.RUN_ORDER: add it there"):
        registry.benchmarks()


def test_a_name_in_the_run_order_that_no_module_registers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.benchmarks, "RUN_ORDER", (*bench.benchmarks.RUN_ORDER, "ghost"))

    with pytest.raises(RegistryError, match=r"RUN_ORDER names 'ghost' but no module registers it: end "
                                            r"bench/benchmarks/ghost.py with `BENCHMARK = register"):
        registry.benchmarks()


def test_two_benchmarks_of_one_name_and_a_goal_outside_its_section_are_refused(clean_registry: None) -> None:
    with pytest.raises(RegistryError, match="two benchmarks are named 'batch': bench.benchmarks.batch and "
                                            "bench.benchmarks.other"):
        register(fake("batch", module="bench.benchmarks.other"))
    with pytest.raises(RegistryError, match="goal key 'batch.wall_s' must start with 'fake.'"):
        register(fake("fake", goals=(Goal("batch.wall_s", "<=", 1, "x"),)))
    # Run by hand (`python -m`), a benchmark registers from __main__: the same one, not a second.
    assert register(fake("batch", module="__main__")).module == "__main__"


def test_reading_the_registry_leaves_the_process_environment_alone() -> None:
    """The benchmarks hold numpy to one thread and quieten the functions' logs in their own process only: the runner
    imports every benchmark module, and its children (`harness up`, the Lambda workers) must not inherit that."""
    watched = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POWERTOOLS_LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if k not in watched}
    code = ("import os\nfrom bench import registry\nregistry.benchmarks()\n"
            f"print(sorted(k for k in {watched!r} if k in os.environ))")

    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
