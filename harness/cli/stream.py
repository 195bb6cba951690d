"""`harness stream produce|status|wait`: shoppers' sessions into a stack's Kinesis stream, recommendations out.

The sessions of the last `produce` are remembered per stack in the local state directory
(`stream/last-produce-<stack>.json`), so `wait` and `status` can follow them into S3 later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.cli import target
from harness.emulator import state as st
from harness.workflows import stream as streaming
from harness.workflows.handle import StackHandle


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


def last_produce_path(stack: str, state_dir: Path | None = None) -> Path:
    return (state_dir or st.local_dir()) / "stream" / f"last-produce-{stack}.json"


def remember(produced: streaming.Produced, state_dir: Path | None = None) -> None:
    path = last_produce_path(produced.stack, state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(produced.to_json() + "\n", encoding="utf-8")


def last_produce(handle: StackHandle, state_dir: Path | None = None) -> streaming.Produced | None:
    try:
        return streaming.Produced.from_json(last_produce_path(handle.name, state_dir).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _wait(console: Console, handle: StackHandle, produced: streaming.Produced, timeout: float | None
          ) -> dict[str, int]:
    with _progress(console) as bar:
        task = bar.add_task("settled", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return streaming.wait_for_delivery(handle, produced, timeout, progress=progress).counts()


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Stream shoppers' sessions through Kinesis, Firehose and the transformation Lambda.",
                        no_args_is_help=True)
    app.add_typer(group, name="stream")

    @group.command()
    def produce(
        events: int = typer.Option(100, "--events", "-n", min=1, help="How many sessions to send."),
        rate: str = typer.Option("50/s", help="Events per second, e.g. 20/s; `max` sends as fast as Kinesis takes."),
        seed: int | None = typer.Option(
            None, help="Random seed: the same seed sends the same sessions (default: random)."),
        empty_history_rate: float = typer.Option(
            0.0, min=0.0, max=1.0,
            help="Fraction of sessions with an empty browsing history (they land under the error prefix)."),
        wait: bool = typer.Option(True, help="Wait until every session is delivered or under the error prefix."),
        timeout: float | None = typer.Option(None, min=1.0, help="Seconds to wait for delivery (default: what the "
                                                                 "delivery stream's buffering needs, at least 180)."),
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
        yes: target.Yes = False,
    ) -> None:
        """Send sessions made from the stack's customers and products to its Kinesis stream."""
        console = Console()
        try:
            per_second = streaming.parse_rate(rate)
        except ValueError as err:
            raise target.fail(target.TargetError(str(err)), console) from None
        handle = target.open_stack(stack, outputs, pulumi_stack, console=console)
        target.confirm_changes(handle, f"`harness stream produce` sends {events:,} sessions through Kinesis, Firehose "
                               "and the functions", yes=yes, console=console)
        try:
            with _progress(console) as bar:
                task = bar.add_task("sent", total=events)
                produced = streaming.produce(handle, events, per_second, seed=seed,
                                             empty_history_rate=empty_history_rate,
                                             progress=lambda done, total: bar.update(task, completed=done),
                                             say=lambda text: console.print(f"[yellow]{text}[/yellow]"))
            remember(produced)
            console.print(f"sent {len(produced.session_ids):,} sessions to Kinesis at "
                          f"{rate if per_second else 'full speed'}")
            if wait:
                console.print(_summary_table("delivery", _wait(console, handle, produced, timeout)))
        except streaming.StreamError as err:
            raise target.fail(err, console) from None

    @group.command()
    def status(
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
        minutes: int = typer.Option(60, min=1, max=1440, help="Sum the delivery stream's metrics over this many "
                                                              "minutes."),
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
    ) -> None:
        """The stream, the delivery stream and its CloudWatch metrics, and what became of the last `produce`."""
        from datetime import timedelta

        console = Console()
        handle = target.open_stack(stack, outputs, pulumi_stack, console=console)
        try:
            info = streaming.status(handle, last_produce(handle), window=timedelta(minutes=minutes))
        except streaming.StreamError as err:
            raise target.fail(err, console) from None
        if as_json:
            print(json.dumps(info, indent=2))
            return
        last = info.pop("last_produce", None)
        console.print(_summary_table("delivery stream", info))
        if last is not None:
            console.print(_summary_table("last produce", last))

    @group.command("wait")
    def wait_command(
        timeout: float | None = typer.Option(None, min=1.0, help="Seconds to wait (default: what the delivery "
                                                                 "stream's buffering needs, at least 180)."),
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
    ) -> None:
        """Wait until every session of the last `produce` is delivered or under the error prefix."""
        console = Console()
        handle = target.open_stack(stack, outputs, pulumi_stack, console=console)
        produced = last_produce(handle)
        if produced is None:
            raise target.fail(streaming.StreamError(
                f"nothing was produced to stack {handle.name} from here: run `harness stream produce` first"), console)
        try:
            console.print(_summary_table("delivery", _wait(console, handle, produced, timeout)))
        except streaming.StreamError as err:
            raise target.fail(err, console) from None
