"""`harness soak --minutes M --rate R/s [--faults]`: steady load through a stack, then reconciliation.

The local stack by default; `--outputs FILE`/`--pulumi-stack NAME` soak a stack deployed with `pulumi up` (asking first,
unless `--yes`: it costs money). Faults are the emulator's (`harness.emulator.faults`), so `--fault`/`--faults` need
the local stack.

Exit status: 0 when every session sent is in exactly one delivered or error-output record (and, with --faults, every
planned fault was injected); 1 on any loss, duplicate or fault that could not be injected, or when the soak could not
run (stack not up or not ready), with a message saying what to do; 2 for a usage mistake (a bad option).
"""

from __future__ import annotations

import json
import math
import random
import signal
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.cli import target
from harness.emulator import state as st
from harness.emulator.faults import FaultError, LocalFaultInjector
from harness.workflows import soak as soaking

FAULT_HELP = f"Only this fault kind (repeatable): {', '.join(soaking.FAULT_KINDS)}. Implies --faults."


def _progress_line(p: soaking.SoakProgress, total: int) -> Text:
    line = Text(f"{p.phase}: {p.elapsed_s:6.1f} s, sent {p.sent:,}/{total:,}")
    if p.phase in ("draining", "settling"):
        line.append(f", found {p.found:,}/{p.sent:,} in the bucket")
    if p.fault:
        line.append(f"  [fault: {p.fault}]", style="bold red")
    return line


def print_report(report: soaking.SoakReport, console: Console) -> None:
    r = report.reconciliation
    table = Table(title=f"reconciliation by session_id ({report.minutes:g} min at {report.rate:g}/s"
                        f"{', with faults' if report.faults_enabled else ''})", title_justify="left")
    table.add_column("")
    table.add_column("sessions", justify="right")
    for label, value in (("sent (accepted by Kinesis)", r["sent"]), ("delivered exactly once", r["delivered"]),
                         ("  of which redriven from the error output", r.get("redriven", 0)),
                         ("in the error output (not delivered)", r["failed"]), ("missing (lost)", r["missing"]),
                         ("duplicated", r["duplicated"]), ("delivered without recommendations",
                                                           r["without_recommendations"]),
                         ("unreadable records", r["unreadable"]), ("refused by Kinesis", report.refused_by_kinesis),
                         ("other producers' records (ignored)", r["foreign"])):
        bad = label.startswith(("missing", "duplicated", "delivered without", "unreadable", "refused")) and value
        table.add_row(label, f"[red]{value:,}[/red]" if bad else f"{value:,}")
    console.print(table)
    if report.faults:
        faults = Table(title="faults", title_justify="left")
        for column in ("at s", "fault", "took s", "injected", "what happened"):
            faults.add_column(column)
        for fault in report.faults:
            faults.add_row(f"{fault['started_at_s'] if fault['started_at_s'] is not None else fault['planned_at_s']}",
                           fault["kind"], f"{fault['duration_s']:.1f}",
                           "[green]yes[/green]" if fault["injected"] else "[red]no[/red]", escape(fault["detail"]))
        console.print(faults)
    if report.redrive is not None:
        rd = report.redrive
        console.print(f"redrive: {rd.get('chosen', 0):,} record(s) chosen from {rd.get('error_objects', 0):,} error "
                      f"object(s), {rd.get('sent', 0):,} sent back into the stream, {rd.get('already_delivered', 0):,}"
                      f" already delivered, {rd.get('poison', 0):,} poison")
    if report.stranded_after_redrive:
        console.print(f"[red]x {report.stranded_after_redrive:,} session(s) are still only in the error output after "
                      "the redrive[/red]")
    if report.at_least_once_duplicates:
        console.print(f"[yellow]{report.at_least_once_duplicates:,} session(s) delivered twice after a kill: "
                      "Firehose's at-least-once contract allows it (written, not yet checkpointed)[/yellow]")
    console.print(f"produced for {report.production_s:.1f} s at {report.achieved_rate:g}/s (asked {report.rate:g}/s); "
                  f"drained in {report.drain_s:.1f} s; objects: {report.objects['delivered']} delivered, "
                  f"{report.objects['error']} error output")
    for problem in r["problems"]:
        console.print(f"[red]x {escape(problem)}[/red]")
    if report.drain_timed_out and r["missing"]:
        console.print(f"[yellow]the drain timed out after {report.drain_s:.0f} s: the missing sessions may be a "
                      f"backlog still on its way rather than lost (runner: {escape(str(report.runner))}); lower "
                      "--rate or raise --drain-timeout to tell them apart[/yellow]")
    if report.fault_errors:
        console.print(f"[red]x {escape(report.fault_errors)}[/red]")
    console.print("[bold green]PASS[/bold green]: nothing lost, nothing duplicated" if report.ok else
                  "[bold red]FAIL[/bold red]")


def fail(message: str, console: Console, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def register(app: typer.Typer) -> None:
    @app.command()
    def soak(
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
        yes: target.Yes = False,
        minutes: float = typer.Option(5.0, help="How long to produce, in minutes (0.5 = 30 s)."),
        rate: str = typer.Option("20/s", help="Steady rate in events per second, e.g. 20/s."),
        faults: bool = typer.Option(False, "--faults", help="Inject faults at random moments (every kind unless "
                                                            "--fault narrows them), then redrive the error output."),
        fault: Annotated[list[str] | None, typer.Option("--fault", metavar="KIND", help=FAULT_HELP)] = None,
        outage_seconds: float = typer.Option(soaking.DEFAULT_OUTAGE_S, "--outage-seconds",
                                             help="How long db_outage keeps the vector database down (longer than "
                                                  "the processor's retries, so records fail and are redriven)."),
        seed: int = typer.Option(None, help="Seed for the sessions and the fault moments (default: random)."),
        prepare: bool = typer.Option(False, "--prepare", help="Seed, run the ETL, train and load embeddings first "
                                                              "when the stack lacks them."),
        drain_timeout: float = typer.Option(soaking.DEFAULT_DRAIN_TIMEOUT_S,
                                            help="Seconds to wait after producing for every session to show up."),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    ) -> None:
        """Drive a stack at a steady rate, optionally with faults (local stack only); reconcile every session sent."""
        console = Console(stderr=True)
        state_dir = st.local_dir()
        try:
            minutes_value = soaking.parse_minutes(minutes)
            rate_value = soaking.parse_soak_rate(rate)
            kinds = soaking.parse_fault_kinds(fault or [])
            outage_s = soaking.parse_outage_seconds(outage_seconds)
            if not math.isfinite(drain_timeout) or drain_timeout <= 0:
                raise soaking.SoakError(f"--drain-timeout must be more than 0 seconds, got {drain_timeout:g}")
            faults = faults or bool(fault)
            if faults:  # a run too short for its faults is refused now, not after preparing the stack
                soaking.plan_faults(minutes_value * 60, random.Random(0), kinds=kinds, outage_s=outage_s)
        except soaking.SoakError as err:
            raise fail(str(err), console, 2) from None
        chosen = target.choose(stack, outputs, pulumi_stack, console=console)
        if faults and not chosen.local:
            raise fail("--fault/--faults need the local stack (faults are injected into the emulator's processes): "
                       "soak a deployed stack without them", console, 2)
        handle = target.open_handle(chosen, console=console)
        injector: LocalFaultInjector | None = None
        if faults:
            try:
                injector = LocalFaultInjector.for_stack(state_dir, handle.outputs)
                handle = injector.handle_beside_faults(handle)
            except (FaultError, st.StateError) as err:
                raise fail(str(err), console, 1) from None
        total = max(1, math.ceil(minutes_value * 60 * rate_value))
        target.confirm_changes(handle, f"`harness soak` sends {total:,} sessions through the stream over "
                                       f"{minutes_value:g} min" + (" (seeding, training and loading first when "
                                                                   "needed)" if prepare else ""),
                               yes=yes, console=console)
        report_path = state_dir / (soaking.REPORT_FILE if chosen.local else f"soak-report-{handle.name}.json")

        def interrupted(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt  # unwinds through run_soak's finally: faults are undone before we exit

        signal.signal(signal.SIGTERM, interrupted)
        try:
            with Live(Text("starting"), console=console, refresh_per_second=4, transient=True) as live:
                report = soaking.run_soak(
                    handle, minutes=minutes_value, rate=rate_value, faults=faults, seed=seed, prepare=prepare,
                    kinds=kinds, outage_s=outage_s, injector=injector,
                    # where the local stack's next deploy uploads the trained artifacts from (as `harness demo`)
                    artifacts_dir=state_dir / "artifacts" if chosen.local else None,
                    drain_timeout_s=drain_timeout, progress=lambda p: live.update(_progress_line(p, total)),
                    say=lambda text: console.print(escape(text)))
        except soaking.SoakError as err:
            raise fail(str(err), console, 1) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: faults undone, no reconciliation[/yellow]")
            raise typer.Exit(130) from None
        soaking.write_report(report_path, report)
        print_report(report, Console(stderr=as_json))
        console.print(f"report written to {report_path}", soft_wrap=True)
        if as_json:
            print(json.dumps(report.as_dict(), indent=2, default=str))
        if not report.ok:
            raise typer.Exit(1)
