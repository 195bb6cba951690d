"""`python -m harness etl run | runs | get-run`: the Glue job on local Spark, and its recorded runs."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.emulator import state as st
from harness.workflows import etl

console = Console(stderr=True)
out = Console()

SHORT_ID = 12
STAGE_TITLES = {
    "read": "reading the source tables over JDBC",
    "transform": "joining ratings with customer and product features",
    "write": "writing Parquet to the staging area",
    "publish": "publishing to the data lake",
    "catalog": "updating the Glue Data Catalog",
    "done": "finished",
}


def summary_table(summary: dict[str, Any], run_id: str) -> Table:
    counts = summary["counts"]
    table = Table(title=f"ETL run {run_id}", show_header=False, title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("rows written", f"{summary['rows']:,}")
    table.add_row("partitions", f"{summary['partitions']:,} (one per rated customer)")
    table.add_row("output", summary["prefix"])
    table.add_row("read", f"{counts['ratings_read']:,} ratings, {counts['customers_read']:,} customers, "
                          f"{counts['products_read']:,} products")
    dropped = counts["dropped"]
    detail = ", ".join(f"{reason.replace('_', ' ')} {n:,}" for reason, n in dropped.items() if n) or "none"
    table.add_row("dropped", f"{counts['dropped_total']:,} ({detail})")
    table.add_row("objects", f"{summary['objects_published']:,} published, {summary['objects_deleted']:,} replaced "
                             "or removed")
    return table


def run_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's summary as JSON.")] = False,
) -> None:
    """Start the stack's Glue job through the local Glue API and run its script on local Spark."""
    state_dir = st.local_dir()
    with Progress(SpinnerColumn(), TextColumn("[bold]etl[/] {task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("starting the job run (Spark takes a few seconds to start)")

        def on_stage(stage: str, detail: str) -> None:
            progress.update(task, description=STAGE_TITLES.get(stage, stage))

        try:
            endpoint, job_name = etl.stack_endpoint(state_dir)
            record = etl.run_job(endpoint, job_name, state_dir, on_stage=on_stage)
        except (etl.EtlError, st.StateError) as err:
            progress.stop()
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            progress.stop()
            console.print("[yellow]ETL run stopped[/yellow]: the previous output is unchanged unless it was publishing "
                          "(then the next run completes it)")
            raise typer.Exit(130) from None

    if record.JobRunState != "SUCCEEDED" or record.Summary is None:
        console.print(f"[red]ETL run {record.Id} {record.JobRunState}[/red]: {record.ErrorMessage}")
        console.print(f"driver log: {record.LogPath}")
        raise typer.Exit(1)
    if as_json:
        out.print_json(json.dumps({**record.Summary, "run_id": record.Id}))
        return
    out.print(summary_table(record.Summary, record.Id))
    out.print(f"[green]SUCCEEDED[/green] in {record.ExecutionTime}s; "
              f"`python -m harness etl get-run {record.Id[:SHORT_ID]}` shows the run")


def runs_command() -> None:
    """The recorded runs of the stack's Glue job, oldest first."""
    records = etl.list_records(st.local_dir())
    if not records:
        console.print("no ETL runs recorded yet: `python -m harness etl run`")
        return
    # Short ids: `etl get-run` accepts any unique prefix of a run id.
    table = Table("run id", "state", "started (UTC)", "seconds", "rows", "error")
    table.columns[5].overflow = "fold"
    for r in records:
        colour = {"SUCCEEDED": "green", "RUNNING": "yellow"}.get(r.JobRunState, "red")
        table.add_row(r.Id[:SHORT_ID], f"[{colour}]{r.JobRunState}[/{colour}]", r.StartedOn[:19].replace("T", " "),
                      str(r.ExecutionTime), f"{r.Summary['rows']:,}" if r.Summary else "", r.ErrorMessage or "")
    out.print(table)


def get_run_command(
    run_id: Annotated[str | None, typer.Argument(help="A run id or a unique prefix of one (default: the latest "
                                                 "run).")] = None,
) -> None:
    """One run as `aws glue get-job-run` shows it (JobRunState, ErrorMessage, Arguments), plus the local summary."""
    try:
        record = etl.load_record(st.local_dir(), run_id)
    except etl.EtlError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from None
    out.print_json(json.dumps({"JobRun": record.as_dict()}))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The batch pipeline: run the Glue job locally and inspect its runs.", no_args_is_help=True)
    group.command("run")(run_command)
    group.command("runs")(runs_command)
    group.command("get-run")(get_run_command)
    app.add_typer(group, name="etl")
