"""The goals (from the streaming and vector issues) checked against a results file: met, missed or not measured, never
guessed. Each benchmark registers its own goals (`Benchmark.goals`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bench.registry import Goal

GoalStatus = Literal["met", "missed", "not measured"]


@dataclass(frozen=True)
class GoalCheck:
    goal: Goal
    value: float | None
    status: GoalStatus


def lookup(results: Mapping[str, Any], dotted: str) -> Any:
    """The value at `a.b.c` in nested mappings; None when any part is missing."""
    node: Any = results
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def check_goals(results: Mapping[str, Any], goals: Iterable[Goal]) -> list[GoalCheck]:
    checks = []
    for goal in goals:
        value = lookup(results, goal.key)
        if not isinstance(value, int | float):
            checks.append(GoalCheck(goal, None, "not measured"))
            continue
        met = value >= goal.target if goal.op == ">=" else value <= goal.target
        checks.append(GoalCheck(goal, float(value), "met" if met else "missed"))
    return checks
