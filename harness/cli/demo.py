"""`harness demo`: seed, ETL, training, embeddings load and a streaming burst on a stack, then a report.

Without options it deploys the local stack first (`harness up`, the "up" stage); `--outputs FILE` or `--pulumi-stack
NAME` run the same workflow on a stack deployed with `pulumi up` (asking first on a real account, unless `--yes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.cli import target
from harness.cli.stack import StackConfigError, StackError, bring_up
from harness.emulator import services as svc
from harness.emulator import state as st
from harness.workflows import demo as demo_run
from harness.workflows.handle import StackHandle

ReportFile = Annotated[Path | None, typer.Option(
    "--report", metavar="FILE", dir_okay=False,
    help="Where to write the JSON report (default: demo-report.json in the state directory; "
         "demo-report-<stack>.json for a deployed stack).")]


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
        yes: target.Yes = False,
        scale: int = typer.Option(1, min=1, help="Source data scale (1 = the classicmodels sample's size)."),
        seed: int = typer.Option(42, min=0, help="Source data seed."),
        events: int = typer.Option(demo_run.DEFAULT_EVENTS, min=1,
                                   help="Sessions to stream through Kinesis and Firehose."),
        report_file: ReportFile = None,
    ) -> None:
        """Run the platform end to end on the local stack (deployed first with its Pulumi.<stack>.yaml) or on a deployed
        one, and print a report."""
        console = Console()
        chosen = target.choose(stack, outputs, pulumi_stack, default_stack=target.LOCAL_STACK, console=console)
        state_dir = st.local_dir()
        if chosen.local:
            def connect() -> StackHandle:
                with st.locked(state_dir, "up.lock"):
                    try:
                        bring_up(state_dir, chosen.name)
                    except StackConfigError as err:  # the stage reports it; a bad config is still the user's
                        raise StackError(str(err)) from None
                    except svc.ServiceError as err:
                        raise StackError(str(err)) from None
                return chosen.handle(state_dir)

            artifacts: Path | None = state_dir / "artifacts"  # where the local stack's next deploy uploads them from
            default_report = state_dir / demo_run.REPORT_FILE
        else:
            handle = target.open_handle(chosen, console=console)
            target.confirm_changes(
                handle, f"`harness demo` reseeds the source database, runs the Glue job, trains and replaces the "
                        f"embeddings and streams {events:,} sessions", yes=yes, console=console)

            def connect() -> StackHandle:
                return handle

            artifacts = None
            default_report = state_dir / f"demo-report-{handle.name}.json"
        report = demo_run.run_demo(connect, stack=chosen.name, scale=scale, seed=seed, events=events,
                                   artifacts_dir=artifacts, console=console)
        path = demo_run.write_report(report_file or default_report, report)
        demo_run.print_report(report, path, console, local=chosen.local)
        if not report.ok:
            raise typer.Exit(1)
