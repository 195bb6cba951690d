"""The local engine: `deploy(stack, state_dir, services)` runs THE SAME Pulumi program (`__main__.build`) under Pulumi
mocks whose `new_resource` creates each resource in the local services (see `harness.emulator.materializers`), and
whose `call`
answers data sources (caller identity, region, zones, subnets, S3 objects) from moto.

- Every AWS resource goes through boto3 against moto, so botocore validates every parameter as it would for AWS.
- RDS instances become local servers (PostgreSQL + pgvector, MariaDB) created with the program's generated passwords.
- Lambda functions run in the control plane (`harness.emulator.control_plane`, started here when it is not running):
  their real packages, a Function URL served on 127.0.0.1, an `aws.lambda_.Invocation` run through the Lambda Invoke
  API.
- State: `state.json["resources"]` maps each URN to its id, inputs and outputs. A second deploy updates in place; a
  resource whose inputs did not change is left alone (so an Invocation re-runs only when its triggers or input change,
  and a RandomPassword keeps its value). Resources the program no longer declares are reported, not deleted.
- A resource type without a materializer fails the deploy with its type name; so does a failing resource, with the
  service's own error message.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pulumi
import pulumi.runtime
from rich.console import Console

from harness.emulator import control_plane
from harness.emulator import state as st
from harness.emulator.materializers import REGISTRY, Context, MaterializeError, Prior, Request, load_all
from harness.emulator.program import read_stack_config, reveal, run_program

if TYPE_CHECKING:
    from harness.emulator.services import RunningServices

Change = Literal["created", "updated", "unchanged"]
NAMESPACE = "recsys"
# Types whose materializer runs on every deploy even with unchanged inputs: they tie moto's record to a local process
# (the daemon's URL server, an RDS instance's server) that may have been restarted since.
ALWAYS_APPLY = frozenset({"aws:lambda/functionUrl:FunctionUrl", "aws:rds/instance:Instance"})
PROVIDER_PREFIX = "pulumi:providers:"


class DeployError(pulumi.RunError):
    """The deploy failed; the message names the resource and carries the service's own error (no stack trace)."""


class UnknownResourceType(MaterializeError):
    pass


@dataclass(frozen=True)
class Applied:
    urn: str
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    change: Change


# ---- pure helpers ----------------------------------------------------------------------------------------------------

def _file_digest(path: Path) -> str:
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(item.relative_to(path)).encode() + b"\0" + item.read_bytes())
        return digest.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"


def normalize_numbers(value: Any) -> Any:
    """Pulumi sends every number as a float; botocore wants ints where AWS does (ShardCount=1, not 1.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: normalize_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize_numbers(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """Inputs/outputs as JSON for state.json and for change detection; assets by kind, path and content hash."""
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        return {"__asset": type(value).__name__, "path": str(value.path), "sha256": _file_digest(Path(value.path))}
    if isinstance(value, pulumi.StringAsset):
        return {"__asset": "StringAsset", "sha256": hashlib.sha256(str(value.text).encode()).hexdigest()}
    if isinstance(value, pulumi.AssetArchive):
        return {"__asset": "AssetArchive", "assets": {k: jsonable(v) for k, v in sorted(value.assets.items())}}
    if isinstance(value, pulumi.RemoteAsset | pulumi.RemoteArchive):
        return {"__asset": type(value).__name__, "uri": str(value.uri)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def local_config(stack_config: Mapping[str, str], source: Mapping[str, Any] | None, state_dir: Path) -> dict[str, str]:
    """The stack's config with the local stack's facts applied (pure): the artifacts directory is the state dir's
    (`harness train` writes there, and tests never touch the user's `.local/`); an external source database given to
    `up --source-url` replaces the one the program would create (attach mode, lab style)."""
    config = dict(stack_config)
    if f"{NAMESPACE}:artifactsDir" in config:
        config[f"{NAMESPACE}:artifactsDir"] = str(state_dir / "artifacts")
    if source and source.get("external"):
        config.update({
            f"{NAMESPACE}:sourceDbHost": str(source["host"]), f"{NAMESPACE}:sourceDbPort": str(source["port"]),
            f"{NAMESPACE}:sourceDbName": str(source["database"]), f"{NAMESPACE}:sourceDbUser": str(source["username"]),
            f"{NAMESPACE}:sourceDbPassword": str(source["password"]),
        })
    return config


def stack_outputs(run_outputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"value": jsonable(reveal(output.value)), "secret": bool(output.secret)}
            for name, output in sorted(run_outputs.items())}


# ---- the mocks -------------------------------------------------------------------------------------------------------

class EngineMocks(pulumi.runtime.Mocks):
    """`new_resource` materializes the resource in the local services; `call` answers data sources from moto."""

    def __init__(self, context: Context, prior: Mapping[str, Mapping[str, Any]], console: Console) -> None:
        self.context = context
        self.prior = dict(prior)
        self.console = console
        self.applied: dict[str, Applied] = {}
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0

    def wait_idle(self, timeout_s: float = 600.0) -> None:
        """Wait for materializations still running in Pulumi's threads (after a failure the run returns early)."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)

    # Pulumi's mock monitor computes the URN before calling new_resource, which does not receive it; reading it from
    # the caller's frame keeps state keyed by URN, as the contract says. Falls back to type::name.
    @staticmethod
    def _urn(args: pulumi.runtime.MockResourceArgs) -> str:
        frame = sys._getframe(2)
        for _ in range(4):
            urn = frame.f_locals.get("urn")
            if isinstance(urn, str) and urn.startswith("urn:pulumi:"):
                return urn
            if frame.f_back is None:
                break
            frame = frame.f_back
        return f"{args.typ}::{args.name}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return None, {}
        if args.typ.startswith(PROVIDER_PREFIX):
            return f"{args.name}-provider", dict(args.inputs)
        urn = self._urn(args)
        if self.failures:
            # Pulumi keeps registering independent resources after one failed; creating them would leave things
            # behind that the failed deploy never records.
            raise MaterializeError(f"not created: the deploy already failed ({self.failures[0]})")
        with self._lock:
            self._in_flight += 1
        try:
            return self._apply(urn, args)
        except Exception as exc:
            message = f"{args.typ} {args.name!r}: {_describe(exc)}"
            with self._lock:
                self.failures.append(message)
            self.console.print(f"  [red]✗ failed    [/red] {args.typ} [bold]{args.name}[/bold]: {_describe(exc)}",
                               highlight=False)
            raise
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _apply(self, urn: str, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        materialize = REGISTRY.get(args.typ)
        if materialize is None:
            raise UnknownResourceType(
                f"the local engine has no materializer for resource type {args.typ} (resource {args.name!r}); add "
                "one in harness/emulator/materializers/ (see docs/engine.md)")
        plain = normalize_numbers(reveal(dict(args.inputs)))
        recorded_inputs = jsonable(plain)
        prior_entry = self.prior.get(urn)
        prior = Prior(str(prior_entry["id"]), dict(prior_entry.get("inputs") or {}),
                      dict(prior_entry.get("outputs") or {})) if prior_entry else None
        started = time.monotonic()
        if prior is not None and prior.inputs == recorded_inputs and args.typ not in ALWAYS_APPLY:
            change: Change = "unchanged"
            resource_id, computed = prior.id, dict(prior.outputs)
        else:
            result = materialize(self.context, Request(args.typ, args.name, plain, prior))
            change = "created" if prior is None else "updated"
            resource_id, computed = result.id, jsonable(result.outputs)
            if prior is not None and prior.inputs == recorded_inputs and prior.outputs == computed:
                change = "unchanged"
        applied = Applied(urn, args.typ, args.name, resource_id, recorded_inputs, computed, change)
        with self._lock:
            self.applied[urn] = applied
        if change != "unchanged":
            style = {"created": "green", "updated": "yellow"}[change]
            self.console.print(f"  [{style}]{'+' if change == 'created' else '~'} {change:<9}[/{style}] {args.typ} "
                               f"[bold]{args.name}[/bold] ({time.monotonic() - started:.1f}s)", highlight=False)
        return resource_id, {**dict(args.inputs), **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        try:
            return _answer(self.context, args.token, normalize_numbers(reveal(dict(args.args)))), []
        except Exception as exc:
            message = f"data source {args.token}: {_describe(exc)}"
            with self._lock:
                self.failures.append(message)
            raise


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MaterializeError | LookupError) else f"{type(exc).__name__}: {exc}"


def _answer(context: Context, token: str, args: dict[str, Any]) -> dict[str, Any]:
    from harness.emulator.materializers import network, storage

    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        identity = context.client("sts").get_caller_identity()
        return {"accountId": identity["Account"], "arn": identity["Arn"], "userId": identity["UserId"],
                "id": identity["Account"]}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws", "id": "aws"}
    if token == "aws:index/getRegion:getRegion":
        return {"name": context.region, "region": context.region, "id": context.region,
                "endpoint": f"ec2.{context.region}.amazonaws.com", "description": context.region}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return network.get_availability_zones(context, args)
    if token == "aws:ec2/getSubnet:getSubnet":
        return network.get_subnet(context, args)
    if token == "aws:ec2/getVpc:getVpc":
        return network.get_vpc(context, args)
    if token == "aws:s3/getObject:getObject":
        return storage.get_object(context, args)
    if token == "aws:kinesis/getStream:getStream":
        summary = context.client("kinesis").describe_stream_summary(StreamName=args["name"])["StreamDescriptionSummary"]
        return {"arn": summary["StreamARN"], "name": args["name"], "id": summary["StreamARN"],
                "status": summary["StreamStatus"], "retentionPeriod": summary["RetentionPeriodHours"]}
    raise MaterializeError(f"the local engine cannot answer data source {token}; add it in harness/emulator/engine.py")


# ---- deploy ----------------------------------------------------------------------------------------------------------

def deploy(stack: str, state_dir: Path, services: RunningServices, *, console: Console | None = None,
           build: Callable[[Any], Mapping[str, pulumi.Output[Any]]] | None = None,
           config_overrides: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the program into the local services; returns the stack outputs as {name: {"value", "secret"}}.

    `build` replaces the program's `build(config)` and `config_overrides` are applied over `Pulumi.<stack>.yaml` (tests
    deploy small programs, or keep the program away from the user's `.local/`)."""
    console = console or Console(stderr=True, soft_wrap=True)
    state_dir = state_dir.resolve()
    load_all()
    state = st.load_state(state_dir)
    config = local_config(read_stack_config(stack), state.get("source"), state_dir) | dict(config_overrides or {})
    region = config.get("aws:region") or "us-east-1"
    daemon_info = control_plane.start(state_dir, services, region=region)
    context = Context(services=services, state_dir=state_dir, region=region, stack=stack,
                      daemon_url=lambda: daemon_info.url)
    prior: dict[str, Any] = dict(state.get("resources") or {})
    mocks = EngineMocks(context, prior, console)
    started = time.monotonic()
    console.print(f"deploying stack [bold]{stack}[/bold] into the local services (Lambda endpoint {daemon_info.url})")
    _forget_tasks_of_earlier_runs()
    try:
        run = run_program(stack, config, mocks, build=build)
    except Exception as exc:
        mocks.wait_idle()
        _record(state_dir, prior, mocks.applied)
        if mocks.failures:
            raise DeployError("deploy failed at " + "; ".join(dict.fromkeys(mocks.failures))) from None
        if isinstance(exc, pulumi.RunError | ValueError):
            raise
        raise DeployError(f"deploy failed: {type(exc).__name__}: {exc}") from exc
    if mocks.failures:
        mocks.wait_idle()
        _record(state_dir, prior, mocks.applied)
        raise DeployError("deploy failed at " + "; ".join(dict.fromkeys(mocks.failures)))
    _record(state_dir, {}, mocks.applied)
    control_plane.ControlPlaneClient(daemon_info.url).refresh()
    gone = sorted(set(prior) - set(mocks.applied))
    counts = Counter(applied.change for applied in mocks.applied.values())
    console.print(f"[bold]deployed[/bold] {len(mocks.applied)} resources in {time.monotonic() - started:.1f}s: "
                  f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
                  + (f"; {len(gone)} no longer in the program (left in place): {', '.join(gone)}" if gone else ""),
                  highlight=False)
    return stack_outputs(run.outputs)


def _forget_tasks_of_earlier_runs() -> None:
    """A failed run leaves its output tasks in Pulumi's process-wide settings, bound to that run's closed event loop;
    the next run in the same process (a test session, `demo` re-deploying) would wait on them and fail."""
    from pulumi.runtime.settings import SETTINGS

    with SETTINGS.lock:
        SETTINGS.outputs.clear()


def _record(state_dir: Path, prior: Mapping[str, Any], applied: Mapping[str, Applied]) -> None:
    """state.json["resources"]: after a success exactly what the program declared; after a failure also what was
    recorded before, so the next deploy updates those resources in place instead of creating them again."""
    resources = {urn: dict(entry) for urn, entry in prior.items()}
    for urn, item in applied.items():
        resources[urn] = {"type": item.type, "name": item.name, "id": item.id, "inputs": item.inputs,
                          "outputs": item.outputs}
    st.update_state(state_dir, lambda s: s.update(resources=resources))
