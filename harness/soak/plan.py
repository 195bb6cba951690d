"""Soak options and the fault plan: pure, seeded, tested without a stack."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from harness import stream as streaming

FaultKind = Literal["postgres_restart", "worker_kill", "runner_pause"]
FAULT_KINDS: tuple[FaultKind, ...] = ("postgres_restart", "worker_kill", "runner_pause")
ObjectKind = Literal["delivered", "error"]

REPORT_FILE = "soak-report.json"
MAX_MINUTES = 24 * 60
MAX_RATE = 2_000.0
# Faults stay out of the first and last seconds of the run: the first records show the stack works before anything
# breaks, and the last fault has ended before production stops.
QUIET_EDGE_S = 5.0
FAULT_DURATION_S = (3.0, 8.0)
WORKER_BUSY_POLL_S = 0.01
DEFAULT_DRAIN_TIMEOUT_S = 240.0
COLLECT_INTERVAL_S = 3.0
PUT_ATTEMPTS = 5


class SoakError(RuntimeError):
    """A user-facing problem before or while soaking (stack not ready, bad option): printed as one message."""


# ---------------------------------------------------------------------------------------------------------------------
# options (pure)


def parse_minutes(value: float) -> float:
    if not math.isfinite(value) or value <= 0 or value > MAX_MINUTES:
        raise SoakError(f"--minutes must be more than 0 and at most {MAX_MINUTES} (a day), got {value:g}")
    return float(value)


def parse_soak_rate(text: str) -> float:
    """`20/s` or `20` -> 20.0; a soak holds a steady rate, so `max` is refused."""
    try:
        rate = streaming.parse_rate(text)
    except ValueError as err:
        raise SoakError(str(err)) from None
    if rate is None:
        raise SoakError(f"--rate must be a steady rate in events per second, e.g. 20/s (got {text!r}): a soak "
                        "measures what the stack sustains, `max` would only measure how fast Kinesis accepts")
    if not 0 < rate <= MAX_RATE:
        raise SoakError(f"--rate must be more than 0 and at most {MAX_RATE:g}/s, got {rate:g}/s")
    return rate


# ---------------------------------------------------------------------------------------------------------------------
# the fault plan (pure)


@dataclass(frozen=True)
class PlannedFault:
    at_s: float  # seconds after the start of production
    kind: FaultKind
    duration_s: float  # how long PostgreSQL stays down / the runner stays paused / we wait for a busy worker
    window_end_s: float  # the fault must be over by then (the next one's slot begins)


def plan_faults(duration_s: float, rng: random.Random) -> list[PlannedFault]:
    """Every kind at least once (once per started minute each, in random order), at random moments, one at a time:
    the run between the quiet edges is cut into one slot per fault and each fault starts at a random point of its slot
    early enough to end inside it."""
    window = duration_s - 2 * QUIET_EDGE_S
    if window <= 0:
        return []
    rounds = max(1, math.ceil(duration_s / 60.0 - 1e-9))
    kinds: list[FaultKind] = []
    for _ in range(rounds):  # shuffled within each round, so every minute sees each kind once
        kinds += rng.sample(FAULT_KINDS, len(FAULT_KINDS))
    slot = window / len(kinds)
    plan = []
    for index, kind in enumerate(kinds):
        start, end = QUIET_EDGE_S + index * slot, QUIET_EDGE_S + (index + 1) * slot
        length = min(rng.uniform(*FAULT_DURATION_S), slot * 0.6)
        at = start + rng.uniform(0.0, max(0.0, slot - length) * 0.5)
        plan.append(PlannedFault(round(at, 2), kind, round(length, 2), round(end, 2)))
    return plan


