"""Run the Pulumi program (`__main__.py`) in-process under Pulumi's mocks: no Pulumi CLI, no AWS account.

`run_program(stack, config, mocks)` runs `build` exactly as `pulumi up` would (not a preview: every output is known)
and returns every resource the program registered (URN, type, name, parent URN, inputs, outputs) and the stack outputs
with their secretness. `RecordingMocks` answers with realistic, type-specific outputs (ARNs, endpoints, Function URLs,
AZs); `preview` and the unit tests use it. The local engine passes its own `pulumi.runtime.Mocks` subclass whose
`new_resource`/`call` create each resource in the local services; everything else here is the same.

Inputs and outputs use the provider's wire names (camelCase: `functionName`, `sourceHash`, `functionUrl`), exactly as
a `Mocks` subclass sees and must return them. Inputs are recorded as the engine receives them: secret values are
wrapped (`is_secret_value`); `reveal` unwraps them and `redact` replaces them. Each run gets a fresh context and
event loop, so runs never see each other's resources.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import importlib.util
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "recsys"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROGRAM_FILE = PROJECT_ROOT / "__main__.py"
PROGRAM_MODULE = "recsys_program"
SECRET_PLACEHOLDER = "[secret]"
COMPONENT_TYPE_PREFIX = "recsys:"


class StackConfigFileError(pulumi.RunError):
    """`Pulumi.<stack>.yaml` is missing or not what Pulumi writes."""


# ---- loading the program and its config ----------------------------------------------------------------------------

def load_program() -> ModuleType:
    """`__main__.py` as module `recsys_program` (never `import __main__`, which is the running script)."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    spec = importlib.util.spec_from_file_location(PROGRAM_MODULE, PROGRAM_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Pulumi program from {PROGRAM_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stack_config_path(stack: str) -> Path:
    return PROJECT_ROOT / f"Pulumi.{stack}.yaml"


def _config_value(key: str, value: Any, path: Path) -> str:
    if isinstance(value, dict) and set(value) == {"secure"}:
        raise StackConfigFileError(
            f"{path}: {key} is encrypted (secure:) and only the Pulumi CLI can decrypt it. For a local run put the "
            "value in plain text in a stack file that is not committed, or leave the key out.")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def read_stack_config(stack: str, path: Path | None = None) -> dict[str, str]:
    """The `config:` section of `Pulumi.<stack>.yaml` as full key -> string value (as Pulumi hands it to programs)."""
    import yaml

    path = path or stack_config_path(stack)
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                       for p in PROJECT_ROOT.glob("Pulumi.*.yaml"))
        raise StackConfigFileError(
            f"no stack config file {path.name} for stack {stack!r} in {path.parent}. "
            f"Stacks with a config file: {', '.join(known) or 'none'}. Create {path.name} (see docs/program.md) or "
            "pass --stack with one of those.")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise StackConfigFileError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise StackConfigFileError(f"{path} must be a mapping with a config: section")
    section = document.get("config") or {}
    if not isinstance(section, dict):
        raise StackConfigFileError(f"{path}: config: must be a mapping of keys such as recsys:prefix to values")
    return {str(key): _config_value(str(key), value, path) for key, value in section.items()}


# ---- secrets in recorded values ------------------------------------------------------------------------------------

def is_secret_value(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def reveal(value: Any) -> Any:
    """The value with every secret marker removed."""
    if is_secret_value(value):
        return reveal(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def redact(value: Any, placeholder: str = SECRET_PLACEHOLDER) -> Any:
    """The value with every secret replaced by `placeholder`."""
    if is_secret_value(value):
        return placeholder
    if isinstance(value, dict):
        return {key: redact(item, placeholder) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, placeholder) for item in value]
    return value


def contains_secret(value: Any) -> bool:
    if is_secret_value(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_secret(item) for item in value)
    return False


# ---- what a run records --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordedAlias:
    """An alias as the engine receives it: a full `urn`, or a spec whose empty fields mean "as the resource is now"
    (`parent` is the old parent's URN; `no_parent` says it had none)."""

    urn: str = ""
    name: str = ""
    type: str = ""
    parent: str = ""
    no_parent: bool = False


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    id: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()
    aliases: tuple[RecordedAlias, ...] = ()

    @property
    def plain_inputs(self) -> dict[str, Any]:
        result: dict[str, Any] = reveal(self.inputs)
        return result

    @property
    def is_component(self) -> bool:
        return not self.custom


@dataclass(frozen=True)
class RecordedCall:
    token: str
    args: dict[str, Any]


@dataclass(frozen=True)
class StackOutput:
    value: Any
    secret: bool


@dataclass(frozen=True)
class ProgramRun:
    project: str
    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, StackOutput]
    calls: list[RecordedCall] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def by_urn(self, urn: str) -> RecordedResource:
        for resource in self.resources:
            if resource.urn == urn:
                return resource
        raise KeyError(urn)

    def named(self, name: str, type_token: str | None = None) -> RecordedResource:
        """The one resource with this logical name (components share names with their main child: pass the type)."""
        matches = [resource for resource in self.resources
                   if resource.name == name and type_token in (None, resource.type)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.parent == urn]

    def output_values(self) -> dict[str, Any]:
        return {name: output.value for name, output in self.outputs.items()}


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's mock monitor, also keeping each registration's parent, inputs and dependencies in order."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.calls: list[RecordedCall] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            urn = response.urn
            registration = self.resources[urn]
            self.recorded.append(RecordedResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                custom=bool(request.custom),
                id=registration.id or None,
                inputs=rpc.deserialize_properties(request.object),
                outputs=dict(registration.state or {}),
                dependencies=tuple(request.dependencies),
                aliases=tuple(_recorded_alias(alias) for alias in request.aliases),
            ))
        return response

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.calls.append(RecordedCall(token=request.tok, args=rpc.deserialize_properties(request.args)))
        return super().Invoke(request)


def _recorded_alias(alias: Any) -> RecordedAlias:
    if alias.WhichOneof("alias") == "urn":
        return RecordedAlias(urn=alias.urn)
    spec = alias.spec
    return RecordedAlias(name=spec.name, type=spec.type, parent=spec.parentUrn, no_parent=spec.noParent)


class _CollectingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_program(
    stack: str,
    config: Mapping[str, str],
    mocks: pulumi.runtime.Mocks,
    *,
    project: str = PROJECT,
    build: Callable[[Any], Mapping[str, pulumi.Output[Any]]] | None = None,
) -> ProgramRun:
    """Runs `build(load_config())` of the program under `mocks` as an update (not a preview).

    A `ConfigError` (or any other error of the program or the mocks) propagates unchanged.
    """
    context = contextvars.Context()
    return context.run(_run_in_fresh_context, stack, dict(config), mocks, project, build)


def _forget_pending_outputs() -> None:
    # Pulumi keeps output tasks in a process-wide set; a failed run leaves tasks bound to its closed loop there, and
    # the next run would wait on them.
    from pulumi.runtime.settings import SETTINGS

    with SETTINGS.lock:
        SETTINGS.outputs.clear()


def _run_in_fresh_context(
    stack: str,
    config: dict[str, str],
    mocks: pulumi.runtime.Mocks,
    project: str,
    build: Callable[[Any], Mapping[str, pulumi.Output[Any]]] | None,
) -> ProgramRun:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # One logger for all runs (loggers live forever); each run collects the warnings with its own handler.
    logger = logging.getLogger("recsys.program")
    logger.propagate = False
    handler = _CollectingHandler()
    logger.addHandler(handler)
    _forget_pending_outputs()
    try:
        pulumi.runtime.set_all_config(config, [])
        monitor = _RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger)
        from components.config import load_config

        if build is None:
            build = load_program().build
        produced: dict[str, pulumi.Output[Any]] = {}

        def body() -> None:
            produced.update(build(load_config()))

        _sync_await(run_pulumi_func(body))
        outputs = {}
        for name, output in produced.items():
            output = pulumi.Output.from_input(output)
            value = _sync_await(output.future())
            secret = bool(_sync_await(output.is_secret()))
            outputs[name] = StackOutput(value=value, secret=secret)
        return ProgramRun(project=project, stack=stack, resources=list(monitor.recorded), outputs=outputs,
                          calls=list(monitor.calls), warnings=list(handler.messages))
    finally:
        _forget_pending_outputs()
        logger.removeHandler(handler)
        asyncio.set_event_loop(None)
        loop.close()


# ---- realistic outputs for preview and tests -----------------------------------------------------------------------

def _digest(*parts: object, length: int = 17) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:length]


class RecordingMocks(pulumi.runtime.Mocks):
    """Type-specific, deterministic outputs: what AWS would return, shaped right, with fake account and ids."""

    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012") -> None:
        self.region = region
        self.account_id = account_id

    def _arn(self, service: str, resource: str, regional: bool = True) -> str:
        region = self.region if regional else ""
        account = self.account_id if service != "s3" else ""
        return f"arn:aws:{service}:{region}:{account}:{resource}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        inputs = reveal(dict(args.inputs))
        name = args.name
        token = args.typ
        outputs: dict[str, Any] = dict(args.inputs)
        physical = inputs.get("name") or f"{name}-{_digest(name, length=7)}"
        resource_id: str = physical

        if token == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or f"{name}-{_digest(name, length=8)}"
            resource_id = bucket
            outputs.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}",
                           bucketDomainName=f"{bucket}.s3.amazonaws.com",
                           bucketRegionalDomainName=f"{bucket}.s3.{self.region}.amazonaws.com",
                           region=self.region)
        elif token == "aws:s3/bucketObjectv2:BucketObjectv2":
            resource_id = inputs.get("key", name)
            outputs.update(etag=_digest(inputs.get("sourceHash"), inputs.get("key"), length=32),
                           versionId="")
        elif token == "aws:rds/instance:Instance":
            identifier = inputs.get("identifier") or name
            port = inputs.get("port") or (5432 if inputs.get("engine") == "postgres" else 3306)
            address = f"{identifier}.c{_digest(identifier, length=11)}.{self.region}.rds.amazonaws.com"
            resource_id = identifier
            outputs.update(identifier=identifier, address=address, endpoint=f"{address}:{port}", port=port,
                           arn=self._arn("rds", f"db:{identifier}"), resourceId=f"db-{_digest(identifier).upper()}",
                           hostedZoneId="Z2R2ITUGPM61AM")
        elif token == "aws:lambda/function:Function":
            arn = self._arn("lambda", f"function:{physical}")
            outputs.update(name=physical, arn=arn, qualifiedArn=f"{arn}:$LATEST", version="$LATEST",
                           invokeArn=f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/{arn}/"
                                      "invocations")
        elif token == "aws:lambda/functionUrl:FunctionUrl":
            url_id = _digest(inputs.get("functionName"), length=32)
            resource_id = str(inputs.get("functionName"))
            outputs.update(functionUrl=f"https://{url_id}.lambda-url.{self.region}.on.aws/", urlId=url_id,
                           functionArn=self._arn("lambda", f"function:{inputs.get('functionName')}"))
        elif token == "aws:lambda/layerVersion:LayerVersion":
            layer = inputs.get("layerName", name)
            arn = self._arn("lambda", f"layer:{layer}")
            resource_id = f"{arn}:1"
            outputs.update(arn=f"{arn}:1", layerArn=arn, version="1")
        elif token == "aws:lambda/invocation:Invocation":
            resource_id = f"{inputs.get('functionName')}_{_digest(inputs.get('input'), length=8)}"
            outputs.update(result=json.dumps({"status": "ok"}))
        elif token == "aws:iam/role:Role":
            outputs.update(arn=f"arn:aws:iam::{self.account_id}:role/{physical}", name=physical,
                           uniqueId=f"AROA{_digest(physical).upper()}")
        elif token == "aws:secretsmanager/secret:Secret":
            arn = self._arn("secretsmanager", f"secret:{physical}-{_digest(physical, length=6)}")
            resource_id = arn
            outputs.update(arn=arn, name=physical)
        elif token == "aws:kinesis/stream:Stream":
            arn = self._arn("kinesis", f"stream/{physical}")
            resource_id = arn
            outputs.update(arn=arn, name=physical)
        elif token == "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream":
            arn = self._arn("firehose", f"deliverystream/{physical}")
            resource_id = arn
            outputs.update(arn=arn, name=physical)
        elif token == "aws:cloudwatch/logGroup:LogGroup":
            outputs.update(arn=self._arn("logs", f"log-group:{physical}"), name=physical)
        elif token == "aws:cloudwatch/eventRule:EventRule":
            outputs.update(arn=self._arn("events", f"rule/{physical}"), name=physical)
        elif token == "aws:ec2/vpc:Vpc":
            resource_id = f"vpc-{_digest(name)}"
            outputs.update(arn=self._arn("ec2", f"vpc/{resource_id}"), defaultRouteTableId=f"rtb-{_digest(name)}")
        elif token.startswith("aws:ec2/"):
            kind = {"subnet": "subnet", "securityGroup": "sg", "routeTable": "rtb", "internetGateway": "igw",
                    "vpcEndpoint": "vpce"}.get(token.split("/")[1].split(":")[0], "ec2")
            resource_id = f"{kind}-{_digest(name)}"
            outputs.update(arn=self._arn("ec2", f"{kind}/{resource_id}"))
        elif token.startswith("aws:glue/"):
            outputs.update(arn=self._arn("glue", f"{token.split(':')[-1].lower()}/{physical}"), name=physical)
        elif token == "random:index/randomPassword:RandomPassword":
            length = int(inputs.get("length", 32))
            outputs.update(result=("Pw1!" + _digest(name, length=64))[:length],
                           bcryptHash="$2a$10$" + _digest(name, length=53))
        elif token == "aws:rds/subnetGroup:SubnetGroup":
            outputs.update(arn=self._arn("rds", f"subgrp:{physical}"), name=physical)
        else:
            outputs.setdefault("arn", self._arn(token.split(":")[1].split("/")[0], f"{name}"))
        outputs.setdefault("id", resource_id)
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        token = args.token
        call_args = reveal(dict(args.args))
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account_id, "arn": f"arn:aws:iam::{self.account_id}:user/preview",
                    "userId": "AIDAPREVIEW", "id": self.account_id}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
                    "reverseDnsPrefix": "com.amazonaws"}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region,
                    "endpoint": f"ec2.{self.region}.amazonaws.com"}, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{suffix}" for suffix in "abc"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in (1, 2, 4)], "id": self.region,
                    "groupNames": [self.region]}, []
        if token == "aws:ec2/getSubnet:getSubnet":
            subnet_id = str(call_args.get("id"))
            zone = f"{self.region}{'abc'[int(_digest(subnet_id, length=2), 16) % 3]}"
            return {"id": subnet_id, "availabilityZone": zone, "vpcId": f"vpc-{_digest(subnet_id)}",
                    "cidrBlock": "172.31.0.0/20", "arn": self._arn("ec2", f"subnet/{subnet_id}")}, []
        if token == "aws:ec2/getVpc:getVpc":
            vpc_id = str(call_args.get("id"))
            return {"id": vpc_id, "cidrBlock": "172.31.0.0/16", "arn": self._arn("ec2", f"vpc/{vpc_id}")}, []
        if token == "aws:s3/getObject:getObject":
            etag = _digest(call_args.get("bucket"), call_args.get("key"), length=32)
            return {"bucket": call_args.get("bucket"), "key": call_args.get("key"), "etag": f'"{etag}"',
                    "id": f"{call_args.get('bucket')}/{call_args.get('key')}"}, []
        raise NotImplementedError(f"RecordingMocks has no answer for data source {token}; add one in "
                                  "harness/emulator/program.py")


def preview_config_mocks(config: Mapping[str, str]) -> RecordingMocks:
    """Recording mocks in the config's region."""
    return RecordingMocks(region=config.get("aws:region") or "us-east-1")

