"""`python -m harness seed`: write the classicmodels-shaped source database (plus `ratings`) into the stack's MySQL."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.emulator import state as st
from harness.workflows import seed as seeding
from harness.workflows.seed import classicmodels


def register(app: typer.Typer) -> None:
    @app.command()
    def seed(
        scale: int = typer.Option(1, help="1 = the classicmodels sample's size (122 customers, 110 products, ~2,500 "
                                          "ratings); N multiplies customers, products and orders."),
        seed: int = typer.Option(classicmodels.DEFAULT_SEED, help="Random seed: the same seed gives the same data."),
        overwrite_external: bool = typer.Option(
            False, help="Allow replacing the classicmodels tables of an external source (`up --source-url`)."),
    ) -> None:
        """Write the source database: the eight classicmodels tables plus ratings, swapped in all at once."""
        console = Console()
        state_dir = st.local_dir()
        try:
            classicmodels.validate(scale, seed)
            target = seeding.resolve_target(st.load_state(state_dir), allow_external=overwrite_external)
        except (ValueError, seeding.SeedError, st.StateError) as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from None

        with Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as bar:
            generating = bar.add_task("generating", total=1)
            tasks: dict[str, TaskID] = {}

            def generated(dataset: classicmodels.Dataset) -> None:
                bar.update(generating, completed=1)
                for table in classicmodels.TABLES:
                    tasks[table] = bar.add_task(table, total=max(len(dataset.tables[table]), 1))

            def progress(table: str, done: int, total: int) -> None:
                bar.update(tasks[table], completed=done if total else 1)

            try:
                summary = seeding.seed_target(target, scale=scale, seed=seed, progress=progress,
                                              on_generated=generated)
            except seeding.SeedError as err:
                console.print(f"[red]error:[/red] {err}")
                raise typer.Exit(1) from None
        st.update_state(state_dir, lambda s: s.update(seed={"scale": scale, "seed": seed, "counts": summary.counts,
                                                             "target": summary.target}))
        console.print(f"seeded {summary.target} (scale {scale}, seed {seed}) in {summary.seconds:.1f} s")
        table = Table()
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, count in summary.counts.items():
            table.add_row(name, f"{count:,}")
        console.print(table)
