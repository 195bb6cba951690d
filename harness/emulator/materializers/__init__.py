"""Materializers: one function per Pulumi resource type that creates (or updates in place) that resource in the local
services, through boto3 against moto so every input goes through botocore's parameter validation.

A materializer receives the resource's plain inputs (wire names, camelCase, secrets revealed) and what the previous
deploy recorded for it, and returns the physical id plus the outputs the provider would add. Each module registers its
types with `@materializes(...)`; `harness.emulator.engine` dispatches on the type token and fails loudly on an
unknown one.
"""

from __future__ import annotations

import io
import secrets
import threading
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi

if TYPE_CHECKING:
    from harness.emulator.services import RunningServices

PROJECT_ROOT = Path(__file__).resolve().parents[3]
INVOKE_READ_TIMEOUT_S = 960


class MaterializeError(RuntimeError):
    """A resource could not be created locally; the message names the resource and says what to do."""


@dataclass(frozen=True)
class Prior:
    """What the previous deploy recorded for this resource."""

    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass(frozen=True)
class Request:
    type: str
    name: str
    inputs: dict[str, Any]  # plain values (secrets revealed), assets as pulumi Asset/Archive objects
    prior: Prior | None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.inputs.get(key)
        return default if value is None else value

    def physical_name(self, key: str = "name", *, lowercase: bool = False, max_length: int = 64) -> str:
        """The explicit name, else the one autonamed last time, else Pulumi's autoname: `<name>-<7 hex>`."""
        explicit = self.inputs.get(key)
        if explicit:
            return str(explicit)
        if self.prior is not None and self.prior.outputs.get(key):
            return str(self.prior.outputs[key])
        base = self.name.lower() if lowercase else self.name
        return f"{base[: max_length - 8]}-{secrets.token_hex(4)[:7]}"


@dataclass
class Result:
    id: str
    outputs: dict[str, Any] = field(default_factory=dict)


class Context:
    """What every materializer may use: boto3 clients on moto, the services, the state dir, the daemon."""

    def __init__(self, *, services: RunningServices, state_dir: Path, region: str, stack: str,
                 daemon_url: Callable[[], str]) -> None:
        import boto3

        self.services = services
        self.state_dir = state_dir
        self.region = region
        self.stack = stack
        self._daemon_url = daemon_url
        from harness.emulator.endpoints import ACCESS_KEY_ID, SECRET_ACCESS_KEY

        self._session = boto3.session.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                                              region_name=region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account_id: str | None = None

    def client(self, service: str) -> Any:
        # boto3 sessions are not thread-safe, clients are: create each client once, under a lock.
        with self._lock:
            if service not in self._clients:
                if service == "lambda-invoke":
                    from botocore.config import Config

                    # An invocation may run up to Lambda's 15 minutes, and must never be sent twice by a retry.
                    self._clients[service] = self._session.client(
                        "lambda", endpoint_url=self.daemon_url,
                        config=Config(read_timeout=INVOKE_READ_TIMEOUT_S, retries={"total_max_attempts": 1}))
                else:
                    self._clients[service] = self._session.client(service,
                                                                  endpoint_url=self.services.moto.endpoint_url)
            return self._clients[service]

    @property
    def daemon_url(self) -> str:
        return self._daemon_url()

    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = str(self.client("sts").get_caller_identity()["Account"])
        return self._account_id

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        return (f"arn:aws:{service}:{self.region if regional else ''}:{self.account_id if account else ''}:"
                f"{resource}")


Materializer = Callable[[Context, Request], Result]
REGISTRY: dict[str, Materializer] = {}


def materializes(*types: str) -> Callable[[Materializer], Materializer]:
    def register(function: Materializer) -> Materializer:
        for type_token in types:
            REGISTRY[type_token] = function
        return function

    return register


# ---- helpers shared by the modules -----------------------------------------------------------------------------------

def tags_list(tags: Mapping[str, str] | None, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: str(k), value: str(v)} for k, v in sorted((tags or {}).items())]


def without_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """API parameters with the unset ones left out (botocore rejects None)."""
    return {key: value for key, value in mapping.items() if value is not None and value != {} and value != []}


def asset_bytes(asset: Any) -> bytes:
    if isinstance(asset, pulumi.FileAsset):
        return _resolve(str(asset.path)).read_bytes()
    if isinstance(asset, pulumi.StringAsset):
        return str(asset.text).encode("utf-8")
    raise MaterializeError(f"unsupported asset {type(asset).__name__}: use a FileAsset or a StringAsset")


def archive_bytes(archive: Any) -> bytes:
    """A Pulumi archive as zip bytes: a .zip FileArchive as is, a directory or an AssetArchive zipped reproducibly."""
    if isinstance(archive, pulumi.FileArchive):
        path = _resolve(str(archive.path))
        if path.is_dir():
            return _zip(sorted((str(p.relative_to(path)), p.read_bytes()) for p in path.rglob("*") if p.is_file()))
        if not zipfile.is_zipfile(path):
            raise MaterializeError(f"{path} is not a zip archive: the local engine deploys .zip files or directories")
        return path.read_bytes()
    if isinstance(archive, pulumi.AssetArchive):
        files: list[tuple[str, bytes]] = []
        for name, item in sorted(archive.assets.items()):
            if isinstance(item, pulumi.Archive):
                with zipfile.ZipFile(io.BytesIO(archive_bytes(item))) as inner:
                    files += [(f"{name}/{entry}", inner.read(entry)) for entry in inner.namelist()
                              if not entry.endswith("/")]
            else:
                files.append((name, asset_bytes(item)))
        return _zip(files)
    raise MaterializeError(f"unsupported archive {type(archive).__name__}: use a FileArchive or an AssetArchive")


def _resolve(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def load_all() -> None:
    """Import every materializer module (each registers its types)."""
    from harness.emulator.materializers import (  # noqa: F401 - imported for their registrations
        compute,
        databases,
        glue,
        identity,
        network,
        storage,
        streaming,
    )
