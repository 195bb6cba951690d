"""`harness seed`: write the source database (the classicmodels tables plus `ratings`) through the stack's seeder
function, on the local stack or one deployed with `pulumi up` (`--outputs FILE`, `--pulumi-stack NAME`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from recsys import classicmodels
from rich.console import Console
from rich.table import Table

from harness.cli import target
from harness.emulator import state as st
from harness.workflows import seed as seeding
from harness.workflows.seed import DEFAULT_SEED, SeedError, SeedSummary

DumpFile = Annotated[Path | None, typer.Option(
    "--classicmodels-dump", metavar="PATH",
    help="The public sample's own dump (mysqlsampledatabase.sql from mysqltutorial.org): load its real customers, "
         "products and orders, with ratings generated over the products each customer really ordered.")]


class UsageError(ValueError):
    exit_code = 2


def summary_table(summary: SeedSummary) -> Table:
    table = Table()
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in summary.counts.items():
        table.add_row(name, f"{count:,}")
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def seed(
        scale: int = typer.Option(1, help="1 = the classicmodels sample's size (122 customers, 110 products, ~2,500 "
                                          "ratings); N multiplies customers, products and orders."),
        seed: int = typer.Option(DEFAULT_SEED, help="Random seed: the same seed gives the same data (with "
                                                    "--classicmodels-dump, the same ratings)."),
        classicmodels_dump: DumpFile = None,
        overwrite_external: bool = typer.Option(
            False, "--overwrite-external",
            help="A stack attached to your own MySQL (`up --source-url`) has no seeder: replace that database's "
                 "classicmodels tables from here anyway."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
        yes: target.Yes = False,
    ) -> None:
        """Write the source database through the stack's seeder function: the eight classicmodels tables plus
        ratings, swapped in all at once."""
        errors = Console(stderr=True)
        console = Console(stderr=as_json)  # with --json, stdout holds the JSON alone
        chosen = target.choose(stack, outputs, pulumi_stack, console=errors)
        try:
            classicmodels.validate(scale, seed)
            if classicmodels_dump is not None:
                if scale != 1:
                    raise SeedError(f"--scale {scale} does not apply to --classicmodels-dump: the dump has the "
                                    "sample's own size")
                seeding.read_dump(classicmodels_dump)  # exists, readable, and really the dump: before any work
        except (ValueError, SeedError) as err:
            raise target.fail(UsageError(str(err)), errors) from None
        handle = target.open_handle(chosen, console=errors)
        target.confirm_changes(handle, "`harness seed` replaces the source database's classicmodels tables",
                               yes=yes, console=errors)
        try:
            with console.status("seeding") as status:
                summary = seeding.seed_stack(handle, scale=scale, seed=seed, classicmodels_dump=classicmodels_dump,
                                             on_progress=lambda message: status.update(f"seeding: {message}"),
                                             overwrite_external=overwrite_external)
        except SeedError as err:
            raise target.fail(err, errors) from None
        if chosen.local:
            st.update_state(st.local_dir(), lambda s: s.update(seed={
                "scale": scale, "seed": seed, "counts": summary.counts, "target": summary.target,
                "classicmodels_dump": summary.classicmodels_dump}))
        if as_json:
            print(json.dumps({"stack": handle.name, **summary.as_dict()}, indent=2))
            return
        source = f"the classicmodels dump {summary.classicmodels_dump}" if summary.classicmodels_dump \
            else f"scale {scale}"
        console.print(f"seeded {summary.target} ({source}, seed {seed}) in {summary.seconds:.1f} s", soft_wrap=True)
        console.print(summary_table(summary))
