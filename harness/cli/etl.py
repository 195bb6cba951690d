"""`harness etl run | runs | get-run`: the stack's Glue job through Glue's API, on the local stack (the emulator runs
it on local Spark) or one deployed with `pulumi up` (`--outputs FILE`, `--pulumi-stack NAME`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.cli import target
from harness.workflows import etl

SHORT_ID = 12
STAGE_TITLES = {
    "read": "reading the source tables over JDBC",
    "transform": "joining ratings with customer and product features",
    "write": "writing Parquet to the staging area",
    "publish": "publishing to the data lake",
    "catalog": "updating the Glue Data Catalog",
    "done": "finished",
}
STATE_COLOURS = {"SUCCEEDED": "green", "RUNNING": "yellow", "STARTING": "yellow", "STOPPING": "yellow",
                 "WAITING": "yellow"}

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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


def runs_table(job: str, runs: list[dict[str, Any]]) -> Table:
    # Short ids: `etl get-run` accepts any unique prefix of a run id. Narrow columns first: readable at 80 columns.
    table = Table("run id", "state", "started (UTC)", "s", "error", title=f"Glue job {job}", title_justify="left")
    table.columns[4].overflow = "fold"
    for run in runs:
        state = str(run.get("JobRunState"))
        colour = STATE_COLOURS.get(state, "red")
        started = etl.timestamp(run.get("StartedOn")) or ""
        table.add_row(str(run["Id"])[:SHORT_ID], f"[{colour}]{state}[/{colour}]", started[:19].replace("T", " "),
                      str(run.get("ExecutionTime", 0)), escape(str(run.get("ErrorMessage") or "")))
    return table


def run_table(run: dict[str, Any]) -> Table:
    table = Table(title=f"Glue job run {run['Id']}", show_header=False, title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    state = str(run.get("JobRunState"))
    colour = STATE_COLOURS.get(state, "red")
    table.add_row("job", str(run.get("JobName")))
    table.add_row("state", f"[{colour}]{state}[/{colour}]")
    for label, key in (("started", "StartedOn"), ("completed", "CompletedOn")):
        if run.get(key) is not None:
            table.add_row(label, str(etl.timestamp(run[key])))
    table.add_row("seconds", str(run.get("ExecutionTime", 0)))
    if run.get("TriggerName"):
        table.add_row("trigger", str(run["TriggerName"]))
    if run.get("ErrorMessage"):
        table.add_row("error", escape(str(run["ErrorMessage"])))
    arguments = run.get("Arguments") or {}
    table.add_row("arguments", escape(" ".join(f"{k} {v}" for k, v in sorted(arguments.items()))) or "(none)")
    table.add_row("logs", f"{etl.output_log_group(run)} and .../error, stream {run['Id']}")
    return table


def run_command(
    as_json: AsJson = False,
    stack: target.StackName = None,
    outputs: target.OutputsFile = None,
    pulumi_stack: target.PulumiStack = None,
    yes: target.Yes = False,
) -> None:
    """Start the stack's Glue job (StartJobRun), follow its log, wait for the end: the run's summary."""
    errors = Console(stderr=True)
    out = Console()
    handle = target.open_stack(stack, outputs, pulumi_stack, console=errors)
    target.confirm_changes(handle, "`harness etl run` runs the Glue job (billed per DPU-hour) and replaces the "
                                   "training data", yes=yes, console=errors)
    with Progress(SpinnerColumn(), TextColumn("[bold]etl[/] {task.description}"), TimeElapsedColumn(),
                  console=errors, transient=True) as progress:
        task = progress.add_task("starting the job run (Spark takes a few seconds to start)")

        def on_stage(stage: str, detail: str) -> None:
            progress.update(task, description=STAGE_TITLES.get(stage, stage))

        try:
            result = etl.run_etl(handle, on_stage=on_stage)
        except etl.EtlError as err:
            progress.stop()
            errors.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
            if err.run is not None:
                errors.print(f"the run's output: aws logs get-log-events --log-group-name "
                             f"{etl.output_log_group(err.run).removesuffix('/output')}/error --log-stream-name "
                             f"{err.run['Id']}", soft_wrap=True, markup=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            progress.stop()
            errors.print("[yellow]ETL run stopped[/yellow] (BatchStopJobRun): the previous output is unchanged unless "
                         "it was publishing (then the next run completes it)")
            raise typer.Exit(130) from None
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out.print(summary_table(result, result["run_id"]))
    out.print(f"[green]SUCCEEDED[/green] in {result['execution_time_s']}s; "
              f"`harness etl get-run {result['run_id'][:SHORT_ID]}` shows the run", soft_wrap=True)


def runs_command(
    as_json: AsJson = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many runs, newest first.")] = 50,
    stack: target.StackName = None,
    outputs: target.OutputsFile = None,
    pulumi_stack: target.PulumiStack = None,
) -> None:
    """The stack's Glue job runs, newest first (GetJobRuns): however they were started."""
    errors = Console(stderr=True)
    handle = target.open_stack(stack, outputs, pulumi_stack, console=errors)
    try:
        job, runs = etl.job_runs(handle, limit=limit)
    except etl.EtlError as err:
        raise target.fail(err, errors) from None
    if as_json:
        print(json.dumps({"JobName": job, "JobRuns": [etl.run_record(r) for r in runs]}, indent=2))
        return
    if not runs:
        errors.print(f"Glue job {job} has no runs yet: `harness etl run` starts one")
        return
    Console().print(runs_table(job, runs))


def get_run_command(
    run_id: Annotated[str | None, typer.Argument(help="A run id or a unique prefix of one (default: the latest "
                                                 "run).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as `aws glue get-job-run` does.")] = False,
    stack: target.StackName = None,
    outputs: target.OutputsFile = None,
    pulumi_stack: target.PulumiStack = None,
) -> None:
    """One run as Glue reports it (GetJobRun): state, timings, error, arguments."""
    errors = Console(stderr=True)
    handle = target.open_stack(stack, outputs, pulumi_stack, console=errors)
    try:
        run = etl.get_run(handle, run_id)
    except etl.EtlError as err:
        raise target.fail(err, errors) from None
    if as_json:
        print(json.dumps({"JobRun": etl.run_record(run)}, indent=2))
        return
    Console().print(run_table(run))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The batch pipeline: run the stack's Glue job and inspect its runs.",
                        no_args_is_help=True)
    group.command("run")(run_command)
    group.command("runs")(runs_command)
    group.command("get-run")(get_run_command)
    app.add_typer(group, name="etl")
