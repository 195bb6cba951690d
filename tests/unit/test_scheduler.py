"""The scheduler (`harness.emulator.scheduler.Scheduler`) over a moto server: EventBridge rules and Glue triggers as the
program deploys them fire their targets on time, once per due time, with EventBridge's payloads."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from harness.emulator import scheduler as scheduler_module
from harness.emulator.scheduler import Firing, Scheduler
from harness.emulator.services import MotoService

REGION = "us-east-1"
T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC: a minute boundary


@dataclass
class Calls:
    invoked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    started: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def invoke_async(self, function: str, payload: bytes) -> None:
        self.invoked.append((function, json.loads(payload)))

    def start_job_run(self, job: str, arguments: dict[str, str]) -> str:
        self.started.append((job, arguments))
        return f"jr_{len(self.started)}"


@dataclass(frozen=True)
class Deployed:
    suffix: str
    producer: str  # rate(1 minute), no Input: the scheduled event
    redrive: str  # rate(1 hour), Input "{}"
    function_arn: str
    trigger: str  # Glue SCHEDULED, activated: cron(0/15 * * * ? *)
    events: Any
    glue: Any

    def ours(self, firings: list[Firing]) -> list[Firing]:
        return [f for f in firings if self.suffix in f.name]


def client(moto: MotoService, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint_url, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture
def deployed(moto_service: MotoService) -> Iterator[Deployed]:
    suffix = uuid.uuid4().hex[:8]
    events, glue = client(moto_service, "events"), client(moto_service, "glue")
    function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:producer-{suffix}"
    producer, redrive = f"producer-{suffix}", f"redrive-{suffix}"
    events.put_rule(Name=producer, ScheduleExpression="rate(1 minute)", State="ENABLED")
    events.put_targets(Rule=producer, Targets=[{"Id": "producer", "Arn": function_arn}])
    events.put_rule(Name=redrive, ScheduleExpression="rate(1 hour)", State="ENABLED")
    events.put_targets(Rule=redrive, Targets=[{"Id": "redrive", "Arn": function_arn + "-redrive", "Input": "{}"}])
    # Never fire: a disabled rule, a rule on events rather than a schedule, a trigger not activated.
    events.put_rule(Name=f"disabled-{suffix}", ScheduleExpression="rate(1 minute)", State="DISABLED")
    events.put_targets(Rule=f"disabled-{suffix}", Targets=[{"Id": "x", "Arn": function_arn}])
    events.put_rule(Name=f"pattern-{suffix}", EventPattern=json.dumps({"source": ["aws.s3"]}), State="ENABLED")
    events.put_targets(Rule=f"pattern-{suffix}", Targets=[{"Id": "x", "Arn": function_arn}])
    trigger = f"etl-schedule-{suffix}"
    glue.create_trigger(Name=trigger, Type="SCHEDULED", Schedule="cron(0/15 * * * ? *)", StartOnCreation=True,
                        Actions=[{"JobName": f"etl-job-{suffix}", "Arguments": {"--mode": "nightly"}}])
    glue.create_trigger(Name=f"created-{suffix}", Type="SCHEDULED", Schedule="cron(* * * * ? *)",
                        StartOnCreation=False, Actions=[{"JobName": f"etl-job-{suffix}"}])
    yield Deployed(suffix, producer, redrive, function_arn, trigger, events, glue)
    for rule in (producer, redrive, f"disabled-{suffix}", f"pattern-{suffix}"):
        ids = [t["Id"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
        events.remove_targets(Rule=rule, Ids=ids)
        events.delete_rule(Name=rule)
    for name in (trigger, f"created-{suffix}"):
        glue.delete_trigger(Name=name)


def make(moto: MotoService, calls: Calls) -> Scheduler:
    return Scheduler(moto.endpoint_url, REGION, calls.invoke_async, calls.start_job_run, clock=lambda: T0)


def test_rules_and_triggers_fire_on_time_once_per_due_time_with_eventbridges_payload(
    deployed: Deployed, moto_service: MotoService
) -> None:
    calls = Calls()
    scheduler = make(moto_service, calls)

    assert deployed.ours(scheduler.tick(T0 + 1)) == []  # first sight: a rate starts now
    assert deployed.ours(scheduler.tick(T0 + 30)) == []
    minute = deployed.ours(scheduler.tick(T0 + 61))
    assert deployed.ours(scheduler.tick(T0 + 66)) == []  # the same due time never twice

    assert [(f.kind, f.name, f.target, f.due, f.ok) for f in minute] == [
        ("rule", deployed.producer, deployed.function_arn, T0 + 61, True)]
    function, event = calls.invoked[-1]
    assert function == deployed.function_arn
    assert {k: v for k, v in event.items() if k != "id"} == {
        "version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
        "time": "2027-01-15T08:01:01Z", "region": REGION, "detail": {},
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{deployed.producer}"]}
    quarter = deployed.ours(scheduler.tick(T0 + 15 * 60 + 2))  # 08:15 for the cron; the producer's 15th minute
    assert sorted((f.kind, f.name, f.due) for f in quarter) == [
        ("rule", deployed.producer, T0 + 1 + 15 * 60), ("trigger", deployed.trigger, T0 + 15 * 60)]
    assert calls.started == [(f"etl-job-{deployed.suffix}", {"--mode": "nightly"})]
    assert [f.detail for f in quarter if f.kind == "trigger"] == ["jr_1"]


def test_a_rule_target_with_input_gets_its_input_and_hourly_means_an_hour_after_first_sight(
    deployed: Deployed, moto_service: MotoService
) -> None:
    calls = Calls()
    scheduler = make(moto_service, calls)
    scheduler.tick(T0)

    for minute in range(1, 61):
        scheduler.tick(T0 + minute * 60 - 1)
    assert [f for f in calls.invoked if f[0].endswith("-redrive")] == []
    fired = [f for f in deployed.ours(scheduler.tick(T0 + 3600 + 3)) if f.name == deployed.redrive]

    assert [(f.target, f.due) for f in fired] == [(deployed.function_arn + "-redrive", T0 + 3600)]
    assert calls.invoked[-1] == (deployed.function_arn + "-redrive", {})


def test_after_a_pause_each_schedule_fires_once_for_its_latest_due_time_not_a_burst(
    deployed: Deployed, moto_service: MotoService
) -> None:
    calls = Calls()
    scheduler = make(moto_service, calls)
    scheduler.tick(T0)

    firings = deployed.ours(scheduler.tick(T0 + 3 * 3600 + 20))  # three hours asleep

    # 11:00:20: each schedule's last due time (11:00) fires once; the 179 minutes, 2 hours, 11 quarters before do not.
    assert sorted((f.name, f.due) for f in firings) == [(deployed.trigger, T0 + 3 * 3600),
                                                        (deployed.producer, T0 + 3 * 3600),
                                                        (deployed.redrive, T0 + 3 * 3600)]
    assert len(calls.started) == 1
    later = deployed.ours(scheduler.tick(T0 + 3 * 3600 + 62))
    assert [(f.name, f.due) for f in later] == [(deployed.producer, T0 + 3 * 3600 + 60)]


def test_disabling_a_rule_stops_it_and_enabling_restarts_its_rate_without_catching_up(
    deployed: Deployed, moto_service: MotoService
) -> None:
    calls = Calls()
    scheduler = make(moto_service, calls)
    scheduler.tick(T0)
    deployed.events.disable_rule(Name=deployed.producer)

    assert [f.name for f in deployed.ours(scheduler.tick(T0 + 61))] == []
    deployed.events.enable_rule(Name=deployed.producer)
    assert [f.name for f in deployed.ours(scheduler.tick(T0 + 200))] == []  # first sight again
    fired = deployed.ours(scheduler.tick(T0 + 261))

    assert [(f.name, f.due) for f in fired] == [(deployed.producer, T0 + 260)]


def test_a_failing_target_is_reported_and_the_others_still_fire(deployed: Deployed, moto_service: MotoService) -> None:
    def refuse(function: str, payload: bytes) -> None:
        raise RuntimeError("the function is not deployed")

    calls = Calls()
    scheduler = Scheduler(moto_service.endpoint_url, REGION, refuse, calls.start_job_run)
    scheduler.tick(T0)

    firings = deployed.ours(scheduler.tick(T0 + 15 * 60 + 1))

    assert sorted((f.kind, f.ok, f.detail) for f in firings) == [
        ("rule", False, "RuntimeError: the function is not deployed"), ("trigger", True, "jr_1")]


def test_an_expression_aws_refuses_never_fires(deployed: Deployed, moto_service: MotoService) -> None:
    deployed.glue.delete_trigger(Name=deployed.trigger)  # recreated with both day fields `*`
    deployed.glue.create_trigger(Name=deployed.trigger, Type="SCHEDULED", Schedule="cron(0 3 * * * *)",
                                 StartOnCreation=True, Actions=[{"JobName": f"etl-job-{deployed.suffix}"}])
    calls = Calls()
    scheduler = make(moto_service, calls)
    scheduler.tick(T0)

    firings = deployed.ours(scheduler.tick(T0 + 24 * 3600))

    assert sorted(f.name for f in firings) == [deployed.producer, deployed.redrive]


def test_run_ticks_until_stopped(deployed: Deployed, moto_service: MotoService,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler_module, "TICK_S", 0.01)
    clock = iter([T0] + [T0 + 61.0] * 1000)
    calls = Calls()
    scheduler = Scheduler(moto_service.endpoint_url, REGION, calls.invoke_async, calls.start_job_run,
                          clock=lambda: next(clock))
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    try:
        for _ in range(500):
            if any(function == deployed.function_arn for function, _ in calls.invoked):
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert [function for function, _ in calls.invoked if function == deployed.function_arn] == [
        deployed.function_arn]


def test_a_changed_expression_takes_effect_and_restarts_the_rate(deployed: Deployed, moto_service: MotoService) -> None:
    calls = Calls()
    scheduler = make(moto_service, calls)
    scheduler.tick(T0)
    deployed.events.put_rule(Name=deployed.producer, ScheduleExpression="rate(5 minutes)", State="ENABLED")

    seen = deployed.ours(scheduler.tick(T0 + 61))
    firings = [f for minute in range(2, 7) for f in deployed.ours(scheduler.tick(T0 + minute * 60 + 1))]

    assert seen == []
    assert [(f.name, f.due) for f in firings] == [(deployed.producer, T0 + 61 + 300)]
