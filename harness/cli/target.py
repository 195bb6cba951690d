"""Which stack a command works on: the one place the CLI turns its options into a `StackHandle`.

Every command that reads a stack declares the same three options (`StackName`, `OutputsFile`, `PulumiStack`) and, when
it costs money or changes data, `Yes`; `resolve_target` checks them before any work starts and `Target.handle()` builds
the handle:

- nothing, or `--stack NAME`: the local stack in the state directory (`.local/` or `$RECSYS_LOCAL_DIR`): its outputs
  from the recorded state, the emulator's endpoints and credentials (`harness.emulator.endpoints`);
- `--outputs FILE`: a stack deployed anywhere, described by `pulumi stack output --json --show-secrets`'s JSON; AWS
  endpoints, region and credentials from the user's environment, as the aws CLI reads them;
- `--pulumi-stack NAME`: the same, with the JSON read by running the user's Pulumi CLI.

`confirm_changes` asks before a command changes data or costs money on a real account (a handle that is not emulated),
unless `--yes`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape

from harness.emulator import endpoints
from harness.emulator import state as st
from harness.workflows.handle import AwsEndpoints, HandleError, StackHandle

LOCAL_STACK = "local"
PULUMI_TIMEOUT_S = 120

StackName = Annotated[str | None, typer.Option(
    "--stack", metavar="NAME", help="The local stack (default: the one `harness up` deployed, `local`).")]
OutputsFile = Annotated[Path | None, typer.Option(
    "--outputs", metavar="FILE", dir_okay=False,
    help="A deployed stack's `pulumi stack output --json --show-secrets` JSON; AWS endpoints, region and credentials "
         "come from your environment, as for the aws CLI.")]
PulumiStack = Annotated[str | None, typer.Option(
    "--pulumi-stack", metavar="NAME",
    help="A deployed stack: its outputs read with `pulumi stack output --json --show-secrets --stack NAME`.")]
Yes = Annotated[bool, typer.Option(
    "--yes", "-y", help="On a real AWS account, do what costs money or changes data without asking.")]

Kind = Literal["local", "outputs", "pulumi"]


class TargetError(RuntimeError):
    """The stack cannot be reached as asked. `exit_code` 2 for a usage mistake (options, a missing file or CLI), 1 for
    a failure (the local stack is not up, `pulumi` failed)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Target:
    """The stack the options name, checked but not read yet."""

    kind: Kind
    name: str
    outputs_file: Path | None = None

    @property
    def local(self) -> bool:
        return self.kind == "local"

    def handle(self, state_dir: Path | None = None) -> StackHandle:
        """The handle; reads the local state, the outputs file, or runs `pulumi stack output`."""
        if self.kind == "local":
            return local_handle(state_dir or st.local_dir(), self.name)
        if self.kind == "outputs":
            assert self.outputs_file is not None
            try:
                return StackHandle.from_outputs_file(self.outputs_file, name=self.name)
            except HandleError as err:
                raise TargetError(str(err)) from None
        return StackHandle(name=self.name, outputs=pulumi_outputs(self.name), aws=AwsEndpoints.from_environment())


def resolve_target(stack: str | None = None, outputs: Path | None = None, pulumi_stack: str | None = None, *,
                   default_stack: str | None = None) -> Target:
    """The options checked: at most one of them, a readable file, the Pulumi CLI on PATH (pure but for those looks)."""
    given = [flag for flag, value in (("--stack", stack), ("--outputs", outputs), ("--pulumi-stack", pulumi_stack))
             if value is not None]
    if len(given) > 1:
        raise TargetError(f"{' and '.join(given)} name different stacks: give one of --stack (the local stack), "
                          "--outputs FILE or --pulumi-stack NAME (a deployed stack)")
    for flag, value in (("--stack", stack), ("--pulumi-stack", pulumi_stack)):
        if value is not None and not value.strip():
            raise TargetError(f"{flag} needs a stack name, got an empty one")
    if outputs is not None:
        if not outputs.is_file():
            raise TargetError(f"--outputs {outputs}: no such file; write it with `pulumi stack output --json "
                              f"--show-secrets > {outputs}`")
        return Target("outputs", outputs.stem, outputs)
    if pulumi_stack is not None:
        if shutil.which("pulumi") is None:
            raise TargetError("--pulumi-stack needs the Pulumi CLI and `pulumi` is not on PATH: install it "
                              "(https://www.pulumi.com/docs/install/) or pass --outputs FILE")
        return Target("pulumi", pulumi_stack)
    return Target("local", stack or default_stack or "")


def local_handle(state_dir: Path, name: str = "") -> StackHandle:
    """The local stack's handle: its recorded outputs and the emulator's endpoint configuration."""
    state = st.load_state(state_dir)
    recorded = str(state.get("stack") or LOCAL_STACK)
    if not state.get("services"):
        raise TargetError(f"the local stack is not up (nothing runs in {state_dir}): run `harness up` first, or name "
                          "a deployed stack with --outputs FILE or --pulumi-stack NAME", exit_code=1)
    if name and name != recorded:
        raise TargetError(f"--stack {name}: the local stack in {state_dir} is {recorded!r}; run `harness down` and "
                          f"`harness up --stack {name}`, or use another RECSYS_LOCAL_DIR", exit_code=1)
    environment = endpoints.aws_environment(state_dir, state)
    return StackHandle(name=recorded, outputs=endpoints.stack_outputs(state),
                       aws=AwsEndpoints.from_environment(environment))


def pulumi_outputs(stack: str) -> dict[str, Any]:
    """`pulumi stack output --json --show-secrets --stack NAME`, run with the user's Pulumi CLI and login."""
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise TargetError("--pulumi-stack needs the Pulumi CLI and `pulumi` is not on PATH: install it "
                          "(https://www.pulumi.com/docs/install/) or pass --outputs FILE") from None
    except subprocess.TimeoutExpired:
        raise TargetError(f"`{' '.join(command)}` did not answer in {PULUMI_TIMEOUT_S} s", exit_code=1) from None
    if done.returncode != 0:
        why = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        raise TargetError(f"`{' '.join(command)}` failed: {why}", exit_code=1)
    try:
        outputs = json.loads(done.stdout)
    except ValueError:
        raise TargetError(f"`{' '.join(command)}` printed something other than JSON", exit_code=1) from None
    if not isinstance(outputs, dict):
        raise TargetError(f"`{' '.join(command)}` printed a JSON {type(outputs).__name__}, not the stack's outputs",
                          exit_code=1)
    return outputs


def choose(stack: str | None, outputs: Path | None, pulumi_stack: str | None, *, default_stack: str | None = None,
           console: Console | None = None) -> Target:
    """For a command, before any work: the options checked, or one line on stderr and exit 2."""
    try:
        return resolve_target(stack, outputs, pulumi_stack, default_stack=default_stack)
    except TargetError as err:
        raise fail(err, console) from None


def open_handle(chosen: Target, *, console: Console | None = None) -> StackHandle:
    """For a command: the chosen stack's handle, or one line and exit 2 (a usage mistake) or 1 (a failure)."""
    try:
        return chosen.handle()
    except (TargetError, st.StateError) as err:
        raise fail(err, console) from None


def open_stack(stack: str | None, outputs: Path | None, pulumi_stack: str | None, *,
               console: Console | None = None) -> StackHandle:
    """`choose` then `open_handle`: what most commands need."""
    return open_handle(choose(stack, outputs, pulumi_stack, console=console), console=console)


def fail(err: Exception, console: Console | None = None) -> typer.Exit:
    """One line (never wrapped, never read as markup) and the error's exit code."""
    (console or Console(stderr=True)).print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
    return typer.Exit(getattr(err, "exit_code", 1))


def describe_account(handle: StackHandle) -> str:
    """`account 123456789012 (eu-west-1)` from STS, or just the region when STS cannot say."""
    try:
        account = handle.client("sts").get_caller_identity()["Account"]
    except Exception:  # noqa: BLE001 (only a nicer prompt depends on it; the command's own calls report failures)
        return f"region {handle.aws.region}"
    return f"account {account} ({handle.aws.region})"


def confirm_changes(handle: StackHandle, what: str, *, yes: bool, console: Console | None = None) -> None:
    """On a real account, ask before `what` (a phrase such as "`harness stream produce` sends 100 sessions"), which
    costs money or changes data, unless `--yes`; nothing to ask on the emulator. Without a terminal to ask on, stop with
    exit 2 and say to pass --yes; a "no" exits 1."""
    if yes or handle.emulated:
        return
    where = f"stack {handle.name} on AWS {describe_account(handle)}"
    if not sys.stdin.isatty():
        raise fail(TargetError(f"{what} on {where} costs money or changes data: pass --yes to go ahead (there is no "
                               "terminal to ask on)"), console)
    if not typer.confirm(f"{what} on {where}: this costs money or changes data. Go ahead?", default=False):
        raise typer.Exit(1)
