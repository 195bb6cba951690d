"""`python -m harness bench [--quick] [--only NAME]`: run the benchmarks under `bench/` (what `make bench` calls).

The work is `bench/run.py`'s (loaded from its file: `bench/` is a folder of scripts, not a package); this command adds
the readable summary at the end: each benchmark's headline figure with its baseline and ratio, and the goals.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

RUN_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def load_bench_runner() -> ModuleType:
    if "recsys_bench_run" in sys.modules:
        return sys.modules["recsys_bench_run"]
    spec = importlib.util.spec_from_file_location("recsys_bench_run", RUN_SCRIPT)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {RUN_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["recsys_bench_run"] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def headline_rows(results: dict[str, Any], runner: ModuleType) -> list[tuple[str, str, str, str]]:
    """(figure, ours, baseline, ratio) for the summary table: the keys the issue names."""
    fmt, fmt_ratio = runner.fmt, runner.fmt_ratio
    rows: list[tuple[str, str, str, str]] = []
    streaming = results.get("streaming") or {}
    for key in sorted(k for k in streaming if k.startswith("scale")):
        s = streaming[key]
        rows.append((f"streaming {key}: records/s", fmt(s.get("ours_records_per_s")),
                     fmt(s.get("baseline_records_per_s")), fmt_ratio(s.get("ratio"))))
    vectors = results.get("vectors") or {}
    if vectors.get("load"):
        load = vectors["load"]
        rows.append((f"vectors load ({fmt(load.get('items'))}): vectors/s", fmt(load.get("copy_vectors_per_s")),
                     fmt(load.get("insert_vectors_per_s")), fmt_ratio(load.get("ratio"))))
    for key in sorted((k for k in vectors if k.startswith("items_")), key=lambda k: vectors[k]["items"]):
        v = vectors[key]
        rows.append((f"vectors {key}: p50 / p99 ms, recall@10, build s",
                     f"{fmt(v.get('p50_ms'))} / {fmt(v.get('p99_ms'))}, {fmt(v.get('recall_at_10'))}, "
                     f"{fmt(v.get('build_s'))}", "exact: recall 1", "–"))
    batch = results.get("batch") or {}
    for key in sorted((k for k in batch if k.startswith("scale")), key=lambda k: int(k[5:])):
        b = batch[key]
        rows.append((f"batch {key}: wall s ({fmt(b.get('rows'))} rows)", fmt(b.get("wall_s")),
                     fmt(b.get("baseline_wall_s")), fmt_ratio(b.get("ratio"))))
    stack = results.get("stack") or {}
    if stack:
        rows.append(("stack: harness up s", fmt(stack.get("up_s")), fmt(stack.get("services_s")),
                     fmt_ratio(stack.get("up_vs_services"))))
        rows.append(("stack: make demo s", fmt(stack.get("demo_s")), "–", "–"))
    return rows


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        quick: bool = typer.Option(False, "--quick", help="CI sizes: proves every benchmark runs (minutes, not hours)"),
        only: Annotated[list[str] | None, typer.Option(
            "--only", help="Run only this benchmark (streaming, vectors, batch, stack); repeatable. Other sections of "
                           "the results file are kept.")] = None,
        out_dir: Annotated[Path | None, typer.Option(
            "--out-dir", help="Where results.json and RESULTS.md go (default bench/; --quick: .build/bench-quick/).")
        ] = None,
        profile: Annotated[list[str] | None, typer.Option(
            "--profile", help="Also profile this benchmark: a separate quick run under cProfile, its top functions "
                              "in results.json and RESULTS.md (where the time goes); repeatable.")] = None,
        args: Annotated[list[str] | None, typer.Option(
            "--args", help="NAME=ARGS passed through to one benchmark, e.g. 'vectors=--sizes 100000'; repeatable. "
                           "Figures from a reduced run are real but not the issue's sizes: say so when quoting them.")
        ] = None,
    ) -> None:
        """Run the benchmarks (median of 5 runs after a warm-up, with spread) and write bench/RESULTS.md."""
        console = Console(stderr=True)
        runner = load_bench_runner()
        try:
            names = runner.parse_names(only)
            extra = runner.parse_extra_args(args)
            profiled = runner.parse_names(profile) if profile else []
        except ValueError as err:
            console.print(f"[red]error:[/red] {escape(str(err))}")
            raise typer.Exit(2) from None
        outcome = runner.run_all(names, quick=quick, out_dir=out_dir, extra_args=extra, profile=profiled,
                                 say=lambda text: console.print(f"[bold cyan]{escape(text)}[/bold cyan]"))

        table = Table(title="benchmarks" + (" (quick: CI sizes)" if quick else ""), title_justify="left")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("figure", "left"), ("ours", "right"), ("baseline", "right"), ("ratio", "right"))
        for column, justify in columns:
            table.add_column(column, justify=justify)
        for row in headline_rows(outcome.results, runner):
            table.add_row(*(escape(cell) for cell in row))
        out = Console()
        out.print(table)
        goals = Table(title="goals", title_justify="left")
        for column in ("goal", "target", "measured", "status"):
            goals.add_column(column)
        colour = {"met": "green", "missed": "red", "not measured": "yellow"}
        for goal in outcome.results.get("goals") or []:
            goals.add_row(escape(goal["label"]), goal["target"], runner.fmt(goal["value"]),
                          f"[{colour[goal['status']]}]{goal['status']}[/]")
        out.print(goals)
        for name, seconds in outcome.seconds.items():
            out.print(f"{name}: {seconds:,.0f} s" + (" [red](failed)[/red]" if name in outcome.failed else ""))
        out.print(f"results: {outcome.json_path}\n          {outcome.md_path}")
        if outcome.failed:
            for name, message in outcome.failed.items():
                console.print(f"[red]{name} failed:[/red] {escape(message)}")
            raise typer.Exit(1)
