"""`python -m harness stream produce|status|wait`: shoppers' sessions into the local stack, recommendations out."""

from __future__ import annotations

import json
from collections.abc import Mapping

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.emulator import state as st
from harness.workflows import stream as streaming


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def _summary_table(title: str, values: Mapping[str, object]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in values.items():
        table.add_row(name.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    return table


def _wait(console: Console, expected: int | None, timeout: float) -> dict[str, int]:
    with _progress(console) as bar:
        task = bar.add_task("delivered", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return streaming.wait_for_delivery(st.local_dir(), expected, timeout, progress=progress)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Stream shoppers' sessions through Kinesis, Firehose and the transformation Lambda.",
                        no_args_is_help=True)
    app.add_typer(group, name="stream")

    @group.command()
    def produce(
        events: int = typer.Option(100, "--events", "-n", help="How many sessions to send."),
        rate: str = typer.Option("50/s", help="Events per second, e.g. 20/s; `max` sends as fast as Kinesis takes."),
        seed: int | None = typer.Option(
            None, help="Random seed: the same seed sends the same sessions (default: random)."),
        empty_history_rate: float = typer.Option(
            0.0, help="Fraction of sessions with an empty browsing history (they land under the error prefix)."),
        wait: bool = typer.Option(True, help="Wait until every event is delivered or under the error prefix."),
        timeout: float = typer.Option(streaming.DEFAULT_TIMEOUT_S, help="Seconds to wait for delivery."),
    ) -> None:
        """Send sessions made from the source database's customers and products to the stack's Kinesis stream."""
        console = Console()
        try:
            per_second = streaming.parse_rate(rate)
            with _progress(console) as bar:
                task = bar.add_task("sent", total=events)
                sent = streaming.produce(st.local_dir(), events, per_second, seed=seed,
                                         empty_history_rate=empty_history_rate,
                                         progress=lambda done, total: bar.update(task, completed=done))
            console.print(f"sent {sent:,} events to Kinesis at {rate if per_second else 'full speed'}")
            if wait:
                result = _wait(console, sent, timeout)
                console.print(_summary_table("delivery", result))
        except (ValueError, streaming.StreamError, st.StateError) as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from None

    @group.command()
    def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
        """The delivery-stream runner's counters, and what became of the last `produce`."""
        console = Console()
        try:
            info = streaming.status(st.local_dir())
        except (streaming.StreamError, st.StateError) as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from None
        if as_json:
            print(json.dumps(info, indent=2))
            return
        last = info.pop("last_produce")
        console.print(_summary_table("delivery stream", info))
        console.print(_summary_table("last produce", last))

    @group.command("wait")
    def wait_command(
        timeout: float = typer.Option(streaming.DEFAULT_TIMEOUT_S, help="Seconds to wait."),
    ) -> None:
        """Wait until every event of the last `produce` is delivered or under the error prefix."""
        console = Console()
        try:
            console.print(_summary_table("delivery", _wait(console, None, timeout)))
        except (streaming.StreamError, st.StateError) as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from None
