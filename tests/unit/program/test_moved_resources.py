"""A refactor keeps existing stacks' resources: each one the engine knows is matched by today's program, by its URN or
through an alias, so `pulumi up` moves it instead of deleting it and creating it again (docs/program.md, "Moving
resources between components").

URNs here are the engine's: a child's type carries its whole chain of parents (`A$B$aws:...`). Pulumi's mock monitor
keeps only the nearest parent's type, so the engine's URNs are rebuilt from the recorded tree; aliases are resolved
as the engine resolves them, a parent's aliases carried over to its children.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from harness.emulator.program import ProgramRun, RecordedAlias, RecordedResource
from tests.unit.program.conftest import OPTIONAL_FEATURES, ProgramRunner

PREVIOUS_URNS = Path(__file__).with_name("previous_urns.txt")


def previous_urns() -> list[str]:
    return [line for line in PREVIOUS_URNS.read_text().splitlines() if line and not line.startswith("#")]


def parent_of(run: ProgramRun, resource: RecordedResource) -> RecordedResource | None:
    # The stack itself is not recorded: a top-level resource has no recorded parent.
    return next((r for r in run.resources if r.urn == resource.parent), None)


def engine_type(run: ProgramRun, resource: RecordedResource) -> str:
    parent = parent_of(run, resource)
    return f"{engine_type(run, parent)}${resource.type}" if parent is not None else resource.type


def urn(run: ProgramRun, qualified_type: str, name: str) -> str:
    return f"urn:pulumi:{run.stack}::{run.project}::{qualified_type}::{name}"


def engine_urn(run: ProgramRun, resource: RecordedResource) -> str:
    return urn(run, engine_type(run, resource), resource.name)


def declared_alias_urn(run: ProgramRun, resource: RecordedResource, alias: RecordedAlias) -> str:
    if alias.urn:
        return alias.urn
    if alias.no_parent:
        prefix = ""
    elif alias.parent:
        prefix = engine_type(run, run.by_urn(alias.parent)) + "$"
    else:
        parent = parent_of(run, resource)
        prefix = engine_type(run, parent) + "$" if parent is not None else ""
    return urn(run, prefix + (alias.type or resource.type), alias.name or resource.name)


def alias_urns(run: ProgramRun, resource: RecordedResource) -> set[str]:
    """The URNs the engine also matches the resource by: its own aliases, and one per alias of its parent (a child
    named after its parent takes the parent's former name, as the engine does)."""
    urns = {declared_alias_urn(run, resource, alias) for alias in resource.aliases}
    parent = parent_of(run, resource)
    if parent is not None:
        for parent_alias in alias_urns(run, parent):
            chain, former_parent_name = parent_alias.rsplit("::", 1)
            name = resource.name
            if name.startswith(parent.name):
                name = former_parent_name + name[len(parent.name):]
            urns.add(f"{chain}${resource.type}::{name}")
    return urns


@pytest.fixture(scope="module")
def everything(artifacts_dir: Path) -> ProgramRun:
    from tests.unit.program.conftest import program_run

    return program_run("dev", {**OPTIONAL_FEATURES, "artifactsDir": str(artifacts_dir)})


def test_every_resource_of_a_stack_deployed_before_is_matched_by_its_urn_or_an_alias(everything: ProgramRun) -> None:
    matched = set()
    for resource in everything.resources:
        matched |= {engine_urn(everything, resource)} | alias_urns(everything, resource)
    missing = [previous for previous in previous_urns() if previous not in matched]
    assert missing == [], "pulumi up would delete these and create them again:\n" + "\n".join(missing)


def test_no_two_resources_claim_the_same_existing_resource(everything: ProgramRun) -> None:
    claims = Counter(previous for resource in everything.resources
                     for previous in {engine_urn(everything, resource)} | alias_urns(everything, resource))
    assert [claimed for claimed, count in claims.items() if count > 1] == []


def test_the_loader_and_the_producer_left_streaming_inference_with_aliases_to_it(everything: ProgramRun) -> None:
    streaming = everything.named("streaming", "recsys:streaming:StreamingInference")
    # pulumi_aws declares type aliases of its own (aws:s3/bucketV2:BucketV2 and others): only parent aliases count here.
    moved = {(r.type, r.name): r for r in everything.resources if any(a.parent or a.no_parent for a in r.aliases)}
    assert sorted(moved) == [
        ("aws:cloudwatch/eventRule:EventRule", "streaming-producer-schedule"),
        ("aws:cloudwatch/eventTarget:EventTarget", "streaming-producer-target"),
        ("aws:lambda/invocation:Invocation", "streaming-load-embeddings"),
        ("aws:lambda/permission:Permission", "streaming-producer-invoke"),
        ("recsys:lambda:PythonFunction", "streaming-embeddings-loader"),
        ("recsys:lambda:PythonFunction", "streaming-producer"),
    ]
    for resource in moved.values():
        assert resource.aliases == (RecordedAlias(parent=streaming.urn),), resource.urn
        parent = parent_of(everything, resource)
        assert parent is not None and parent.name == "streaming", resource.urn
        assert parent.type in {"recsys:database:EmbeddingsLoader", "recsys:streaming:ActivityProducer"}, resource.urn
    loader_function = everything.named("streaming-embeddings-loader", "aws:lambda/function:Function")
    assert alias_urns(everything, loader_function) == {
        "urn:pulumi:dev::recsys::recsys:streaming:StreamingInference$recsys:lambda:PythonFunction"
        "$aws:lambda/function:Function::streaming-embeddings-loader"}


def test_a_stack_without_the_producer_declares_no_producer_and_only_the_loaders_aliases(run: ProgramRunner) -> None:
    result = run("dev")
    assert not result.of_type("recsys:streaming:ActivityProducer")
    assert [r.name for r in result.resources if any(a.parent for a in r.aliases)] == ["streaming-embeddings-loader"]
