"""`harness.cli.target`: the options that name a stack, checked before any work, and the handle each gives; the
confirmation a real account gets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from harness.cli import target
from harness.emulator import endpoints, services
from harness.emulator import state as st
from harness.workflows.handle import AwsEndpoints, StackHandle

OUTPUTS = {"kinesis_stream_name": "p-dev-sessions", "vector_db_master_password": "s3cret", "vector_db_port": 5432}


def command_app() -> typer.Typer:
    """A command declaring the shared options, printing which stack they name."""
    app = typer.Typer()

    @app.command()
    def show(stack: target.StackName = None, outputs: target.OutputsFile = None,
             pulumi_stack: target.PulumiStack = None, yes: target.Yes = False) -> None:
        handle = target.open_stack(stack, outputs, pulumi_stack)
        target.confirm_changes(handle, "`show` changes things", yes=yes)
        print(json.dumps({"name": handle.name, "outputs": dict(handle.outputs), "emulated": handle.emulated,
                          "region": handle.aws.region}))

    @app.command()
    def other() -> None:  # a second command, so Typer keeps `show` as a subcommand
        raise AssertionError("never called")

    return app


def run(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> Any:
    return CliRunner().invoke(command_app(), ["show", *args], env=env, input=stdin)


@pytest.fixture
def outputs_file(tmp_path: Path) -> Path:
    path = tmp_path / "dev-alice.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` on PATH that prints the outputs for stack dev-alice and fails for any other, like the real one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text("#!/bin/sh\n"
                      'if [ "$*" = "stack output --json --show-secrets --stack dev-alice" ]; then\n'
                      f"  echo '{json.dumps(OUTPUTS)}'\n"
                      "else\n  echo \"error: no stack named '$6' found\" >&2; exit 255\nfi\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return script


def test_two_stack_options_are_a_usage_error_in_one_line(outputs_file: Path) -> None:
    result = run(["--stack", "local", "--outputs", str(outputs_file)])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --stack and --outputs name different stacks: give one of --stack (the "
                                     "local stack), --outputs FILE or --pulumi-stack NAME (a deployed stack)")


def test_a_missing_outputs_file_is_a_usage_error_that_says_how_to_write_it(tmp_path: Path) -> None:
    result = run(["--outputs", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: --outputs {tmp_path / 'nope.json'}: no such file; write it with "
                                     f"`pulumi stack output --json --show-secrets > {tmp_path / 'nope.json'}`")


def test_an_outputs_file_gives_its_outputs_and_the_users_aws_configuration(outputs_file: Path) -> None:
    result = run(["--outputs", str(outputs_file), "--yes"], env={"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": ""})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"name": "dev-alice", "outputs": OUTPUTS, "emulated": False,
                                         "region": "eu-west-1"}


def test_an_outputs_file_that_is_not_an_object_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    result = run(["--outputs", str(path)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "holds a JSON list" in result.output


def test_pulumi_stack_without_the_pulumi_cli_is_a_usage_error(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    result = run(["--pulumi-stack", "dev-alice"])
    assert result.exit_code == 2
    assert result.output.strip() == ("error: --pulumi-stack needs the Pulumi CLI and `pulumi` is not on PATH: "
                                     "install it (https://www.pulumi.com/docs/install/) or pass --outputs FILE")


def test_pulumi_stack_reads_the_outputs_with_the_users_pulumi_cli(fake_pulumi: Path) -> None:
    result = run(["--pulumi-stack", "dev-alice", "-y"], env={"AWS_DEFAULT_REGION": "ap-south-1", "AWS_REGION": "",
                                                       "AWS_ENDPOINT_URL": ""})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"name": "dev-alice", "outputs": OUTPUTS, "emulated": False,
                                         "region": "ap-south-1"}


def test_a_failing_pulumi_is_a_failure_with_its_own_message(fake_pulumi: Path) -> None:
    result = run(["--pulumi-stack", "dev-bob"])
    assert result.exit_code == 1
    assert result.output.strip() == ("error: `pulumi stack output --json --show-secrets --stack dev-bob` failed: "
                                     "error: no stack named 'dev-bob' found")


def local_state(state_dir: Path, stack: str = "local") -> None:
    running = services.RunningServices(
        moto=services.MotoService("127.0.0.1", 45123, 1, ""),
        postgres=services.PostgresService("127.0.0.1", 45124, "u", "p", "postgres", 1, "", ""),
        mariadb=services.MariaDBService("127.0.0.1", 45125, "u", "p", 1, "", "", ""))
    st.save_state(state_dir, {
        "stack": stack, "region": "eu-central-1", "services": running.to_dict(),
        "daemon": {"endpoint_url": "http://127.0.0.1:45999"},
        "outputs": {"kinesis_stream_name": {"value": "de-c1w4-local-sessions", "secret": False},
                    "vector_db_master_password": {"value": "pw", "secret": True}},
    })


def test_the_local_stack_is_the_default_with_the_emulators_endpoints(tmp_path: Path) -> None:
    local_state(tmp_path)
    handle = target.resolve_target().handle(tmp_path)
    assert (handle.name, dict(handle.outputs)) == ("local", {"kinesis_stream_name": "de-c1w4-local-sessions",
                                                             "vector_db_master_password": "pw"})
    # The emulator's endpoint configuration, whatever it is (`aws_environment` decides), read as boto3 reads it.
    assert handle.aws == AwsEndpoints.from_environment(endpoints.aws_environment(tmp_path))
    assert handle.emulated and handle.aws.region == "eu-central-1" and handle.aws.credentials == ("testing", "testing")
    assert handle.aws.url_for("lambda") in ("http://127.0.0.1:45999", "http://127.0.0.1:45123")


def test_stack_names_the_local_stack_and_another_name_says_what_is_up(tmp_path: Path) -> None:
    local_state(tmp_path, stack="local")
    assert target.resolve_target(stack="local").handle(tmp_path).name == "local"
    with pytest.raises(target.TargetError, match="the local stack in .* is 'local'") as raised:
        target.resolve_target(stack="dev").handle(tmp_path)
    assert raised.value.exit_code == 1


def test_no_local_stack_is_a_failure_that_says_how_to_get_one(tmp_path: Path) -> None:
    result = run([], env={st.ENV_VAR: str(tmp_path)})
    assert result.exit_code == 1
    assert result.output.strip() == (f"error: the local stack is not up (nothing runs in {tmp_path}): run `harness "
                                     "up` first, or name a deployed stack with --outputs FILE or --pulumi-stack NAME")


# ---- asking before changing a real account -------------------------------------------------------------------------

def real() -> StackHandle:
    return StackHandle(name="dev-alice", outputs={}, aws=AwsEndpoints(region="eu-west-1"))


def emulated() -> StackHandle:
    return StackHandle(name="local", outputs={}, aws=AwsEndpoints(default_url="http://127.0.0.1:1"))


@pytest.fixture
def no_sts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target, "describe_account", lambda handle: "account 123456789012 (eu-west-1)")


def test_nothing_is_asked_on_the_emulator_or_with_yes(no_sts: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(typer, "confirm", lambda *a, **k: pytest.fail("asked"))
    target.confirm_changes(emulated(), "x", yes=False)
    target.confirm_changes(real(), "x", yes=True)


def test_a_real_account_without_a_terminal_needs_yes(no_sts: None, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(typer.Exit) as stopped:
        target.confirm_changes(real(), "`harness demo` streams 50 sessions", yes=False)
    assert stopped.value.exit_code == 2
    assert capsys.readouterr().err.strip() == (
        "error: `harness demo` streams 50 sessions on stack dev-alice on AWS account 123456789012 (eu-west-1) costs "
        "money or changes data: pass --yes to go ahead (there is no terminal to ask on)")


@pytest.mark.parametrize("answer,goes_ahead", [(True, True), (False, False)])
def test_a_real_account_asks_and_a_no_stops(no_sts: None, monkeypatch: pytest.MonkeyPatch, answer: bool,
                                            goes_ahead: bool) -> None:
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(typer, "confirm", lambda text, default: asked.append(text) or answer)
    if goes_ahead:
        target.confirm_changes(real(), "`harness demo` streams 50 sessions", yes=False)
    else:
        with pytest.raises(typer.Exit) as stopped:
            target.confirm_changes(real(), "`harness demo` streams 50 sessions", yes=False)
        assert stopped.value.exit_code == 1
    assert asked == ["`harness demo` streams 50 sessions on stack dev-alice on AWS account 123456789012 "
                     "(eu-west-1): this costs money or changes data. Go ahead?"]
