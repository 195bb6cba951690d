"""A deployed stack as the workflows see it: its outputs, AWS clients for an endpoint configuration, and database
connections made from the outputs. The same handle points at the local stack (the emulator's endpoints) or at a
stack deployed to an AWS account (no endpoints: the user's credentials and region), so a workflow that takes a
`StackHandle` runs unchanged on both. Workflows never import the emulator; the CLI builds handles
(`harness.cli.target`).

The endpoint configuration is AWS's own: `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>` (boto3 and the aws CLI read
the same variables), `AWS_REGION`/`AWS_DEFAULT_REGION`, and credentials from the standard chain.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_REGION = "us-east-1"
# The longest timeout of the stack's functions is 300 s: a synchronous invoke waits a little longer, so the function's
# own answer (or timeout), not the client's, ends it.
INVOKE_TIMEOUT_S = 330


class HandleError(RuntimeError):
    """A stack that cannot be reached as asked (a missing output, an unreadable outputs file); one line."""


@dataclass(frozen=True)
class AwsEndpoints:
    """Where AWS's APIs answer: `default_url` for every service unless `service_urls` names one (None and empty: AWS
    itself). `credentials` None means the standard chain (environment, profile, SSO, instance role)."""

    region: str = DEFAULT_REGION
    default_url: str | None = None
    service_urls: Mapping[str, str] = field(default_factory=dict)
    credentials: tuple[str, str] | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> AwsEndpoints:
        """The configuration boto3 itself would read from `env` (default: this process's environment)."""
        env = os.environ if env is None else env
        prefix = "AWS_ENDPOINT_URL_"
        services = {name[len(prefix):].lower(): value for name, value in env.items()
                    if name.startswith(prefix) and value}
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        return cls(region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
                   default_url=env.get("AWS_ENDPOINT_URL") or None, service_urls=services,
                   credentials=(key, secret) if key and secret else None)

    @property
    def emulated(self) -> bool:
        """True when the APIs are not AWS's own (a local emulator): nothing costs money there."""
        return bool(self.default_url or self.service_urls)

    def url_for(self, service: str) -> str | None:
        return self.service_urls.get(service.lower().replace("-", "_")) or self.default_url

    def environment(self) -> dict[str, str]:
        """The variables that give a child process (a script, the aws CLI) this same configuration."""
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.default_url:
            env["AWS_ENDPOINT_URL"] = self.default_url
        env.update({f"AWS_ENDPOINT_URL_{service.upper()}": url for service, url in self.service_urls.items()})
        if self.credentials:
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = self.credentials
        return env


@dataclass
class StackHandle:
    """One deployed stack: `outputs` are `pulumi stack output --json --show-secrets`'s (secrets revealed)."""

    name: str
    outputs: Mapping[str, Any]
    aws: AwsEndpoints = field(default_factory=AwsEndpoints)
    _clients: dict[tuple[str, float | None], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_outputs_file(cls, path: Path, aws: AwsEndpoints | None = None, *, name: str | None = None
                          ) -> StackHandle:
        """A handle from a file holding `pulumi stack output --json --show-secrets`'s output."""
        try:
            outputs = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HandleError(f"no outputs file {path}: write it with `pulumi stack output --json --show-secrets "
                              f"> {path}`") from None
        except (OSError, ValueError) as err:
            raise HandleError(f"cannot read the outputs file {path} ({err}): it must hold the JSON object that "
                              "`pulumi stack output --json --show-secrets` prints") from None
        if not isinstance(outputs, dict):
            raise HandleError(f"the outputs file {path} holds a JSON {type(outputs).__name__}, not the object that "
                              "`pulumi stack output --json --show-secrets` prints")
        return cls(name=name or path.stem, outputs=outputs, aws=aws or AwsEndpoints.from_environment())

    @property
    def emulated(self) -> bool:
        return self.aws.emulated

    def output(self, name: str) -> Any:
        """The output's value; a missing output raises one line naming it (a stack deployed without that part)."""
        value = self.outputs.get(name)
        if value is None or value == "":
            raise HandleError(f"the stack {self.name} has no `{name}` output: deploy the program's current version "
                              "(`pulumi up`, locally `harness up`)")
        return value

    def optional_output(self, name: str) -> Any:
        value = self.outputs.get(name)
        return None if value == "" else value

    def client(self, service: str, *, read_timeout: float | None = None) -> Any:
        """A boto3 client for `service` at this stack's endpoints, one per (service, timeout), shareable by threads."""
        key = (service, read_timeout)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                options: dict[str, Any] = {"region_name": self.aws.region, "endpoint_url": self.aws.url_for(service)}
                if self.aws.credentials:
                    options["aws_access_key_id"], options["aws_secret_access_key"] = self.aws.credentials
                if read_timeout is not None:
                    options["config"] = Config(read_timeout=read_timeout, retries={"max_attempts": 1})
                client = self._clients[key] = boto3.client(service, **options)
            return client

    def source_db_settings(self) -> dict[str, Any]:
        """The source MySQL as the outputs name it (host, port, user, password, database)."""
        return {"host": str(self.output("source_db_host")), "port": int(self.output("source_db_port")),
                "user": str(self.output("source_db_username")), "password": str(self.output("source_db_password")),
                "database": str(self.output("source_db_name"))}

    def vector_db_settings(self) -> dict[str, Any]:
        """The vector database as the outputs name it (host, port, user, password, dbname)."""
        return {"host": str(self.output("vector_db_host")), "port": int(self.output("vector_db_port")),
                "user": str(self.output("vector_db_master_username")),
                "password": str(self.output("vector_db_master_password")),
                "dbname": str(self.output("vector_db_name"))}
