"""`harness invoke`: call a stack's function (as `aws lambda invoke`) or its Function URL signed with SigV4 (as
awscurl)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from harness.cli import target
from harness.workflows.handle import HandleError
from harness.workflows.invoke import HTTP_METHODS, InvokeError, call_function_url, invoke_function


class InvokeUsageError(ValueError):
    exit_code = 2


def read_payload(data: str | None) -> bytes:
    """`--data`: inline text, `@FILE`, or `@-` for stdin; empty when absent."""
    if data is None:
        return b""
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        path = Path(data[1:])
        try:
            return path.read_bytes()
        except OSError as err:
            raise InvokeUsageError(f"cannot read --data file {path}: {err.strerror or err}") from None
    return data.encode("utf-8")


def register(app: typer.Typer) -> None:
    @app.command()
    def invoke(
        function: str | None = typer.Argument(
            None, help="A function: an output's short name (inference, redrive, embeddings_loader, ...), an output "
                       "name or a function name. Omit it with --url."),
        url: str | None = typer.Option(
            None, "--url", help="Call the inference Function URL at this path (e.g. "
                                "'/items_from_item?item_id=S10_1678') or full URL, signed with SigV4."),
        data: str | None = typer.Option(None, "--data", "-d", help="Payload or body: text, @FILE, or @- for stdin."),
        method: str | None = typer.Option(None, "--method", "-X", help="HTTP method for --url (GET, or POST with "
                                                                       "--data)."),
        log: bool = typer.Option(False, "--log", help="Print the function's log tail (LogType=Tail) to stderr."),
        stack: target.StackName = None,
        outputs: target.OutputsFile = None,
        pulumi_stack: target.PulumiStack = None,
        yes: target.Yes = False,
    ) -> None:
        """Call a stack's function or its Function URL and print the answer (exit 1 when it failed)."""
        console = Console(stderr=True)
        try:
            if (function is None) == (url is None):
                raise InvokeUsageError("give either a FUNCTION to invoke or --url PATH to call the Function URL")
            chosen = (method or ("POST" if data is not None else "GET")).upper()
            if url is not None and chosen not in HTTP_METHODS:
                raise InvokeUsageError(f"unknown --method {chosen!r}: use one of {', '.join(HTTP_METHODS)}")
            if url is None and (method is not None):
                raise InvokeUsageError("--method applies to --url only")
            payload = read_payload(data)
            if url is None and payload:
                try:
                    json.loads(payload)
                except ValueError:
                    raise InvokeUsageError("--data for a function must be JSON (Lambda events are JSON)") from None
        except InvokeUsageError as err:
            raise target.fail(err, console) from None
        handle = target.open_stack(stack, outputs, pulumi_stack, console=console)
        target.confirm_changes(handle, "`harness invoke` runs the stack's code, which may change data", yes=yes,
                               console=console)
        try:
            if url is not None:
                answer = call_function_url(handle, url, method=chosen, body=payload)
                sys.stdout.buffer.write(answer.body + (b"" if answer.body.endswith(b"\n") else b"\n"))
                if answer.status >= 400:
                    console.print(f"HTTP {answer.status}")
                    raise typer.Exit(1)
                return
            result = invoke_function(handle, str(function), payload or b"{}", log_tail=log)
        except (InvokeError, HandleError) as err:
            raise target.fail(err, console) from None
        if log and result.log_tail:
            console.print(result.log_tail, markup=False, highlight=False)
        sys.stdout.buffer.write(result.payload + (b"" if result.payload.endswith(b"\n") else b"\n"))
        if result.function_error:
            console.print(f"the function failed ({result.function_error})")
            raise typer.Exit(1)
