"""Condition operators, evaluated as IAM documents them (IAM User Guide, "IAM JSON policy elements: Condition
operators" and "Multivalued context keys").

A condition block is true when every operator in it is true; an operator is true when every key under it is; a key is
true when the request's value matches ANY of the policy's values (for a negated operator, `StringNotEquals` and its
kind: matches NONE of them). Request values are always tuples: a single-valued key has one value, a multivalued key
(`aws:TagKeys`) any number.

- A key missing from the request: positive operators are false, negated ones true (`StringNotEquals` on a missing
  key holds), `...IfExists` true, `Null: true` true.
- `ForAllValues:` true when every request value satisfies the operator (vacuously true for a missing key),
  `ForAnyValue:` when at least one does (false for a missing key).
- A multivalued request key under a plain operator is read as `ForAnyValue:` for a positive operator and as its
  negation for a negated one (IAM advises against this form; it is not used by the program).
- A request value or policy value the operator cannot read (a number that is not one, a malformed date or address)
  matches nothing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator as op
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from harness.emulator.iam.patterns import arn_matches, glob_match, substituted_text

Qualifier = Literal["", "ForAllValues", "ForAnyValue"]
Keys = Mapping[str, Sequence[str]]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _numeric(test: Callable[[float, float], bool]) -> Callable[[str, str, Keys | None], bool]:
    def match(request: str, policy: str, keys: Keys | None) -> bool:
        left, right = _number(request), _number(policy)
        return left is not None and right is not None and test(left, right)
    return match


def _dated(test: Callable[[datetime, datetime], bool]) -> Callable[[str, str, Keys | None], bool]:
    def match(request: str, policy: str, keys: Keys | None) -> bool:
        left, right = _date(request), _date(policy)
        return left is not None and right is not None and test(left, right)
    return match


def _ip(request: str, policy: str, keys: Keys | None) -> bool:
    try:
        address = ipaddress.ip_address(request)
        network = ipaddress.ip_network(policy, strict=False)
    except ValueError:
        return False
    return address.version == network.version and address in network


def _binary(request: str, policy: str, keys: Keys | None) -> bool:
    try:
        return base64.b64decode(request, validate=True) == base64.b64decode(policy, validate=True)
    except (binascii.Error, ValueError):
        return False


def _string_equals(request: str, policy: str, keys: Keys | None) -> bool:
    expected = substituted_text(policy, keys)  # StringEquals takes policy variables too, and no wildcards
    return expected is not None and request == expected


def _string_equals_ignore_case(request: str, policy: str, keys: Keys | None) -> bool:
    expected = substituted_text(policy, keys)
    return expected is not None and request.casefold() == expected.casefold()


def _bool(request: str, policy: str, keys: Keys | None) -> bool:
    return request.lower() == policy.lower()


# base operator -> (positive test of one request value against one policy value, negated)
OPERATORS: dict[str, tuple[Callable[[str, str, Keys | None], bool], bool]] = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (lambda r, p, k: glob_match(p, r, keys=k), False),
    "StringNotLike": (lambda r, p, k: glob_match(p, r, keys=k), True),
    "NumericEquals": (_numeric(op.eq), False),
    "NumericNotEquals": (_numeric(op.eq), True),
    "NumericLessThan": (_numeric(op.lt), False),
    "NumericLessThanEquals": (_numeric(op.le), False),
    "NumericGreaterThan": (_numeric(op.gt), False),
    "NumericGreaterThanEquals": (_numeric(op.ge), False),
    "DateEquals": (_dated(op.eq), False),
    "DateNotEquals": (_dated(op.eq), True),
    "DateLessThan": (_dated(op.lt), False),
    "DateLessThanEquals": (_dated(op.le), False),
    "DateGreaterThan": (_dated(op.gt), False),
    "DateGreaterThanEquals": (_dated(op.ge), False),
    "Bool": (_bool, False),
    "BinaryEquals": (_binary, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    # ArnEquals takes wildcards like ArnLike (IAM documents both the same way).
    "ArnEquals": (lambda r, p, k: arn_matches(p, r, k), False),
    "ArnLike": (lambda r, p, k: arn_matches(p, r, k), False),
    "ArnNotEquals": (lambda r, p, k: arn_matches(p, r, k), True),
    "ArnNotLike": (lambda r, p, k: arn_matches(p, r, k), True),
}


@dataclass(frozen=True)
class Operator:
    """`ForAllValues:StringLikeIfExists` -> Operator("StringLike", "ForAllValues", if_exists=True)."""

    base: str
    qualifier: Qualifier = ""
    if_exists: bool = False

    @property
    def name(self) -> str:
        prefix = f"{self.qualifier}:" if self.qualifier else ""
        return f"{prefix}{self.base}{'IfExists' if self.if_exists else ''}"


def parse_operator(name: str) -> Operator:
    """The operator a condition block names; ValueError for one IAM does not have."""
    qualifier, colon, rest = name.partition(":")
    if not colon:
        qualifier, rest = "", name
    if qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise ValueError(f"unknown condition set operator {qualifier!r} in {name!r} (ForAllValues or ForAnyValue)")
    if_exists = rest.endswith("IfExists") and rest != "IfExists"
    base = rest.removesuffix("IfExists") if if_exists else rest
    if base == "Null":
        if if_exists or qualifier:
            raise ValueError(f"condition operator {name!r}: Null takes neither IfExists nor a set operator")
    elif base not in OPERATORS:
        raise ValueError(f"unknown condition operator {name!r}")
    return Operator(base, qualifier, if_exists)  # type: ignore[arg-type]


def _value_holds(test: Callable[[str, str, Keys | None], bool], negated: bool, request: str,
                 policy_values: Sequence[str], keys: Keys | None) -> bool:
    matched = any(test(request, p, keys) for p in policy_values)
    return not matched if negated else matched


def clause_holds(operator: Operator, key: str, policy_values: Sequence[str], request_keys: Keys,
                 variables: bool = True) -> bool:
    """One key under one operator. `request_keys` has lower-cased names; `variables`: the policy's Version allows
    `${...}` in values."""
    present = request_keys.get(key.lower())
    values = tuple(present) if present is not None else ()
    if operator.base == "Null":
        # "true": the key must be absent; "false": present. Several values: any of them.
        return any((not values) == (p.lower() == "true") for p in policy_values)
    if not values and operator.if_exists:
        return True
    test, negated = OPERATORS[operator.base]
    keys = request_keys if variables else None
    if operator.qualifier == "ForAllValues":
        return all(_value_holds(test, negated, v, policy_values, keys) for v in values)
    if operator.qualifier == "ForAnyValue":
        return any(_value_holds(test, negated, v, policy_values, keys) for v in values)
    if not values:
        return negated
    if negated:
        return not any(_value_holds(test, False, v, policy_values, keys) for v in values)
    return any(_value_holds(test, False, v, policy_values, keys) for v in values)
