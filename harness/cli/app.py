"""`python -m harness`: the local stack's command line. Each command group lives in `harness/cli/<name>.py`."""

from __future__ import annotations

import importlib
import importlib.util

import typer

# Order is the order of `--help`: lifecycle first, then the platform's stages, then measurements.
COMMAND_MODULES = ("preview", "stack", "seed", "etl", "train", "stream", "redrive", "demo", "soak", "bench")

app = typer.Typer(
    help="Run the recommender platform locally: the same Pulumi program, Glue script and Lambda code, no AWS account.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module_name = f"harness.cli.{name}"
        # A command group that has not landed yet is absent; an import error inside one that exists is not hidden.
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(app)


def main() -> None:
    _register_commands()
    app()
