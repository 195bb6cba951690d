"""`python -m harness bench [--quick] [--only NAME]`: run the benchmarks under `bench/` (what `make bench` calls).

The work is the `bench` package's (`bench.runner`; `python -m bench` is the same without this summary); this command
adds the readable summary at the end: each benchmark's headline figures with their baseline and ratio, and the goals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

from bench import cli as bench_cli
from bench import registry, runner
from bench.registry import Benchmark, HeadlineRow
from bench.render import fmt

# Module level: Typer evaluates the annotations (which hold the help texts) in this module's globals.
BENCHMARK_NAMES = ", ".join(registry.names())


def headline_rows(results: Mapping[str, Any], benchmarks: Sequence[Benchmark]) -> list[HeadlineRow]:
    """(figure, ours, baseline, ratio) for the summary table: each benchmark's own headline figures, in run order."""
    rows: list[HeadlineRow] = []
    for benchmark in benchmarks:
        section = results.get(benchmark.name)
        if section and benchmark.headline:
            rows += benchmark.headline(section)
    return rows


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        quick: bool = typer.Option(False, "--quick", help="CI sizes: proves every benchmark runs (minutes, not hours)"),
        only: Annotated[list[str] | None, typer.Option(
            "--only", help=f"Run only this benchmark ({BENCHMARK_NAMES}); repeatable. Other sections of the "
                           "results file are kept.")] = None,
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
        try:
            selected = bench_cli.parse_names(only)
            extra = bench_cli.parse_extra_args(args)
            profiled = bench_cli.parse_names(profile) if profile else []
        except ValueError as err:
            console.print(f"[red]error:[/red] {escape(str(err))}")
            raise typer.Exit(2) from None
        outcome = runner.run_all(selected, quick=quick, out_dir=out_dir, extra_args=extra, profile=profiled,
                                 say=lambda text: console.print(f"[bold cyan]{escape(text)}[/bold cyan]"))

        table = Table(title="benchmarks" + (" (quick: CI sizes)" if quick else ""), title_justify="left")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("figure", "left"), ("ours", "right"), ("baseline", "right"), ("ratio", "right"))
        for column, justify in columns:
            table.add_column(column, justify=justify)
        for row in headline_rows(outcome.results, registry.benchmarks()):
            table.add_row(*(escape(cell) for cell in row))
        out = Console()
        out.print(table)
        goals = Table(title="goals", title_justify="left")
        for column in ("goal", "target", "measured", "status"):
            goals.add_column(column)
        colour = {"met": "green", "missed": "red", "not measured": "yellow"}
        for goal in outcome.results.get("goals") or []:
            goals.add_row(escape(goal["label"]), goal["target"], fmt(goal["value"]),
                          f"[{colour[goal['status']]}]{goal['status']}[/]")
        out.print(goals)
        for name, seconds in outcome.seconds.items():
            out.print(f"{name}: {seconds:,.0f} s" + (" [red](failed)[/red]" if name in outcome.failed else ""))
        out.print(f"results: {outcome.json_path}\n          {outcome.md_path}")
        if outcome.failed:
            for name, message in outcome.failed.items():
                console.print(f"[red]{name} failed:[/red] {escape(message)}")
            raise typer.Exit(1)
