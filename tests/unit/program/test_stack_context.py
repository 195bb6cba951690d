"""`StackContext`: the stack-wide settings are given once, and every component takes them from it."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil

import pytest

import components
from components.naming import Namer
from components.stack_context import StackContext
from tests.unit.program.conftest import OPTIONAL_FEATURES, ProgramRunner

CONTEXT_FIELDS = {field.name for field in dataclasses.fields(StackContext)}


def component_args_classes() -> list[type]:
    found = []
    for module_info in pkgutil.iter_modules(components.__path__):
        module = importlib.import_module(f"components.{module_info.name}")
        found += [value for name, value in vars(module).items()
                  if name.endswith("Args") and dataclasses.is_dataclass(value) and value.__module__ == module.__name__]
    return found


def test_the_context_is_frozen() -> None:
    context = StackContext(namer=Namer("de-c1w4", "dev"), ephemeral=True, account_id="123456789012",
                           region="us-east-1", partition="aws", log_retention_days=14, architecture="x86_64",
                           layer_arn="arn:aws:lambda:us-east-1:123456789012:layer:deps:1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.ephemeral = False  # type: ignore[misc]


def test_no_component_args_repeat_what_the_context_gives() -> None:
    classes = {cls.__name__: cls for cls in component_args_classes()}
    assert {"NetworkArgs", "SourceDatabaseArgs", "VectorDatabaseArgs", "MlArtifactsArgs", "EtlPipelineArgs",
            "StreamingInferenceArgs", "EmbeddingsLoaderArgs", "ActivityProducerArgs", "PythonFunctionArgs",
            "SecureBucketArgs"} <= set(classes)
    repeated = {name: sorted(CONTEXT_FIELDS & {field.name for field in dataclasses.fields(cls)})
                for name, cls in classes.items()}
    # The dependency layer is built before the context (the context carries its ARN): it alone takes these two.
    assert {name: fields for name, fields in repeated.items() if fields} == {
        "DependencyLayerArgs": ["architecture", "namer"]}


@pytest.mark.parametrize(("settings", "retention"), [({"logRetentionDays": "7"}, 7), ({"logRetentionDays": "30"}, 30)])
def test_every_log_group_takes_the_retention_of_the_context(run: ProgramRunner, settings: dict[str, str],
                                                            retention: int) -> None:
    groups = run("dev", {**OPTIONAL_FEATURES, **settings}).of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) >= 8
    assert {group.plain_inputs["name"]: group.plain_inputs["retentionInDays"] for group in groups} == \
        {group.plain_inputs["name"]: retention for group in groups}


@pytest.mark.parametrize(("settings", "window"), [({}, 0), ({"ephemeral": "false"}, 7)])
def test_secrets_are_deleted_at_once_only_in_ephemeral_stacks(run: ProgramRunner, settings: dict[str, str],
                                                              window: int) -> None:
    secrets = run("dev", settings).of_type("aws:secretsmanager/secret:Secret")
    assert sorted(s.plain_inputs["name"] for s in secrets) == ["de-c1w4-dev-source-db", "de-c1w4-dev-vector-db"]
    for secret in secrets:
        assert secret.plain_inputs["recoveryWindowInDays"] == window, secret.urn


def test_service_roles_trust_their_service_only_for_the_stacks_account(run: ProgramRunner) -> None:
    roles = {r.plain_inputs["name"]: json.loads(r.plain_inputs["assumeRolePolicy"])
             for r in run("dev").of_type("aws:iam/role:Role")}
    for name, service in (("de-c1w4-dev-glue-job", "glue.amazonaws.com"),
                          ("de-c1w4-dev-delivery-stream", "firehose.amazonaws.com")):
        (statement,) = roles[name]["Statement"]
        assert statement["Principal"] == {"Service": service}, name
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}, name


def test_buckets_carry_the_stacks_account_and_region_in_their_names(run: ProgramRunner) -> None:
    buckets = sorted(b.plain_inputs["bucket"] for b in run("dev", region="eu-west-1").of_type("aws:s3/bucket:Bucket"))
    assert buckets == [f"de-c1w4-dev-123456789012-eu-west-1-{purpose}"
                       for purpose in ("datalake", "ml-artifacts", "recommendations", "scripts")]
