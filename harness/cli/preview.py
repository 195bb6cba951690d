"""`python -m harness preview`: what `pulumi up` would create, without the Pulumi CLI or an AWS account.

Runs the program under recording mocks with the stack's `Pulumi.<stack>.yaml` and prints the resource tree (type, name)
and the stack outputs; `--json` prints one object for scripts. Secrets print as "[secret]" unless `--show-secrets`.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import pulumi
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from harness.emulator.program import (
    SECRET_PLACEHOLDER,
    ProgramRun,
    RecordedResource,
    contains_secret,
    preview_config_mocks,
    read_stack_config,
    redact,
    reveal,
    run_program,
)


def preview_document(run: ProgramRun, show_secrets: bool) -> dict[str, Any]:
    """The `--json` shape: `{"resources": [{"urn", "type", "name", "parent", "inputs"}], "outputs": {...}}`."""
    show = reveal if show_secrets else redact
    resources = [
        {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "inputs": _jsonable(show(r.inputs))}
        for r in run.resources
    ]
    outputs = {
        name: _jsonable(output.value) if show_secrets or not output.secret else SECRET_PLACEHOLDER
        for name, output in run.outputs.items()
    }
    return {"resources": resources, "outputs": outputs}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        return {"path": str(value.path)}
    return str(value)


def resource_tree(run: ProgramRun, stack: str) -> Tree:
    tree = Tree(Text.assemble(("pulumi:pulumi:Stack", "bold"), f" recsys-{stack}"))
    nodes: dict[str | None, Tree] = {}
    children: dict[str | None, list[RecordedResource]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent, []).append(resource)
    known = {resource.urn for resource in run.resources}

    def add(parent_node: Tree, resource: RecordedResource) -> None:
        style = "bold cyan" if resource.is_component else "green"
        label = Text.assemble((resource.type, style), " ", resource.name)
        if contains_secret(resource.inputs):
            label.append(" (secret inputs)", style="yellow")
        node = parent_node.add(label)
        nodes[resource.urn] = node
        for child in sorted(children.get(resource.urn, []), key=lambda r: (r.type, r.name)):
            add(node, child)

    roots = [r for r in run.resources if r.parent not in known]
    for resource in sorted(roots, key=lambda r: (not r.is_component, r.type, r.name)):
        add(tree, resource)
    return tree


def outputs_table(run: ProgramRun, show_secrets: bool) -> Table:
    table = Table(title="Stack outputs", show_lines=False)
    table.add_column("output", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, output in sorted(run.outputs.items()):
        value = SECRET_PLACEHOLDER if output.secret and not show_secrets else str(output.value)
        # Text, not markup: values such as "[secret]" or ARNs with ":secret:" must print as they are.
        table.add_row(Text(name), Text(value, style="yellow" if output.secret else ""))
    return table


def preview(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack whose Pulumi.<stack>.yaml to use.")] = "dev",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the tree.")] = False,
    show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print secret values.")] = False,
) -> None:
    """Show the resources and outputs `pulumi up` would create for a stack (Pulumi mocks; no CLI, no AWS)."""
    err = Console(stderr=True)
    try:
        config = read_stack_config(stack)
        if as_json:
            run = run_program(stack, config, preview_config_mocks(config))
        else:
            with err.status(f"running the program for stack {stack} under mocks ..."):
                run = run_program(stack, config, preview_config_mocks(config))
    except pulumi.RunError as error:
        err.print(Text.assemble(("error: ", "bold red"), str(error)))
        raise typer.Exit(code=1) from None

    if as_json:
        json.dump(preview_document(run, show_secrets), sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
        return
    for warning in run.warnings:
        err.print(Text.assemble(("warning: ", "yellow"), warning))
    console = Console()
    console.print(resource_tree(run, stack))
    console.print(outputs_table(run, show_secrets))
    components = sum(1 for r in run.resources if r.is_component)
    console.print(f"[bold]{len(run.resources) - components}[/] resources in [bold]{components}[/] components "
                  f"for stack [bold]{stack}[/]; {len(run.outputs)} outputs "
                  f"({sum(o.secret for o in run.outputs.values())} secret).")


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)
