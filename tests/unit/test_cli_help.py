"""The command line's help reads right at 80 columns: flags carry no `<bool>` type, literal brackets stay literal."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from harness.cli import app as cli


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    cli._register_commands()
    return CliRunner()


def help_text(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli.app, [*args, "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return result.output


def test_flags_show_no_bool_type_and_valued_options_keep_theirs(runner: CliRunner) -> None:
    top = help_text(runner)
    assert "--install-completion" in top and "<bool>" not in top
    status = help_text(runner, "status")
    assert "--json" in status and "<bool>" not in status
    up = help_text(runner, "up")
    assert "<str>" in up  # --stack takes a value: its type is shown


def test_secret_placeholder_is_printed_literally(runner: CliRunner) -> None:
    assert "instead of [secret]." in help_text(runner, "output")


def test_every_help_line_fits_80_columns(runner: CliRunner) -> None:
    for command in ("", "up", "status", "output", "seed", "etl", "stream", "demo", "soak"):
        text = help_text(runner, *([command] if command else []))
        assert max(map(len, text.splitlines())) <= 80, command
