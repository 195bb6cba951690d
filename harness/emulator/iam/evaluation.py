"""IAM's decision for one request in one account (IAM User Guide, "Policy evaluation logic"):

1. An explicit Deny in any policy that applies (identity or resource) wins.
2. Otherwise an Allow wins if it comes from an identity policy of the caller (inline or attached managed), or from the
   resource's policy naming the caller: within one account either suffices. A resource policy that names the account
   (`arn:aws:iam::<account>:root` or the bare account id) delegates to the account's identity policies and grants
   nothing by itself; `"*"`, the role ARN, the session ARN or the service name grant.
3. Otherwise the request is implicitly denied.

Not modelled (the program uses none): service control policies, permission boundaries, session policies, VPC
endpoint policies, cross-account access.

The decision names the statement that decided it, for the AccessDenied message and `harness iam report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.emulator.iam.conditions import clause_holds
from harness.emulator.iam.context import Principal, Request
from harness.emulator.iam.documents import Policy, PolicyKind, Statement
from harness.emulator.iam.patterns import action_matches, arn_matches

Outcome = Literal["allowed", "explicit_deny", "implicit_deny"]
PrincipalMatch = Literal["none", "account", "specific"]


@dataclass(frozen=True)
class Match:
    """A statement that applied: the policy it belongs to and the statement itself."""

    policy: str
    kind: PolicyKind
    statement: Statement

    def describe(self) -> str:
        return f"{self.policy} {self.statement.label}"


@dataclass(frozen=True)
class Decision:
    request: Request
    outcome: Outcome
    decided_by: Match | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome == "allowed"

    @property
    def reason(self) -> str:
        """AWS's words for why (the end of its AccessDenied message)."""
        if self.outcome == "explicit_deny" and self.decided_by is not None:
            where = "an identity-based policy" if self.decided_by.kind == "identity" else "a resource-based policy"
            return f"with an explicit deny in {where}"
        if self.outcome == "implicit_deny":
            return f"because no identity-based policy allows the {self.request.action} action"
        return f"allowed by {self.decided_by.describe()}" if self.decided_by else "allowed"

    def explain(self) -> str:
        """One line: what was asked, the outcome, and the statement that decided it."""
        asked = f"{self.request.principal.arn} {self.request.action} on {self.request.resource}"
        if self.outcome == "allowed":
            return f"{asked}: {self.reason}"
        by = f" ({self.decided_by.describe()})" if self.decided_by else ""
        return f"{asked}: denied {self.reason}{by}"


def principal_match(statement: Statement, principal: Principal) -> PrincipalMatch:
    """Whether a resource policy's statement is about this caller: `specific` (named, or everyone), `account` (its
    account is named: a delegation to the account's identity policies), or `none`."""
    named = statement.principals
    if named is None:
        return "specific"  # identity policies: always about their holder
    identities = {principal.arn}
    if statement.not_principal:
        # NotPrincipal exempts a role session only when the session ARN (not the role ARN) or its account is listed.
        listed = bool(named.anyone or identities & named.aws or principal.account_root in named.aws
                      or principal.account in named.aws or (principal.service and principal.service in named.services))
        return "none" if listed else "specific"
    if named.anyone:
        return "specific"
    if principal.service is not None:
        return "specific" if principal.service in named.services else "none"
    if principal.role_arn:
        identities.add(principal.role_arn)
    if identities & named.aws:
        return "specific"
    if principal.account_root in named.aws or principal.account in named.aws:
        return "account"
    return "none"


def statement_matches(statement: Statement, policy: Policy, request: Request) -> bool:
    """Action, resource and conditions (not the principal) of one statement, for one request."""
    action_hit = any(action_matches(p, request.action) for p in statement.actions)
    if action_hit == statement.not_action:
        return False
    if statement.resources is not None:
        keys = request.keys if policy.variables else None
        resource_hit = any(arn_matches(p, request.resource, keys) for p in statement.resources)
        if resource_hit == statement.not_resource:
            return False
    return all(clause_holds(c.operator, c.key, c.values, request.keys, policy.variables)
               for c in statement.conditions)


def evaluate(request: Request, identity_policies: Sequence[Policy] = (),
             resource_policies: Sequence[Policy] = ()) -> Decision:
    """The decision for `request`; `identity_policies` are the caller's, `resource_policies` the resource's."""
    deny: Match | None = None
    identity_allow: Match | None = None
    resource_allow: Match | None = None
    for policy in (*identity_policies, *resource_policies):
        for statement in policy.statements:
            who = principal_match(statement, request.principal) if policy.kind == "resource" else "specific"
            if who == "none" or not statement_matches(statement, policy, request):
                continue
            match = Match(policy.name, policy.kind, statement)
            if statement.effect == "Deny":
                deny = deny or match
            elif policy.kind == "identity":
                identity_allow = identity_allow or match
            elif who == "specific":
                resource_allow = resource_allow or match
    if deny is not None:
        return Decision(request, "explicit_deny", deny)
    allow = identity_allow or resource_allow
    if allow is not None:
        return Decision(request, "allowed", allow)
    return Decision(request, "implicit_deny", None)
