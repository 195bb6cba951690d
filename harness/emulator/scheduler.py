"""Schedules fire: EventBridge scheduled rules invoke their Lambda targets, Glue SCHEDULED triggers start their jobs.

moto stores rules, targets and triggers but fires nothing. The control plane runs one `Scheduler`, which reads what is
deployed from moto on every tick (so a rule created, changed, disabled or deleted by `harness up` or the aws CLI takes
effect at the next tick) and fires what is due:

- an EventBridge rule with a `ScheduleExpression` in state ENABLED: each target receives its `Input` when it has one,
  otherwise the scheduled event EventBridge sends (`"detail-type": "Scheduled Event"`, `"source": "aws.events"`, the
  rule's ARN in `resources`). Lambda targets are invoked asynchronously (`invoke_async`, as EventBridge does); other
  target types are not emulated (a failed `Firing` says so). The program creates its schedules as EventBridge rules
  (`aws.cloudwatch.EventRule`: the hourly redrive, the optional producer), not EventBridge Scheduler schedules.
- a Glue trigger of type SCHEDULED in state ACTIVATED: each action's job starts with the action's arguments
  (`start_job_run`).

When: a rate counts its periods from the moment the scheduler first sees the rule with that expression enabled (AWS:
"a rate expression starts when you create the scheduled event rule"); a cron is due at its minutes, UTC. Each due time
fires once, within a tick (`TICK_S`) of it. AWS fires every due time on time and never in a burst; it keeps no
backlog, and a rule that was disabled over a due time does not fire it when enabled again. The emulator does the same:
a due time that passed while the scheduler was not running (the control plane stopped, the machine asleep) is skipped,
not fired late; after a pause at most one firing per schedule happens, for a due time at most `GRACE_S` old, and the
schedule goes on from there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from harness.emulator import schedules
from harness.emulator.endpoints import ACCESS_KEY_ID, SECRET_ACCESS_KEY

LOG = logging.getLogger(__name__)
TICK_S = 5.0
# How late a due time may still fire: covers a tick delayed by a busy machine, not a pause (a pause skips).
GRACE_S = 60.0

SourceKind = Literal["rule", "trigger"]


@dataclass(frozen=True)
class Target:
    """Where a firing goes: a Lambda function (`arn`) with its payload, or a Glue job with its arguments."""

    kind: Literal["lambda", "glue-job", "unsupported"]
    arn_or_name: str
    payload: str | None = None  # a rule target's Input (None: the scheduled event)
    arguments: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scheduled:
    """One deployed schedule: a rule or a trigger, its expression and where it fires."""

    kind: SourceKind
    name: str
    arn: str
    expression: str
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Firing:
    """One target fired for one due time: the run id or "invoked", or why it failed."""

    kind: SourceKind
    name: str
    target: str
    due: float
    ok: bool
    detail: str


@dataclass
class _Tracked:
    expression: str
    schedule: schedules.Schedule | None  # None: an expression AWS would refuse (logged once)
    anchor: float
    checked: float


def scheduled_event(rule_arn: str, region: str, due: float) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's target that has no Input of its own."""
    account = rule_arn.split(":")[4] if rule_arn.count(":") >= 5 else "123456789012"
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": account, "time": datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "resources": [rule_arn], "detail": {}}


def due_to_fire(schedule: schedules.Schedule, anchor: float, checked: float, now: float,
                grace: float = GRACE_S) -> tuple[float | None, bool]:
    """(the due time to fire now, whether earlier due times since `checked` are skipped): at most one firing, for the
    latest due time in (checked, now] that is at most `grace` old."""
    window_start = max(checked, now - grace)
    fire = schedules.latest_due(schedule, anchor, window_start, now)
    first = schedules.next_due(schedule, anchor, checked)
    skipped = first is not None and first <= now and first != fire
    return fire, skipped


class Scheduler:
    """Fires the deployed schedules; `tick` once per `TICK_S` from `run`, or by hand in tests."""

    def __init__(self, moto_url: str, region: str, invoke_async: Callable[[str, bytes], None],
                 start_job_run: Callable[[str, dict[str, str]], str], clock: Callable[[], float] = time.time) -> None:
        self.moto_url = moto_url
        self.region = region
        self._invoke_async = invoke_async
        self._start_job_run = start_job_run
        self._clock = clock
        self._tracked: dict[tuple[SourceKind, str], _Tracked] = {}
        self._clients: dict[str, Any] = {}

    def run(self, stop_event: threading.Event) -> None:
        """Tick until `stop_event` is set; a failing tick is logged and the next one tried."""
        while not stop_event.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the scheduler outlives a bad tick (moto restarting, say)
                LOG.exception("scheduler tick failed")

    def tick(self, now: float | None = None) -> list[Firing]:
        """Fire every schedule due since the last tick; what was fired."""
        now = self._clock() if now is None else now
        deployed = {(s.kind, s.name): s for s in self.deployed()}
        # Gone or disabled: forgotten, so enabling again restarts a rate and fires nothing missed meanwhile.
        for key in set(self._tracked) - set(deployed):
            del self._tracked[key]
        firings: list[Firing] = []
        for key, item in deployed.items():
            tracked = self._tracked.get(key)
            if tracked is None or tracked.expression != item.expression:
                self._tracked[key] = _Tracked(item.expression, self._parse(item), anchor=now, checked=now)
                continue
            if tracked.schedule is None:
                continue
            due, skipped = due_to_fire(tracked.schedule, tracked.anchor, tracked.checked, now)
            tracked.checked = now
            if skipped:
                LOG.warning("%s %s: due times passed while the scheduler was not running are skipped, as AWS keeps "
                            "no backlog", item.kind, item.name)
            if due is not None:
                firings += [self._fire(item, target, due) for target in item.targets]
        return firings

    # -- what is deployed ---------------------------------------------------------------------------------------------

    def deployed(self) -> list[Scheduled]:
        """The enabled scheduled rules and activated scheduled triggers in moto."""
        return [*self._rules(), *self._triggers()]

    def _rules(self) -> Iterator[Scheduled]:
        events = self._client("events")
        for rule in _pages(events.list_rules, "Rules"):
            if not rule.get("ScheduleExpression") or rule.get("State") != "ENABLED":
                continue
            targets = tuple(_rule_target(t) for t in _pages(events.list_targets_by_rule, "Targets", Rule=rule["Name"]))
            yield Scheduled("rule", rule["Name"], rule.get("Arn", ""), rule["ScheduleExpression"], targets)

    def _triggers(self) -> Iterator[Scheduled]:
        glue = self._client("glue")
        for trigger in _pages(glue.get_triggers, "Triggers"):
            if trigger.get("Type") != "SCHEDULED" or trigger.get("State") != "ACTIVATED" or not trigger.get("Schedule"):
                continue
            targets = tuple(Target("glue-job", a["JobName"], arguments=dict(a.get("Arguments") or {}))
                            for a in trigger.get("Actions", []) if a.get("JobName"))
            yield Scheduled("trigger", trigger["Name"], trigger.get("Name", ""), trigger["Schedule"], targets)

    # -- firing -------------------------------------------------------------------------------------------------------

    def _fire(self, item: Scheduled, target: Target, due: float) -> Firing:
        try:
            if target.kind == "lambda":
                payload = target.payload if target.payload is not None else json.dumps(
                    scheduled_event(item.arn, self.region, due))
                self._invoke_async(target.arn_or_name, payload.encode())
                detail = "invoked"
            elif target.kind == "glue-job":
                detail = self._start_job_run(target.arn_or_name, dict(target.arguments))
            else:
                raise RuntimeError(f"target {target.arn_or_name} is not a Lambda function: only Lambda targets are "
                                   "emulated")
        except Exception as err:  # noqa: BLE001 - one failing target never stops the others
            LOG.warning("%s %s -> %s failed: %s", item.kind, item.name, target.arn_or_name, err)
            return Firing(item.kind, item.name, target.arn_or_name, due, False, f"{type(err).__name__}: {err}")
        LOG.info("%s %s fired %s (%s)", item.kind, item.name, target.arn_or_name, detail)
        return Firing(item.kind, item.name, target.arn_or_name, due, True, detail)

    def _parse(self, item: Scheduled) -> schedules.Schedule | None:
        try:
            return schedules.parse_schedule(item.expression)
        except schedules.ScheduleError as err:
            LOG.warning("%s %s never fires: %s", item.kind, item.name, err)
            return None

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, endpoint_url=self.moto_url, region_name=self.region,
                                                  aws_access_key_id=ACCESS_KEY_ID,
                                                  aws_secret_access_key=SECRET_ACCESS_KEY)
        return self._clients[service]


def _rule_target(target: dict[str, Any]) -> Target:
    arn = str(target.get("Arn", ""))
    kind: Literal["lambda", "unsupported"] = "lambda" if ":lambda:" in arn and ":function:" in arn else "unsupported"
    return Target(kind, arn, payload=target.get("Input"))


def _pages(operation: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = operation(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
