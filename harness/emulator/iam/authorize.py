"""A call authorized as a whole: every authorization it needs evaluated against the caller's identity policies and
the resource's policy; allowed only when all are. This is the function the gateway calls (`authorize_request`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from harness.emulator.iam.calls import Call, Unmapped, resource_owner
from harness.emulator.iam.context import Principal, Request, global_keys
from harness.emulator.iam.documents import Policy
from harness.emulator.iam.errors import ErrorAnswer, access_denied_message, error_answer
from harness.emulator.iam.evaluation import Decision, evaluate
from harness.emulator.iam.operations import HttpRequest, Lookups, map_request


class PolicySource(Protocol):
    """Where the documents come from (`harness.emulator.iam.sources.MotoPolicies` reads moto)."""

    def identity_policies(self, principal: Principal) -> Sequence[Policy]: ...

    def resource_policies(self, resource: str) -> Sequence[Policy]: ...


@dataclass(frozen=True)
class StaticPolicies:
    """Documents given up front: identity policies by role ARN (or service name), resource policies by the ARN of
    the resource that holds them (a bucket, a role for its trust policy, a function)."""

    identity: Mapping[str, Sequence[Policy]] = field(default_factory=dict)
    resources: Mapping[str, Sequence[Policy]] = field(default_factory=dict)

    def identity_policies(self, principal: Principal) -> Sequence[Policy]:
        return self.identity.get(principal.role_arn or principal.service or principal.arn, ())

    def resource_policies(self, resource: str) -> Sequence[Policy]:
        return self.resources.get(resource_owner(resource), ())


@dataclass(frozen=True)
class Verdict:
    """The outcome of one call: each authorization's decision, and for a denied call AWS's message and answer."""

    call: Call | Unmapped
    principal: Principal
    decisions: tuple[Decision, ...] = ()

    @property
    def allowed(self) -> bool:
        return isinstance(self.call, Call) and all(d.allowed for d in self.decisions)

    @property
    def denial(self) -> Decision | None:
        return next((d for d in self.decisions if not d.allowed), None)

    @property
    def operation(self) -> str:
        return f"{self.call.service or '?'}:{self.call.operation or '?'}"

    def message(self) -> str:
        if isinstance(self.call, Unmapped):
            return (f"User: {self.principal.arn} is not authorized to perform: {self.operation} (the local stack "
                    f"cannot tell which IAM action and resource this request needs: {self.call.reason})")
        denial = self.denial
        if denial is None:
            return "allowed"
        return access_denied_message(self.principal.arn, denial.request.action, denial.request.resource,
                                     denial.reason, quoted=self.call.service == "s3")

    def error(self) -> ErrorAnswer | None:
        """What the service answers a denied call with; None when the call is allowed."""
        if self.allowed:
            return None
        return error_answer(self.call.protocol, self.call.service, self.message(), self.call.json_version)

    def record(self) -> dict[str, Any]:
        """A JSON-ready line for the call log (`harness iam report`)."""
        return {
            "principal": self.principal.arn,
            "role": self.principal.role_arn or self.principal.service,
            "operation": self.operation,
            "allowed": self.allowed,
            "authorizations": [{"action": d.request.action, "resource": d.request.resource, "outcome": d.outcome,
                                "statement": d.decided_by.describe() if d.decided_by else None}
                               for d in self.decisions],
            **({"unmapped": self.call.reason} if isinstance(self.call, Unmapped) else {}),
        }


def authorize(call: Call | Unmapped, principal: Principal, policies: PolicySource,
              keys: Mapping[str, tuple[str, ...]]) -> Verdict:
    """`keys`: the request's global condition keys (`context.global_keys`); each authorization adds its own."""
    if isinstance(call, Unmapped):
        return Verdict(call, principal)
    identity = policies.identity_policies(principal)
    decisions = []
    for authorization in call.authorizations:
        request = Request(authorization.action, authorization.resource, principal, {**keys, **authorization.keys})
        decision = evaluate(request, identity, policies.resource_policies(authorization.resource))
        decisions.append(decision)
        if not decision.allowed:
            break  # AWS stops at the first refusal; its message names that one
    return Verdict(call, principal, tuple(decisions))


def authorize_request(request: HttpRequest, principal: Principal, policies: PolicySource, *, region: str,
                      secure_transport: bool = True, now: datetime | None = None, source_ip: str | None = None,
                      lookups: Lookups | None = None) -> Verdict:
    """The gateway's hook: the call `request` makes, authorized for `principal`.

    `secure_transport`: whether the client used TLS. The local endpoint is plain HTTP standing in for AWS's HTTPS
    endpoints, which every SDK uses, so the gateway passes True; False evaluates a TLS-only bucket policy's deny."""
    call = map_request(request, account=principal.account, region=region, lookups=lookups)
    keys = global_keys(principal, region=region, secure_transport=secure_transport, now=now, source_ip=source_ip)
    return authorize(call, principal, policies, keys)
