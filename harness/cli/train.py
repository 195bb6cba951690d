"""`harness train`: the reference trainer (see harness/workflows/train.py) with progress and a summary; it publishes to
the artifacts bucket of the stack the options name (the local one by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.cli import target
from harness.emulator import state as st
from harness.workflows import train as trainer

console = Console()


def train_command(
    input_path: Annotated[Path | None, typer.Option("--input", help="ETL output (Parquet dir); default: the stack's "
                                                    "data lake s3://<datalake>/ratings-ml-training/")] = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir", help="where to write the artifacts; default "
                                                    "<state dir>/artifacts for the local stack")] = None,
    publish: Annotated[bool, typer.Option(help="also upload to the stack's artifacts bucket")] = True,
    seed: Annotated[int, typer.Option(help="seed for the split, the initial weights and the batches")] = 42,
    epochs: Annotated[int, typer.Option(min=1, help="maximum epochs (early stopping on a validation split)")] = 60,
    stack: target.StackName = None,
    outputs: target.OutputsFile = None,
    pulumi_stack: target.PulumiStack = None,
    yes: target.Yes = False,
) -> None:
    """Train the two-tower model on the ETL output and publish the embeddings, the lab's artifacts and the serving
    bundle."""
    config = trainer.TrainConfig(seed=seed, epochs=epochs)
    handle = None
    if publish:
        chosen = target.choose(stack, outputs, pulumi_stack, console=console)
        handle = target.open_handle(chosen, console=console)
        target.confirm_changes(handle, "`harness train` replaces the artifacts bucket's embeddings and serving bundle",
                               yes=yes, console=console)
        if output_dir is None and chosen.local:
            output_dir = st.local_dir() / "artifacts"  # where the local stack's next deploy uploads them from
    elif input_path is None:
        raise target.fail(target.TargetError("--no-publish needs --input (the ETL output directory): without it the "
                                             "trainer reads the stack's data lake"), console)
    with Progress(TextColumn("[bold]training[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("", total=epochs)

        def on_epoch(epoch: int, train_rmse: float, val_rmse: float) -> None:
            progress.update(task, completed=epoch, description=f"train RMSE {train_rmse:.3f}  val RMSE {val_rmse:.3f}")

        try:
            if handle is not None:
                summary = trainer.train_and_publish(handle, config=config, input_path=input_path,
                                                    output_dir=output_dir, on_epoch=on_epoch)
            else:
                assert input_path is not None
                summary = trainer.train(input_path, output_dir or st.local_dir() / "artifacts", config,
                                        on_epoch=on_epoch).as_dict()
        except trainer.TrainingDataError as exc:
            progress.stop()
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None

    table = Table(title="Two-tower model", show_header=False)
    table.add_row("rows (train / test)", f"{summary['rows']} ({summary['train_rows']} / {summary['test_rows']})")
    table.add_row("users / items", f"{summary['users']} / {summary['items']}  ({summary['dim']}-d embeddings)")
    table.add_row("best epoch", str(summary["best_epoch"]))
    verdict = "[green]better[/]" if summary["test_rmse"] < summary["baseline_rmse"] else "[yellow]not better[/]"
    table.add_row("held-out RMSE", f"{summary['test_rmse']:.4f}  vs mean baseline {summary['baseline_rmse']:.4f}  "
                                   f"{verdict}")
    table.add_row("artifacts", summary["artifacts_dir"] or "(published only)")
    table.add_row("published to", summary["published_to"] or "(not published)")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
