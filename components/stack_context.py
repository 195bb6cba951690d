"""`StackContext`: what every component of one stack shares, built once in `__main__.build` and passed to each.

Physical names and tags (the `Namer`), whether the stack is ephemeral, where it runs (account, region, partition), and
the Lambda platform every function uses (architecture, dependency layer, log retention). Component args carry only
what is specific to the component. The helpers here are the one place a stack-wide choice is turned into resource
arguments (bucket names, account-scoped trust policies), so components do not repeat that plumbing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import policies
from components.config import Architecture
from components.naming import NameKind, Namer


@dataclass(frozen=True)
class StackContext:
    namer: Namer
    # Ephemeral stacks destroy cleanly: buckets force-destroyed, no final snapshot, no deletion protection.
    ephemeral: bool
    account_id: pulumi.Input[str]
    region: str
    partition: pulumi.Input[str]
    log_retention_days: int
    architecture: Architecture
    # The dependency layer every function runs with (`DependencyLayer`, the one component built before the context).
    layer_arn: pulumi.Input[str]

    @property
    def tags(self) -> dict[str, str]:
        return self.namer.tags

    def name(self, purpose: str, kind: NameKind) -> str:
        return self.namer(purpose, kind)

    def bucket_name(self, purpose: str) -> pulumi.Output[str]:
        """`<prefix>-<stack>-<account>-<region>-<purpose>`: bucket names are global, hence account and region."""
        namer, region = self.namer, self.region
        return pulumi.Output.from_input(self.account_id).apply(lambda account: namer.bucket(account, region, purpose))

    def service_trust_policy(self, service: policies.ServicePrincipal) -> pulumi.Output[str]:
        """The role trust policy for an AWS service, limited to this account's resources (confused-deputy guard)."""
        return pulumi.Output.from_input(self.account_id).apply(
            lambda account: policies.to_json(policies.assume_role_policy(service, account)))
