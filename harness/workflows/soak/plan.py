"""Soak options and the fault plan: pure, seeded, tested without a stack."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.workflows import stream as streaming

FaultKind = Literal["postgres_restart", "worker_kill", "runner_pause", "runner_kill", "control_plane_kill",
                    "db_outage"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "postgres_restart", "worker_kill", "runner_pause", "runner_kill", "control_plane_kill", "db_outage")
ObjectKind = Literal["delivered", "error"]

REPORT_FILE = "soak-report.json"
MAX_MINUTES = 24 * 60
MAX_RATE = 2_000.0
# Faults stay out of the first and last seconds of the run: the first records show the stack works before anything
# breaks, and the last fault has ended before production stops.
QUIET_EDGE_S = 5.0
FAULT_DURATION_S = (3.0, 8.0)
# A kill is instantaneous; its slot is the time to see the killed part recover.
KILL_DURATION_S = (2.0, 3.0)
# Longer than the processor's retry window (NumberOfRetries 3 with 1, 2 and 4 s between attempts: about 7 s plus the
# invocations), so a batch that arrives during the outage fails into the error output and the redrive must bring it
# back. docs/reliability.md measures a 60 s outage (`--outage-seconds 60`).
DEFAULT_OUTAGE_S = 15.0
MAX_OUTAGE_S = 600.0
# Faults may fill at most this share of the run between the quiet edges: the rest is time to recover between them.
FAULT_SHARE = 0.85
MIN_SCALED_FAULT_S = 2.0
WORKER_BUSY_POLL_S = 0.01
DEFAULT_DRAIN_TIMEOUT_S = 240.0
COLLECT_INTERVAL_S = 3.0
# After everything is found, how long at most to wait for whatever the delivery stream may still hold (a duplicate on
# its way).
SETTLE_MAX_S = 60.0
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


def parse_fault_kinds(names: Sequence[str]) -> tuple[FaultKind, ...]:
    """`--fault` values (none: every kind) -> the kinds, in FAULT_KINDS order; an unknown name says which exist."""
    unknown = sorted(set(names) - set(FAULT_KINDS))
    if unknown:
        raise SoakError(f"unknown fault kind {', '.join(unknown)}: choose from {', '.join(FAULT_KINDS)}")
    return tuple(k for k in FAULT_KINDS if k in names) if names else FAULT_KINDS


def parse_outage_seconds(value: float) -> float:
    if not math.isfinite(value) or not 1 <= value <= MAX_OUTAGE_S:
        raise SoakError(f"--outage-seconds must be from 1 to {MAX_OUTAGE_S:g}, got {value:g}")
    return float(value)


def _length(kind: FaultKind, rng: random.Random, outage_s: float) -> float:
    if kind == "db_outage":
        return outage_s
    return rng.uniform(*(KILL_DURATION_S if kind in ("runner_kill", "control_plane_kill") else FAULT_DURATION_S))


def plan_faults(duration_s: float, rng: random.Random, *, kinds: Sequence[FaultKind] = FAULT_KINDS,
                outage_s: float = DEFAULT_OUTAGE_S) -> list[PlannedFault]:
    """Every kind at least once (once per started minute each, in random order; the long `db_outage` once per run), at
    random moments, one at a time. The run between the quiet edges is cut into one slot per fault, sized by the
    fault's length, and each fault starts at a random point of its slot early enough to end inside it. Short faults
    are shortened (to 2 s at least) when they would not fit; a run too short for its faults is refused."""
    window = duration_s - 2 * QUIET_EDGE_S
    if window <= 0 or not kinds:
        return []
    rounds = max(1, math.ceil(duration_s / 60.0 - 1e-9))
    order: list[FaultKind] = []
    for round_index in range(rounds):  # shuffled within each round, so every minute sees each kind once
        wanted = [k for k in kinds if k != "db_outage" or round_index == 0]
        order += rng.sample(wanted, len(wanted))
    lengths = [_length(kind, rng, outage_s) for kind in order]
    budget = window * FAULT_SHARE
    for _ in range(len(order)):  # shrink the short faults above the floor until they fit (or all sit on it)
        over = sum(lengths) - budget
        shrinkable = sum(length - MIN_SCALED_FAULT_S for kind, length in zip(order, lengths, strict=True)
                         if kind != "db_outage" and length > MIN_SCALED_FAULT_S)
        if over <= 1e-9 or shrinkable <= 1e-9:
            break
        keep = max(0.0, 1.0 - over / shrinkable)
        lengths = [length if kind == "db_outage" or length <= MIN_SCALED_FAULT_S
                   else MIN_SCALED_FAULT_S + (length - MIN_SCALED_FAULT_S) * keep
                   for kind, length in zip(order, lengths, strict=True)]
    if sum(lengths) > budget + 1e-6:
        needed = sum(lengths) / FAULT_SHARE + 2 * QUIET_EDGE_S
        raise SoakError(f"the {len(order)} planned fault(s) ({', '.join(sorted(set(order)))}) need at least "
                        f"{needed:.0f} s of "
                        f"production, the run has {duration_s:.0f} s: raise --minutes, lower --outage-seconds, or "
                        "choose fewer kinds with --fault")
    total = sum(lengths)
    plan = []
    start = QUIET_EDGE_S
    for kind, length in zip(order, lengths, strict=True):
        slot = window * length / total
        end = start + slot
        at = start + rng.uniform(0.0, max(0.0, slot - length) * 0.5)
        plan.append(PlannedFault(round(at, 2), kind, round(length, 2), round(end, 2)))
        start = end
    return plan
