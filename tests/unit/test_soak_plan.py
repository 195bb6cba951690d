"""The soak's options and its seeded fault plan (pure)."""

from __future__ import annotations

import math
import random

import pytest

from harness.workflows import soak


@pytest.mark.parametrize(("minutes", "outage_s"), [(0.5, 3.0), (1, 15.0), (3, 60.0)])
def test_faults_are_planned_one_at_a_time_every_kind_at_least_once_inside_the_run(minutes: float,
                                                                                  outage_s: float) -> None:
    duration = minutes * 60

    plan = soak.plan_faults(duration, random.Random(11), outage_s=outage_s)

    assert {f.kind for f in plan} == set(soak.FAULT_KINDS)
    # Every kind once per started minute, except the long database outage: once per run.
    assert len(plan) == (len(soak.FAULT_KINDS) - 1) * max(1, int(minutes + 0.999)) + 1
    assert [f.duration_s for f in plan if f.kind == "db_outage"] == [outage_s]
    for fault, following in zip(plan, plan[1:], strict=False):
        assert fault.at_s + fault.duration_s <= fault.window_end_s <= following.at_s
    assert plan[0].at_s >= soak.QUIET_EDGE_S and plan[-1].window_end_s <= duration - soak.QUIET_EDGE_S + 0.01


def test_a_run_too_short_for_its_faults_is_refused_with_what_to_change() -> None:
    with pytest.raises(soak.SoakError, match="need at least .* s of production.*raise --minutes"):
        soak.plan_faults(60, random.Random(1), outage_s=60)

    only = soak.plan_faults(60, random.Random(1), kinds=("db_outage",), outage_s=40)
    assert [(f.kind, f.duration_s) for f in only] == [("db_outage", 40.0)]


def test_a_run_without_room_between_its_quiet_edges_plans_nothing() -> None:
    assert soak.plan_faults(2 * soak.QUIET_EDGE_S, random.Random(1)) == []
    assert soak.plan_faults(60, random.Random(1), kinds=()) == []


def test_the_fault_moments_are_random_but_repeatable_with_a_seed() -> None:
    assert soak.plan_faults(60, random.Random(1)) == soak.plan_faults(60, random.Random(1))
    assert soak.plan_faults(60, random.Random(1)) != soak.plan_faults(60, random.Random(2))


def test_fault_kinds_are_parsed_in_their_own_order_and_an_unknown_one_names_the_choices() -> None:
    assert soak.parse_fault_kinds([]) == soak.FAULT_KINDS
    assert soak.parse_fault_kinds(["db_outage", "worker_kill"]) == ("worker_kill", "db_outage")
    assert soak.parse_fault_kinds(["control_plane_kill"]) == ("control_plane_kill",)
    with pytest.raises(soak.SoakError) as raised:
        soak.parse_fault_kinds(["worker_kill", "daemon_kill"])
    assert str(raised.value) == ("unknown fault kind daemon_kill: choose from postgres_restart, worker_kill, "
                                 "runner_pause, runner_kill, control_plane_kill, db_outage")


@pytest.mark.parametrize(("text", "rate"), [("20/s", 20.0), ("20", 20.0), ("0.5/s", 0.5), ("2000/s", 2000.0)])
def test_a_steady_rate_is_read_in_events_per_second(text: str, rate: float) -> None:
    assert soak.parse_soak_rate(text) == rate


@pytest.mark.parametrize(("text", "message"), [
    ("max", "--rate must be a steady rate in events per second, e.g. 20/s (got 'max')"),
    ("2001/s", "--rate must be more than 0 and at most 2000/s, got 2001/s"),
    ("fast", "--rate must look like 50/s (events per second) or max, got 'fast'"),
])
def test_an_unsteady_or_impossible_rate_is_refused(text: str, message: str) -> None:
    with pytest.raises(soak.SoakError) as raised:
        soak.parse_soak_rate(text)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("minutes", [0, -1, math.nan, math.inf, soak.MAX_MINUTES + 1])
def test_minutes_outside_a_day_are_refused(minutes: float) -> None:
    with pytest.raises(soak.SoakError, match="--minutes must be more than 0 and at most 1440"):
        soak.parse_minutes(minutes)


def test_outage_seconds_are_bounded() -> None:
    assert soak.parse_outage_seconds(1) == 1.0
    for bad in (0.5, 601, math.nan):
        with pytest.raises(soak.SoakError, match="--outage-seconds must be from 1 to 600"):
            soak.parse_outage_seconds(bad)
