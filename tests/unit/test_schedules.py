"""Schedule arithmetic (`harness.emulator.schedules`) and the firing rule (`harness.emulator.scheduler.due_to_fire`):
AWS's rate and six-field cron expressions, checked on dates from the calendar and, by property, against a
minute-by-minute reference written independently of the implementation."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.emulator import schedules
from harness.emulator.scheduler import GRACE_S, due_to_fire
from harness.emulator.schedules import Cron, Rate, ScheduleError, next_cron_time, parse_schedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def next_of(expression: str, after: str) -> str:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, Cron)
    moment = next_cron_time(schedule, at(after))
    return moment.strftime("%Y-%m-%d %a %H:%M") if moment else "never"


# ---- parsing --------------------------------------------------------------------------------------------------------


def test_rates_in_minutes_hours_and_days_with_aws_singular_and_plural_units() -> None:
    assert parse_schedule("rate(1 minute)") == Rate(60)
    assert parse_schedule("rate(5 minutes)") == Rate(300)
    assert parse_schedule("rate(1 hour)") == Rate(3600)
    assert parse_schedule("rate(2 days)") == Rate(172800)
    for wrong in ("rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)"):
        with pytest.raises(ScheduleError):
            parse_schedule(wrong)


@pytest.mark.parametrize(("expression", "reason"), [
    ("cron(0 10 * * ?)", "six fields"),
    ("cron(0 10 * * * *)", "exactly one of day-of-month and day-of-week must be ?"),
    ("cron(0 10 ? * ? *)", "exactly one of day-of-month and day-of-week must be ?"),
    ("cron(60 10 * * ? *)", "minutes: 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
    ("cron(0 10 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
    ("cron(0 10 ? * 2/2 *)", "day-of-week: / is not allowed here"),
    ("cron(0 10 * FOO ? *)", "month: 'FOO' is not a number or a name"),
    ("cron(0 10 * * ? 2200)", "year: 2200 is outside 1970-2199"),
    ("cron(0 10 20-10 * ? *)", "the range 20-10 runs backwards"),
    ("every minute", "neither rate(value unit) nor cron(six fields)"),
])
def test_expressions_aws_refuses_are_refused_naming_the_part(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_schedule(expression)


# ---- cron on the calendar (2026-12-04 is a Friday) ------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("cron(0 3 * * ? *)", "2026-12-04 18:45", "2026-12-05 Sat 03:00"),  # the Glue schedule's example: daily 03:00
    ("cron(0 3 * * ? *)", "2026-12-04 02:59:59", "2026-12-04 Fri 03:00"),
    ("cron(0 3 * * ? *)", "2026-12-04 03:00", "2026-12-05 Sat 03:00"),  # strictly after
    ("cron(0/15 * * * ? *)", "2026-12-04 18:45", "2026-12-04 Fri 19:00"),
    ("cron(0 18 ? * MON-FRI *)", "2026-12-04 18:45", "2026-12-07 Mon 18:00"),
    ("cron(0/5 8-17 ? * MON-FRI *)", "2026-12-04 17:56", "2026-12-07 Mon 08:00"),
    ("cron(0 8 1 * ? *)", "2026-12-04 18:45", "2027-01-01 Fri 08:00"),
    ("cron(0 9 ? * 2#1 *)", "2026-12-04 18:45", "2026-12-07 Mon 09:00"),  # the first Monday
    ("cron(0 9 ? * 2#1 *)", "2026-12-07 09:00", "2027-01-04 Mon 09:00"),
    ("cron(0 9 ? * 6L *)", "2026-12-04 18:45", "2026-12-25 Fri 09:00"),  # the last Friday
    ("cron(0 9 ? * L *)", "2026-12-04 18:45", "2026-12-05 Sat 09:00"),  # L alone: Saturday, the week's last day
    ("cron(0 0 L * ? *)", "2026-02-01 00:00", "2026-02-28 Sat 00:00"),
    ("cron(0 0 LW * ? *)", "2026-02-01 00:00", "2026-02-27 Fri 00:00"),  # the 28th is a Saturday
    ("cron(0 0 LW * ? *)", "2026-05-01 00:00", "2026-05-29 Fri 00:00"),  # the 31st is a Sunday
    ("cron(0 0 1W * ? *)", "2026-07-31 00:00", "2026-08-03 Mon 00:00"),  # the 1st is a Saturday: not July's 31st
    ("cron(0 0 15W * ? *)", "2026-08-02 00:00", "2026-08-14 Fri 00:00"),  # the 15th is a Saturday
    ("cron(0 0 31W * ? *)", "2026-05-02 00:00", "2026-05-29 Fri 00:00"),  # the 31st is a Sunday: not June's 1st
    ("cron(0 12 29 FEB ? *)", "2026-03-01 00:00", "2028-02-29 Tue 12:00"),
    ("cron(30 6 * JAN,JUL ? 2027-2028)", "2026-12-04 18:45", "2027-01-01 Fri 06:30"),
    ("cron(0 0 * * ? 2025)", "2026-12-04 18:45", "never"),
    ("cron(0 0 30 FEB ? *)", "2026-12-04 18:45", "never"),
])
def test_cron_next_times_on_the_calendar(expression: str, after: str, expected: str) -> None:
    assert next_of(expression, after) == expected


# ---- cron by property, against a reference ----------------------------------------------------------------------

WEEKDAY_BY_NAME = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


def reference_day(day_of_month: str, day_of_week: str, day: date) -> bool:
    """Whether `day` is selected, written from AWS's definitions rather than the implementation's arithmetic."""
    days_in_month = [date(day.year, day.month, d) for d in range(1, calendar.monthrange(day.year, day.month)[1] + 1)]
    weekdays = [d for d in days_in_month if d.strftime("%a").upper() not in ("SAT", "SUN")]
    weekday = WEEKDAY_BY_NAME[day.strftime("%a").upper()]
    if day_of_month != "?":
        for item in day_of_month.split(","):
            if item == "*" or (item.isdigit() and int(item) == day.day):
                return True
            if item == "L" and day == days_in_month[-1]:
                return True
            if item == "LW" and day == weekdays[-1]:
                return True
            if item.endswith("W") and item[:-1].isdigit() and int(item[:-1]) <= len(days_in_month):
                nearest = min(weekdays, key=lambda d: abs(d.day - int(item[:-1])))
                if day == nearest:
                    return True
        return False
    for item in day_of_week.split(","):
        if item == "*" or (item.isdigit() and int(item) == weekday):
            return True
        if item.endswith("L") and item[:-1].isdigit() and int(item[:-1]) == weekday \
                and (day + timedelta(days=7)).month != day.month:
            return True
        if "#" in item:
            wanted, k = (int(part) for part in item.split("#"))
            same = [d for d in days_in_month if WEEKDAY_BY_NAME[d.strftime("%a").upper()] == wanted]
            if len(same) >= k and same[k - 1] == day:
                return True
    return False


def reference_next(fields: list[str], after: datetime, days: int) -> datetime | None:
    minutes, hours, dom, months, dow = (fields[0], fields[1], fields[2], fields[3], fields[4])
    wanted_minutes = {int(m) for m in minutes.split(",")}
    wanted_hours = {int(h) for h in hours.split(",")}
    wanted_months = set(range(1, 13)) if months == "*" else {int(m) for m in months.split(",")}
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = moment + timedelta(days=days)
    while moment < end:
        if moment.month in wanted_months and reference_day(dom, dow, moment.date()):
            if moment.hour in wanted_hours and moment.minute in wanted_minutes:
                return moment
            moment += timedelta(minutes=1)
        else:
            moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return None


def number_list(low: int, high: int) -> st.SearchStrategy[str]:
    return st.lists(st.integers(low, high), min_size=1, max_size=3, unique=True).map(
        lambda values: ",".join(map(str, values)))


day_of_month_items = st.one_of(st.integers(1, 31).map(str), st.just("L"), st.just("LW"),
                               st.integers(1, 31).map(lambda d: f"{d}W"))
day_of_week_items = st.one_of(st.integers(1, 7).map(str), st.integers(1, 7).map(lambda d: f"{d}L"),
                              st.tuples(st.integers(1, 7), st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"))


@st.composite
def crons(draw: st.DrawFn) -> list[str]:
    if draw(st.booleans()):
        dom = draw(st.one_of(st.just("*"), st.lists(day_of_month_items, min_size=1, max_size=3).map(",".join)))
        dow = "?"
    else:
        dom = "?"
        dow = draw(st.one_of(st.just("*"), st.lists(day_of_week_items, min_size=1, max_size=3).map(",".join)))
    months = draw(st.one_of(st.just("*"), number_list(1, 12)))
    return [draw(number_list(0, 59)), draw(number_list(0, 23)), dom, months, dow, "*"]


instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2031, 12, 31),
                        timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(fields=crons(), after=instants)
def test_the_next_cron_time_is_the_first_minute_the_reference_selects(fields: list[str], after: datetime) -> None:
    cron = parse_schedule(f"cron({' '.join(fields)})")
    assert isinstance(cron, Cron)

    found = next_cron_time(cron, after)
    # The reference looks five years ahead; a rarer day (a 5th Thursday in February) is simply further away.
    expected = reference_next(fields, after, days=5 * 366)

    if expected is None:
        assert found is None or found >= after + timedelta(days=5 * 366)
    else:
        assert found == expected
    if found is not None:
        assert found > after and found.second == 0 and schedules.cron_matches(cron, found)


# ---- firing: once per due time, no burst after a pause ---------------------------------------------------------------


def simulate(schedule: schedules.Schedule, anchor: float, ticks: list[float]) -> list[tuple[float, float]]:
    """(tick, due) for every firing the scheduler's rule makes over these ticks."""
    fired = []
    checked = anchor
    for tick in ticks:
        due, _ = due_to_fire(schedule, anchor, checked, tick)
        checked = tick
        if due is not None:
            fired.append((tick, due))
    return fired


gaps = st.lists(st.floats(0.5, 20.0), min_size=1, max_size=80)


@settings(max_examples=200, deadline=None)
@given(minutes=st.integers(1, 3), anchor=st.floats(1.7e9, 1.8e9), steps=gaps)
def test_with_regular_ticks_every_due_time_of_a_rate_fires_exactly_once_and_on_time(
    minutes: int, anchor: float, steps: list[float]
) -> None:
    rate = Rate(60 * minutes)
    ticks = [anchor + sum(steps[: i + 1]) for i in range(len(steps))]

    fired = simulate(rate, anchor, ticks)

    expected = [anchor + k * rate.seconds for k in range(1, 1000) if anchor + k * rate.seconds <= ticks[-1]]
    assert [due for _, due in fired] == expected
    assert all(0 <= tick - due <= 20.0 for tick, due in fired)


@settings(max_examples=200, deadline=None)
@given(expression=st.sampled_from(["rate(1 minute)", "rate(5 minutes)", "cron(* * * * ? *)",
                                   "cron(0/2 * * * ? *)"]),
       anchor=st.floats(1.7e9, 1.8e9), steps=st.lists(st.floats(0.5, 3 * 3600.0), min_size=1, max_size=40))
def test_after_any_pause_each_tick_fires_at_most_once_never_twice_for_a_due_time_and_never_stale(
    expression: str, anchor: float, steps: list[float]
) -> None:
    schedule = parse_schedule(expression)
    ticks = [anchor + sum(steps[: i + 1]) for i in range(len(steps))]

    fired = simulate(schedule, anchor, ticks)

    dues = [due for _, due in fired]
    assert dues == sorted(set(dues)), "a due time fired twice"
    assert len({tick for tick, _ in fired}) == len(fired), "more than one firing in one tick"
    assert all(0 <= tick - due <= GRACE_S for tick, due in fired), "a due time fired late, after a pause"


def test_a_rate_is_first_due_one_period_after_its_anchor() -> None:
    assert schedules.next_due(Rate(60), anchor=100.0, after=50.0) == 160.0
    assert schedules.next_due(Rate(60), anchor=100.0, after=160.0) == 220.0
    assert schedules.latest_due(Rate(60), anchor=100.0, after=100.0, until=400.0) == 400.0


def test_a_pause_skips_the_due_times_in_it_and_says_so() -> None:
    rate = Rate(60)

    due, skipped = due_to_fire(rate, anchor=0.0, checked=0.0, now=3600.0 + 5)

    assert (due, skipped) == (3600.0, True)
    assert due_to_fire(rate, anchor=0.0, checked=3600.0 + 5, now=3660.0 + 1) == (3660.0, False)
    assert due_to_fire(rate, anchor=0.0, checked=0.0, now=59.9) == (None, False)
