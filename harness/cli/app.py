"""`harness` (or `python -m harness`): the command line. Each command group lives in `harness/cli/<name>.py` and
defines `register(app)`; the CLI holds no logic the workflows need."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperOption

from harness.cli import bench, demo, etl, invoke, preview, redrive, seed, soak, stack, stream, train

# Order is the order of `--help`: lifecycle first, then the platform's stages, then measurements.
COMMAND_GROUPS = (preview, stack, seed, etl, train, stream, redrive, invoke, demo, soak, bench)

_option_type = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx: Any) -> str | None:
    # Typer prints every option's type, `<bool>` after each on/off flag, which tells a reader nothing: flags show none.
    return None if self.is_flag else _option_type(self, ctx)


TyperOption.display_type_rich = _flag_without_type  # type: ignore[method-assign]

app = typer.Typer(
    help="Run the recommender platform locally: the same Pulumi program, Glue script and Lambda code, no AWS account.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for group in COMMAND_GROUPS:
        group.register(app)


def main() -> None:
    _register_commands()
    app()
