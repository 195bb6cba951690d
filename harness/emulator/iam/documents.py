"""Policy documents (JSON) read into typed statements, checked as IAM checks them when a policy is attached.

A document IAM would refuse (`MalformedPolicyDocument`) raises `PolicyError` naming the policy, the statement and
what is wrong, rather than being evaluated some other way.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.emulator.iam.conditions import Operator, parse_operator

PolicyKind = Literal["identity", "resource"]
Effect = Literal["Allow", "Deny"]
VARIABLES_VERSION = "2012-10-17"
_STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
                             "NotPrincipal", "Condition"})
_PRINCIPAL_KINDS = ("AWS", "Service", "Federated", "CanonicalUser")


class PolicyError(ValueError):
    """A policy document IAM would refuse; the message names the policy and the statement."""


@dataclass(frozen=True)
class Principals:
    """A Principal/NotPrincipal element: `anyone` for `"*"` (or `{"AWS": "*"}`), else identifiers per kind."""

    anyone: bool = False
    aws: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    federated: frozenset[str] = frozenset()
    canonical: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Clause:
    operator: Operator
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    # None: no Resource element (a resource policy's statement is about the resource it is attached to).
    resources: tuple[str, ...] | None
    not_resource: bool
    principals: Principals | None = None
    not_principal: bool = False
    conditions: tuple[Clause, ...] = ()

    @property
    def label(self) -> str:
        return f"statement {self.index}" + (f" ({self.sid})" if self.sid else "")


@dataclass(frozen=True)
class Policy:
    """One document: `name` says where it came from (`role/<role>/inline/<policy>`, `bucket/<bucket>`, ...)."""

    name: str
    kind: PolicyKind
    statements: tuple[Statement, ...]
    version: str = VARIABLES_VERSION
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def variables(self) -> bool:
        """Only Version 2012-10-17 interprets `${...}` (an older or missing Version takes it literally)."""
        return self.version == VARIABLES_VERSION


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError(f"{what} is an empty list")
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str | int | float):
            out.append(str(item))
        else:
            raise ValueError(f"{what} holds {json.dumps(item)[:80]}, not a string")
    return tuple(out)


def _principals(value: Any) -> Principals:
    if value == "*":
        return Principals(anyone=True)
    if not isinstance(value, dict) or not value:
        raise ValueError(f'Principal must be "*" or an object such as {{"AWS": ARN}}, got {json.dumps(value)[:80]}')
    unknown = set(value) - set(_PRINCIPAL_KINDS)
    if unknown:
        raise ValueError(f"Principal kind {sorted(unknown)[0]!r} is not one of {', '.join(_PRINCIPAL_KINDS)}")
    sets = {kind: frozenset(_strings(value[kind], f"Principal {kind}")) for kind in value}
    aws = sets.get("AWS", frozenset())
    return Principals(anyone="*" in aws, aws=aws - {"*"}, services=sets.get("Service", frozenset()),
                      federated=sets.get("Federated", frozenset()), canonical=sets.get("CanonicalUser", frozenset()))


def _conditions(value: Any) -> tuple[Clause, ...]:
    if not isinstance(value, dict):
        raise ValueError("Condition must be an object of operators")
    clauses = []
    for name, block in value.items():
        operator = parse_operator(name)
        if not isinstance(block, dict) or not block:
            raise ValueError(f"Condition {name} must be an object of condition keys")
        for key, values in block.items():
            clauses.append(Clause(operator, key, _strings(values, f"Condition {name} {key}")))
    return tuple(clauses)


def _one_of(raw: Mapping[str, Any], positive: str, negative: str, required: bool) -> tuple[tuple[str, ...] | None,
                                                                                          bool]:
    if positive in raw and negative in raw:
        raise ValueError(f"has both {positive} and {negative}")
    if positive in raw:
        return _strings(raw[positive], positive), False
    if negative in raw:
        return _strings(raw[negative], negative), True
    if required:
        raise ValueError(f"has neither {positive} nor {negative}")
    return None, False


def _statement(raw: Any, index: int, kind: PolicyKind) -> Statement:
    if not isinstance(raw, dict):
        raise ValueError("is not an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise ValueError(f"has an unknown element {sorted(unknown)[0]!r}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValueError(f'Effect must be "Allow" or "Deny", got {json.dumps(effect)}')
    actions, not_action = _one_of(raw, "Action", "NotAction", required=True)
    # IAM requires a Resource in identity policies; a resource policy's statement may leave it out (a trust policy).
    resources, not_resource = _one_of(raw, "Resource", "NotResource", required=kind == "identity")
    principals: Principals | None = None
    not_principal = False
    if "Principal" in raw or "NotPrincipal" in raw:
        if kind == "identity":
            raise ValueError("has a Principal, which identity policies cannot have")
        if "Principal" in raw and "NotPrincipal" in raw:
            raise ValueError("has both Principal and NotPrincipal")
        not_principal = "NotPrincipal" in raw
        principals = _principals(raw["NotPrincipal" if not_principal else "Principal"])
    elif kind == "resource":
        raise ValueError("has no Principal, which resource policies require")
    sid = raw.get("Sid")
    assert actions is not None
    return Statement(index=index, sid=str(sid) if sid is not None else None, effect=effect, actions=actions,
                     not_action=not_action, resources=resources, not_resource=not_resource, principals=principals,
                     not_principal=not_principal, conditions=_conditions(raw.get("Condition", {})))


def load_document(document: str | Mapping[str, Any]) -> Mapping[str, Any]:
    """A document as given: a mapping, JSON text, or JSON URL-encoded as IAM's query API returns it."""
    if not isinstance(document, str):
        return document
    text = document.strip()
    if text.startswith("%7B") or text.startswith("%7b"):
        text = urllib.parse.unquote(text)
    loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError("a policy document is a JSON object")
    return loaded


def parse_policy(document: str | Mapping[str, Any], name: str, kind: PolicyKind) -> Policy:
    try:
        raw = load_document(document)
    except ValueError as exc:
        raise PolicyError(f"policy {name}: not a JSON policy document ({exc})") from None
    version = raw.get("Version", "2008-10-17")
    if version not in ("2012-10-17", "2008-10-17"):
        raise PolicyError(f'policy {name}: Version must be "2012-10-17" or "2008-10-17", got {json.dumps(version)}')
    unknown = set(raw) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"policy {name}: unknown top-level element {sorted(unknown)[0]!r}")
    if "Statement" not in raw:
        raise PolicyError(f"policy {name}: has no Statement")
    items = raw["Statement"] if isinstance(raw["Statement"], list) else [raw["Statement"]]
    statements = []
    for index, item in enumerate(items):
        try:
            statements.append(_statement(item, index, kind))
        except ValueError as exc:
            sid = item.get("Sid") if isinstance(item, dict) else None
            label = f"statement {index}" + (f" ({sid})" if sid else "")
            raise PolicyError(f"policy {name}: {label} {exc}") from None
    return Policy(name=name, kind=kind, statements=tuple(statements), version=version, document=raw)
