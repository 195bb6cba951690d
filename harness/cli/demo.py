"""`python -m harness demo`: up, seed, ETL, training, embeddings load and a streaming burst, then a report."""

from __future__ import annotations

import typer
from rich.console import Console

from harness.emulator import state as st
from harness.workflows import demo as demo_run


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        stack: str = typer.Option("local", help="Stack name (its config is Pulumi.<stack>.yaml)."),
        scale: int = typer.Option(1, help="Source data scale (1 = the classicmodels sample's size)."),
        seed: int = typer.Option(42, help="Source data seed."),
        events: int = typer.Option(demo_run.DEFAULT_EVENTS, help="Sessions to stream through Kinesis and Firehose."),
    ) -> None:
        """Run the platform end to end on the local stack and print a report; the stack stays up."""
        console = Console()
        state_dir = st.local_dir()
        report = demo_run.run_demo(state_dir, stack=stack, scale=scale, seed=seed, events=events, console=console)
        path = demo_run.write_report(state_dir, report)
        demo_run.print_report(report, path, console)
        if not report.ok:
            raise typer.Exit(1)
