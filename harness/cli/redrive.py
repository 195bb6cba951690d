"""`harness redrive`: the stack's own redrive function (lambda_src/redrive.py), invoked through the stack's Lambda API
as `aws lambda invoke` would, so the same code decides locally and on AWS. Prints its report."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness.cli import target
from harness.workflows.redrive import RedriveError, invoke_redrive


def report_tables(report: dict[str, Any]) -> list[Table]:
    summary = Table(title="redrive (dry run: nothing sent, nothing marked)" if report["dry_run"] else "redrive",
                    show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        ("error objects since " + report["since"], report["error_objects"]),
        ("objects read", report["objects_read"]),
        ("objects settled by earlier runs", report["objects_settled_before"]),
        ("records chosen", report["chosen"]),
        ("already delivered (skipped)", report["already_delivered"]),
        ("duplicates in the error output (skipped)", report["duplicates"]),
        ("to send" if report["dry_run"] else "sent to " + report["stream"],
         report["to_send"] if report["dry_run"] else report["sent"]),
        ("left for a later run (max_records)", report["deferred"]),
        ("ProcessingFailed left (--include-processing-failed)", report["left_processing_failed"]),
        ("poison (never redriven)", report["poison"]),
        ("objects marked", report["objects_marked"]),
        ("delivered output read for dedup", f"{report['scan']['objects']:,} objects, {report['scan']['bytes']:,} B"),
    ]
    for name, value in rows:
        summary.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    return [summary]


def poison_lines(report: dict[str, Any]) -> list[str]:
    """One plain line per poison record: keys are long and must stay whole to be copied (a table would wrap them)."""
    return [f"  {record['key']} line {record['line']}: {record['error_code']}: {record['reason']}"
            for record in report["poison_records"]]


def register(app: typer.Typer) -> None:
    @app.command()
    def redrive(
        dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be sent; send and mark nothing."),
        as_json: bool = typer.Option(False, "--json", help="Print the function's report as JSON."),
        since: str | None = typer.Option(
            None, help="Only error objects written since this ISO 8601 time (default: the last 7 days)."),
        include_processing_failed: bool = typer.Option(
            False, "--include-processing-failed",
            help="Also redrive records the transformation refused (e.g. unknown products, after a catalogue reload)."),
        max_records: int | None = typer.Option(None, min=1, help="Send at most this many records in this run."),
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
        yes: target.Yes = False,
    ) -> None:
        """Send records of the error output back into the Kinesis stream, each session once (the stack's redrive
        function: the same code as on AWS)."""
        console = Console()
        payload: dict[str, Any] = {"dry_run": dry_run, "include_processing_failed": include_processing_failed}
        if since is not None:
            payload["since"] = since
        if max_records is not None:
            payload["max_records"] = max_records
        handle = target.open_stack(stack, outputs, pulumi_stack, console=console)
        if not dry_run:
            target.confirm_changes(handle, "`harness redrive` sends failed records back into the Kinesis stream",
                                   yes=yes, console=console)
        try:
            report = invoke_redrive(handle, payload)
        except RedriveError as err:
            raise target.fail(err, console) from None
        if as_json:
            print(json.dumps(report, indent=2))
            return
        for table in report_tables(report):
            console.print(table)
        if report["poison_records"]:
            console.print(f"poison records (never redriven; fix or delete them by hand), first "
                          f"{len(report['poison_records'])}:")
            for line in poison_lines(report):
                print(line)
        if report["deferred"]:
            console.print(f"{report['deferred']:,} more records are waiting: run `harness redrive` again")
