"""Faults in a soak: the workflow drives any `FaultInjector` through its plan (`FaultSchedule`), refuses kinds the
injector cannot cause before touching the stack, and settles on what the delivery stream's API says; the emulator's
injector is built from the local stack's outputs and keeps the data plane beside the faults."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from harness.emulator import services
from harness.emulator.faults import DATA_PLANE_SERVICES, FaultError, LocalFaultInjector, vector_db_record
from harness.emulator.materializers.databases import rds_dir
from harness.workflows import soak
from harness.workflows.handle import AwsEndpoints, StackHandle
from harness.workflows.soak.faults import FaultOutcome, FaultSchedule, unsupported
from harness.workflows.soak.plan import FaultKind, PlannedFault


class FakeInjector:
    """Records what it is asked; `fail` kinds raise after being injected, `heal_fails` makes heal raise."""

    def __init__(self, kinds: frozenset[FaultKind] = frozenset(soak.FAULT_KINDS), *, fail: tuple[str, ...] = (),
                 heal_fails: bool = False) -> None:
        self.kinds = kinds
        self.fail = fail
        self.heal_fails = heal_fails
        self.calls: list[tuple[str, float, float]] = []
        self.heals = 0
        self.broken: str | None = None

    def supported(self) -> frozenset[FaultKind]:
        return self.kinds

    def inject(self, kind: FaultKind, duration_s: float, outcome: FaultOutcome, *, slot_s: float,
               stop: threading.Event) -> None:
        self.calls.append((kind, duration_s, round(slot_s)))
        self.broken = kind
        outcome.injected = True
        if kind in self.fail:
            raise RuntimeError(f"{kind} could not end")
        self.broken = None
        outcome.detail = f"{kind} for {duration_s:g} s"

    def heal(self) -> None:
        self.heals += 1
        if self.heal_fails:
            raise RuntimeError("the server will not start")
        self.broken = None


def run_schedule(injector: FakeInjector, plan: list[PlannedFault]) -> FaultSchedule:
    schedule = FaultSchedule(injector, plan, clock=lambda: 100.0)
    schedule.start(100.0)
    schedule.join()
    return schedule


def test_the_schedule_injects_each_fault_in_order_and_heals_after_every_one() -> None:
    injector = FakeInjector(fail=("worker_kill",))
    plan = [PlannedFault(0.0, "postgres_restart", 3.0, 20.0), PlannedFault(0.0, "worker_kill", 2.0, 40.0),
            PlannedFault(0.0, "db_outage", 15.0, 55.0)]

    schedule = run_schedule(injector, plan)

    assert injector.calls == [("postgres_restart", 3.0, 20), ("worker_kill", 2.0, 40), ("db_outage", 15.0, 55)]
    assert injector.heals == 3 and injector.broken is None  # the failed fault was mended too
    assert [(o.kind, o.injected, o.detail) for o in schedule.outcomes] == [
        ("postgres_restart", True, "postgres_restart for 3 s"),
        ("worker_kill", True, "failed: RuntimeError: worker_kill could not end"),
        ("db_outage", True, "db_outage for 15 s")]
    assert schedule.error is None and schedule.current() == ""


def test_a_fault_that_cannot_be_undone_stops_the_schedule_and_is_reported() -> None:
    injector = FakeInjector(heal_fails=True)
    plan = [PlannedFault(0.0, "runner_pause", 3.0, 20.0), PlannedFault(0.0, "db_outage", 15.0, 55.0)]

    schedule = run_schedule(injector, plan)

    assert [call[0] for call in injector.calls] == ["runner_pause"]
    assert schedule.error == ("SoakError: could not undo the faults (RuntimeError: the server will not start); "
                              "`harness down` and `harness up` bring the stack back")
    with pytest.raises(soak.SoakError, match="could not undo the faults"):
        schedule.restore()


def test_kinds_an_injector_cannot_cause_are_named_and_without_one_none_can_be() -> None:
    only_kills = FakeInjector(frozenset({"worker_kill", "runner_kill"}))

    assert unsupported(only_kills, ["worker_kill", "db_outage", "runner_kill", "runner_pause"]) == [
        "db_outage", "runner_pause"]
    assert unsupported(None, ["worker_kill"]) == ["worker_kill"]
    assert unsupported(FakeInjector(), soak.FAULT_KINDS) == []


def test_a_soak_with_faults_no_injector_can_cause_is_refused_before_touching_the_stack() -> None:
    # No endpoints and no outputs: any call to the stack would fail with another message.
    handle = StackHandle(name="dev", outputs={}, aws=AwsEndpoints(default_url="http://127.0.0.1:9"))

    with pytest.raises(soak.SoakError) as raised:
        soak.run_soak(handle, minutes=1, rate=10, faults=True, kinds=("worker_kill", "db_outage"), injector=None)

    assert str(raised.value) == ("cannot inject worker_kill, db_outage into the stack dev: faults need the local "
                                 "stack (`harness up`, then `harness soak` without --outputs/--pulumi-stack)")


@pytest.mark.parametrize(("read", "written", "quiet_s", "expected"), [
    (100, 100, 0.0, True),  # everything read was written
    (100, 130, 0.0, True),  # and other producers' records besides
    (130, 100, 0.0, False),  # 30 records read are still buffered
    (130, 100, 19.9, False),
    (130, 100, 20.0, True),  # quiet for as long as a record can wait: nothing is left
    (0, 100, 0.0, False),  # no metrics yet: only the quiet time can tell
])
def test_settled_when_the_metrics_account_for_every_record_read_or_the_buffers_had_time(
        read: int, written: int, quiet_s: float, expected: bool) -> None:
    assert soak.settled(read=read, written=written, sent=100, quiet_s=quiet_s, buffering_s=20) is expected


# ---- the emulator's injector ---------------------------------------------------------------------------------------

def record_vector_db(state_dir: Path, identifier: str, port: int, **extra: str) -> Path:
    path = rds_dir(state_dir) / identifier / "service.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "127.0.0.1", "port": port, "pid": 1, "data_dir": "/d", "log_path": "/l",
                                "user": "u", "password": "p", **extra}))
    return path


def test_the_vector_database_is_found_by_its_port_among_the_recorded_servers(tmp_path: Path) -> None:
    record_vector_db(tmp_path, "source", 5001)  # MariaDB's record: no dbname
    wanted = record_vector_db(tmp_path, "vectors", 5002, dbname="postgres")

    assert vector_db_record(tmp_path, 5002) == wanted
    with pytest.raises(FaultError, match="no local PostgreSQL server on port 5001 is recorded under"):
        vector_db_record(tmp_path, 5001)


def test_the_local_injector_needs_the_stack_outputs_it_breaks(tmp_path: Path) -> None:
    with pytest.raises(FaultError) as raised:
        LocalFaultInjector.for_stack(tmp_path, {"transformation_function_name": "t", "vector_db_port": ""})
    assert str(raised.value) == ("the stack has no delivery_stream_name, vector_db_port output: run `harness up` to "
                                 "deploy it")

    record_vector_db(tmp_path, "vectors", 5002, dbname="postgres")
    injector = LocalFaultInjector.for_stack(tmp_path, {"transformation_function_name": "t",
                                                       "delivery_stream_name": "d", "vector_db_port": 5002})
    assert injector.supported() == frozenset(soak.FAULT_KINDS)
    assert (injector.transformation_function, injector.delivery_stream, injector.vector_db_port) == ("t", "d", 5002)


def test_producing_and_collecting_go_straight_to_moto_while_the_control_plane_is_broken(tmp_path: Path) -> None:
    moto = services.MotoService("127.0.0.1", 4566, 11, "/m.log")
    postgres = services.PostgresService("127.0.0.1", 5002, "postgres", "p", "postgres", 12, "/d", "/l")
    mariadb = services.MariaDBService("127.0.0.1", 3306, "admin", "p", 13, "/s", "/m", "/ml")
    (tmp_path / "state.json").write_text(json.dumps(
        {"services": services.RunningServices(moto, postgres, mariadb).to_dict()}))
    record_vector_db(tmp_path, "vectors", 5002, dbname="postgres")
    injector = LocalFaultInjector(tmp_path, transformation_function="t", delivery_stream="d", vector_db_port=5002)
    gateway = StackHandle(name="local", outputs={"a": 1},
                          aws=AwsEndpoints(default_url="http://127.0.0.1:4000", credentials=("k", "s")))

    beside = injector.handle_beside_faults(gateway)

    assert {service: beside.aws.url_for(service) for service in (*DATA_PLANE_SERVICES, "lambda", "glue")} == {
        "kinesis": "http://127.0.0.1:4566", "s3": "http://127.0.0.1:4566", "firehose": "http://127.0.0.1:4566",
        "cloudwatch": "http://127.0.0.1:4566", "lambda": "http://127.0.0.1:4000", "glue": "http://127.0.0.1:4000"}
    assert (beside.name, beside.outputs, beside.aws.credentials) == ("local", {"a": 1}, ("k", "s"))


class FakeCloudWatch:
    """get_metric_statistics over fixed sums per metric name (what the runner published)."""

    def __init__(self, sums: dict[str, float]) -> None:
        self.sums = sums
        self.asked: list[dict[str, object]] = []

    def get_metric_statistics(self, **request: object) -> dict[str, object]:
        self.asked.append(request)
        value = self.sums.get(str(request["MetricName"]))
        statistic = str(request["Statistics"][0])  # type: ignore[index]
        return {"Datapoints": [] if value is None else [{statistic: value / 2}, {statistic: value / 2}]}


def soak_target(cloudwatch: FakeCloudWatch) -> soak.SoakTarget:
    from harness.workflows.delivery import DeliveryLayout
    from harness.workflows.stream import StreamTarget

    handle = StackHandle(name="dev", outputs={})
    handle._clients[("cloudwatch", None)] = cloudwatch
    layout = DeliveryLayout("bucket", "YYYY/", "errors/!{firehose:error-output-type}/")
    return soak.SoakTarget(handle=handle, stream=StreamTarget("s", "d", layout, buffering_s=20))


def test_the_runner_numbers_are_the_delivery_streams_metrics_and_none_when_cloudwatch_has_none() -> None:
    from datetime import UTC, datetime

    from harness.workflows.soak.run import records_read, runner_counters

    since = datetime(2026, 12, 4, 18, tzinfo=UTC)
    published = FakeCloudWatch({"DataReadFromKinesisStream.Records": 600, "DeliveryToS3.Records": 590,
                                "DeliveryToS3.Success": 4, "ExecuteProcessing.Success": 12})
    target = soak_target(published)

    assert runner_counters(target, since) == {"records_read": 600, "records_processed": 0, "records_delivered": 590,
                                              "objects_written": 4, "invocations": 12, "invocations_succeeded": 12}
    assert records_read(target, since) == 600
    assert {(r["Namespace"], str(r["Dimensions"])) for r in published.asked} == {
        ("AWS/Firehose", "[{'Name': 'DeliveryStreamName', 'Value': 'd'}]")}
    assert runner_counters(soak_target(FakeCloudWatch({})), since) == {}
    assert target.error_root == "errors/"
