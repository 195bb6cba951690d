"""Schedule expressions as EventBridge rules and Glue triggers read them, and when they are due (pure, UTC).

- `rate(value unit)`: unit `minute`/`hour`/`day` for 1, `minutes`/`hours`/`days` otherwise, as AWS requires. A rate
  starts when the rule is created (or enabled): due at anchor + k x period, k >= 1.
- `cron(minutes hours day-of-month month day-of-week year)`, AWS's six fields, UTC, minute precision:

  | field | values | wildcards |
  | --- | --- | --- |
  | minutes | 0-59 | , - * / |
  | hours | 0-23 | , - * / |
  | day-of-month | 1-31 | , - * ? / L W (`L` last day, `15W` weekday nearest the 15th, `LW` last weekday) |
  | month | 1-12 or JAN-DEC | , - * / |
  | day-of-week | 1-7 or SUN-SAT (1 = Sunday) | , - * ? L # (`L` Saturday, `6L` last Friday, `2#1` first Monday) |
  | year | 1970-2199 | , - * / |

  Exactly one of day-of-month and day-of-week is `?`. `a/b` is a, a+b, ... up to the field's maximum, `*/b` starts
  at the minimum.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

FIRST_YEAR, LAST_YEAR = 1970, 2199
RATE = re.compile(r"^rate\((?P<value>\d+) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
CRON = re.compile(r"^cron\((?P<fields>[^()]*)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
MONTHS = {name: number for number, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
WEEKDAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}


class ScheduleError(ValueError):
    """An expression AWS would refuse; the message names the part that is wrong."""


@dataclass(frozen=True)
class Rate:
    seconds: int


@dataclass(frozen=True)
class DayOfMonth:
    days: frozenset[int]  # plain days, 1-31
    last: bool = False  # L
    last_weekday: bool = False  # LW
    nearest_weekday: frozenset[int] = frozenset()  # nW


@dataclass(frozen=True)
class DayOfWeek:
    weekdays: frozenset[int]  # 1 = Sunday ... 7 = Saturday
    last_of_month: frozenset[int] = frozenset()  # nL: the last such weekday of the month
    nth: frozenset[tuple[int, int]] = frozenset()  # n#k: the k-th such weekday of the month


@dataclass(frozen=True)
class Cron:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    years: tuple[int, ...]
    day_of_month: DayOfMonth | None  # None: `?`, the day-of-week field decides
    day_of_week: DayOfWeek | None  # None: `?`


Schedule = Rate | Cron


# ---------------------------------------------------------------------------------------------------------------------
# parsing


def parse_schedule(expression: str) -> Schedule:
    if match := RATE.match(expression):
        value, unit = int(match["value"]), match["unit"]
        if value < 1:
            raise ScheduleError(f"{expression}: the rate must be a positive number")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(f"{expression}: use the singular unit for 1 and the plural otherwise, e.g. "
                                "rate(1 minute), rate(5 minutes)")
        return Rate(value * UNIT_SECONDS[unit.rstrip("s")])
    if match := CRON.match(expression):
        return parse_cron(match["fields"])
    raise ScheduleError(f"{expression!r} is neither rate(value unit) nor cron(six fields)")


def parse_cron(text: str) -> Cron:
    fields = text.split()
    if len(fields) != 6:
        raise ScheduleError(f"cron({text}): AWS cron expressions have six fields (minutes hours day-of-month month "
                            f"day-of-week year), not {len(fields)}")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"cron({text}): exactly one of day-of-month and day-of-week must be ?")
    return Cron(
        minutes=tuple(sorted(_values(minutes, 0, 59, "minutes"))),
        hours=tuple(sorted(_values(hours, 0, 23, "hours"))),
        months=frozenset(_values(month, 1, 12, "month", MONTHS)),
        years=tuple(sorted(_values(year, FIRST_YEAR, LAST_YEAR, "year"))),
        day_of_month=None if dom == "?" else _day_of_month(dom),
        day_of_week=None if dow == "?" else _day_of_week(dow),
    )


def _number(token: str, low: int, high: int, field: str, names: dict[str, int] | None = None) -> int:
    if names and token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise ScheduleError(f"{field}: {token!r} is not a number" + (" or a name" if names else ""))
    value = int(token)
    if not low <= value <= high:
        raise ScheduleError(f"{field}: {value} is outside {low}-{high}")
    return value


def _values(field_text: str, low: int, high: int, field: str, names: dict[str, int] | None = None,
            step_allowed: bool = True) -> set[int]:
    """The values of a field made of `,`-separated `*`, `n`, `a-b`, `*/s`, `a/s`, `a-b/s` items."""
    values: set[int] = set()
    for item in field_text.split(","):
        base, slash, step_text = item.partition("/")
        if slash and not step_allowed:
            raise ScheduleError(f"{field}: / is not allowed here")
        step = _number(step_text, 1, high - low + 1 if high > low else 1, f"{field} step") if slash else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, low, high, field, names), _number(last, low, high, field, names)
            if start > end:
                raise ScheduleError(f"{field}: the range {base} runs backwards")
        else:
            start = _number(base, low, high, field, names)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return values


def _day_of_month(text: str) -> DayOfMonth:
    days: set[int] = set()
    nearest: set[int] = set()
    last = last_weekday = False
    for item in text.split(","):
        if item == "L":
            last = True
        elif item == "LW":
            last_weekday = True
        elif item.endswith("W"):
            nearest.add(_number(item[:-1], 1, 31, "day-of-month"))
        else:
            days |= _values(item, 1, 31, "day-of-month")
    return DayOfMonth(frozenset(days), last, last_weekday, frozenset(nearest))


def _day_of_week(text: str) -> DayOfWeek:
    weekdays: set[int] = set()
    last_of_month: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in text.split(","):
        if item == "L":
            weekdays.add(7)  # the last day of the week: Saturday
        elif item.endswith("L"):
            last_of_month.add(_number(item[:-1], 1, 7, "day-of-week", WEEKDAYS))
        elif "#" in item:
            weekday, _, k = item.partition("#")
            nth.add((_number(weekday, 1, 7, "day-of-week", WEEKDAYS), _number(k, 1, 5, "day-of-week #")))
        else:
            weekdays |= _values(item, 1, 7, "day-of-week", WEEKDAYS, step_allowed=False)
    return DayOfWeek(frozenset(weekdays), frozenset(last_of_month), frozenset(nth))


# ---------------------------------------------------------------------------------------------------------------------
# matching


def aws_weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday (Python's Monday is 0)."""
    return (day.weekday() + 1) % 7 + 1


def nearest_weekday(year: int, month: int, day: int) -> int | None:
    """The weekday (Mon-Fri) nearest `day` without leaving the month (`nW`); None when the month is shorter."""
    length = calendar.monthrange(year, month)[1]
    if day > length:
        return None
    weekday = date(year, month, day).weekday()
    if weekday == 5:  # Saturday: the Friday before, unless that is last month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, unless that is next month
        return day + 1 if day < length else day - 2
    return day


def day_matches(cron: Cron, day: date) -> bool:
    length = calendar.monthrange(day.year, day.month)[1]
    if cron.day_of_month is not None:
        spec = cron.day_of_month
        if day.day in spec.days or (spec.last and day.day == length):
            return True
        if spec.last_weekday:
            last = date(day.year, day.month, length)
            if day.day == length - max(0, last.weekday() - 4):
                return True
        return any(nearest_weekday(day.year, day.month, n) == day.day for n in spec.nearest_weekday)
    assert cron.day_of_week is not None
    weekday_spec = cron.day_of_week
    weekday = aws_weekday(day)
    return (weekday in weekday_spec.weekdays
            or (weekday in weekday_spec.last_of_month and day.day > length - 7)
            or (weekday, (day.day - 1) // 7 + 1) in weekday_spec.nth)


def cron_matches(cron: Cron, moment: datetime) -> bool:
    """Whether the cron is due in `moment`'s minute (UTC)."""
    return (moment.minute in cron.minutes and moment.hour in cron.hours and moment.month in cron.months
            and moment.year in cron.years and day_matches(cron, moment.date()))


def next_cron_time(cron: Cron, after: datetime) -> datetime | None:
    """The first minute strictly after `after` in which the cron is due; None if it never is again (by 2199)."""
    start = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.date()
    while day.year <= cron.years[-1]:
        if day.year not in cron.years:
            later = cron.years[bisect_left(cron.years, day.year):]
            if not later:
                return None
            day = date(later[0], 1, 1)
            continue
        if day.month not in cron.months:
            day = date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)
            continue
        if day_matches(cron, day):
            earliest = (start.hour, start.minute) if day == start.date() else (0, 0)
            for hour in cron.hours[bisect_left(cron.hours, earliest[0]):]:
                first_minute = earliest[1] if hour == earliest[0] else 0
                index = bisect_left(cron.minutes, first_minute)
                if index < len(cron.minutes):
                    return datetime(day.year, day.month, day.day, hour, cron.minutes[index], tzinfo=UTC)
        day += timedelta(days=1)
    return None


# ---------------------------------------------------------------------------------------------------------------------
# due times (epoch seconds)


def next_due(schedule: Schedule, anchor: float, after: float) -> float | None:
    """The first due time strictly after `after`; a rate counts its periods from `anchor`."""
    if isinstance(schedule, Rate):
        periods = max(1, int((after - anchor) // schedule.seconds))
        while anchor + periods * schedule.seconds <= after:  # exact, whatever the float rounding of the division
            periods += 1
        return anchor + periods * schedule.seconds
    moment = next_cron_time(schedule, datetime.fromtimestamp(after, UTC))
    return None if moment is None else moment.timestamp()


def latest_due(schedule: Schedule, anchor: float, after: float, until: float) -> float | None:
    """The latest due time t with after < t <= until, if any."""
    latest = None
    due = next_due(schedule, anchor, after)
    while due is not None and due <= until:
        latest = due
        due = next_due(schedule, anchor, due)
    return latest
