"""The soak run: producing at a steady rate, collecting what was delivered, the report."""

from __future__ import annotations

import gzip
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recsys.redrive import MARKER_DIRECTORY

from harness.workflows import stream as streaming
from harness.workflows.handle import StackHandle
from harness.workflows.soak.faults import FaultInjector, FaultSchedule, unsupported
from harness.workflows.soak.plan import (
    COLLECT_INTERVAL_S,
    DEFAULT_DRAIN_TIMEOUT_S,
    DEFAULT_OUTAGE_S,
    FAULT_KINDS,
    MAX_RATE,
    PUT_ATTEMPTS,
    SETTLE_MAX_S,
    FaultKind,
    ObjectKind,
    SoakError,
    parse_minutes,
    plan_faults,
)
from harness.workflows.soak.reconcile import FoundRecord, reconcile, records_in_object
from harness.workflows.soak.target import SoakTarget, ensure_ready


@dataclass
class ProducedLog:
    sent_ids: list[str] = field(default_factory=list)
    refused: int = 0


def put_tracked(kinesis: Any, stream_name: str, sessions: Sequence[Mapping[str, Any]], log: ProducedLog,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """PutRecords, re-sending only what Kinesis refused; the log holds exactly the session_ids Kinesis accepted."""
    pending = [(str(s["session_id"]), json.dumps(s, separators=(",", ":")).encode()) for s in sessions]
    for attempt in range(PUT_ATTEMPTS):
        response = kinesis.put_records(StreamName=stream_name, Records=[
            {"Data": data, "PartitionKey": session_id} for session_id, data in pending])
        refused = []
        for (session_id, data), result in zip(pending, response.get("Records", []), strict=True):
            if result.get("ErrorCode"):
                refused.append((session_id, data))
            else:
                log.sent_ids.append(session_id)
        if not refused:
            return
        pending = refused
        if attempt + 1 < PUT_ATTEMPTS:
            sleep(min(0.1 * 2**attempt, 2.0))
    log.refused += len(pending)


# ---------------------------------------------------------------------------------------------------------------------
# collecting what was delivered


class Collector:
    """Reads each object of the recommendations bucket once (objects are immutable), newer than the soak's start."""

    def __init__(self, target: SoakTarget, since: datetime) -> None:
        self.target = target
        self.since = since
        self.s3 = target.handle.client("s3")
        self.records: list[FoundRecord] = []
        self.objects: dict[ObjectKind, int] = {"delivered": 0, "error": 0}
        self._seen: set[str] = set()

    def kind_of(self, key: str) -> ObjectKind:
        root = self.target.error_root
        return "error" if (key.startswith(root) if root else "processing-failed" in key) else "delivered"

    def collect(self) -> None:
        bucket = self.target.stream.layout.bucket
        # The redrive's markers and lease live beside the error output; they are bookkeeping, not records.
        redrive_root = (self.target.error_root or "processing-failed/") + MARKER_DIRECTORY
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key in self._seen or obj["LastModified"] < self.since or key.startswith(redrive_root):
                    continue
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                if key.endswith(".gz"):
                    body = gzip.decompress(body)
                kind = self.kind_of(key)
                self.records.extend(records_in_object(body, kind))
                self.objects[kind] += 1
                self._seen.add(key)


# ---------------------------------------------------------------------------------------------------------------------
# the run


@dataclass
class SoakProgress:
    elapsed_s: float = 0.0
    sent: int = 0
    found: int = 0
    phase: str = "starting"
    fault: str = ""


@dataclass
class SoakReport:
    started_at: str
    minutes: float
    rate: float
    faults_enabled: bool
    seed: int
    production_s: float
    achieved_rate: float
    refused_by_kinesis: int
    drain_s: float
    drain_timed_out: bool
    objects: dict[str, int]
    faults: list[dict[str, Any]]
    fault_errors: str | None
    reconciliation: dict[str, Any]
    runner: dict[str, Any]
    ok: bool
    stack: str = ""
    redrive: dict[str, Any] | None = None  # the redrive function's report, when the soak ran one
    fault_kinds: list[str] = field(default_factory=list)
    outage_s: float = 0.0
    # Sessions delivered twice after a control-plane or runner kill: Firehose's at-least-once contract allows them
    # (records written to S3 but not yet checkpointed are read again); counted, and only then not a failure.
    at_least_once_duplicates: int = 0
    stranded_after_redrive: int = 0  # sessions still only in the error output after the redrive (a failure)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def runner_counters(target: SoakTarget, since: datetime) -> dict[str, Any]:
    """The delivery stream's CloudWatch metrics (AWS/Firehose) summed since the soak began; empty when CloudWatch
    cannot say or holds none for the soak (Firehose publishes them minutes late)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        sums = streaming.metric_sums(target.handle.client("cloudwatch"), target.stream.delivery_stream, since,
                                     datetime.now(UTC) + timedelta(minutes=1))
    except (BotoCoreError, ClientError):
        return {}
    return dict(sums) if any(sums.values()) else {}


def run_soak(handle: StackHandle, *, minutes: float, rate: float, faults: bool, seed: int | None = None,
             prepare: bool = False, drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S,
             kinds: Sequence[FaultKind] = FAULT_KINDS, outage_s: float = DEFAULT_OUTAGE_S,
             injector: FaultInjector | None = None, artifacts_dir: Path | None = None,
             progress: Callable[[SoakProgress], None] | None = None,
             say: Callable[[str], None] = lambda text: None) -> SoakReport:
    """Soak the stack `handle` reaches; with `faults`, `injector` causes them (it must support every kind).
    `artifacts_dir` keeps a copy of what `prepare` trains (the local stack's next deploy uploads it from there)."""
    minutes = parse_minutes(minutes)
    if not 0 < rate <= MAX_RATE:
        raise SoakError(f"--rate must be more than 0 and at most {MAX_RATE:g}/s, got {rate:g}/s")
    if faults and (missing := unsupported(injector, kinds)):
        raise SoakError(f"cannot inject {', '.join(missing)} into the stack {handle.name}: faults need the local "
                        "stack (`harness up`, then `harness soak` without --outputs/--pulumi-stack)")
    seed = time.time_ns() if seed is None else seed
    rng = random.Random(seed)
    duration_s = minutes * 60.0
    # Planned before anything is touched: a run too short for its faults is refused before the stack is prepared.
    plan = plan_faults(duration_s, random.Random(rng.getrandbits(64)), kinds=kinds, outage_s=outage_s) \
        if faults else []
    target = ensure_ready(handle, prepare=prepare, say=say, artifacts_dir=artifacts_dir)
    try:
        catalogue = streaming.load_catalogue(handle, say=say)
    except streaming.StreamError as err:
        raise SoakError(str(err)) from None
    total = max(1, math.ceil(rate * duration_s))
    # The sessions' content is repeatable from `seed`, their ids are new on every run (uuid4): two soaks with one seed
    # on one stack must not share ids, or the redrive's dedup would rightly skip a session an earlier run delivered.
    sessions = ({**session, "session_id": str(uuid.uuid4())}
                for session in streaming.ev.generate_sessions(catalogue, total, seed=rng.getrandbits(64)))
    kinesis = handle.client("kinesis")
    since = datetime.now(UTC).replace(microsecond=0)
    collector = Collector(target, since)
    schedule = FaultSchedule(injector, plan) if plan and injector is not None else None
    state = SoakProgress()
    log = ProducedLog()

    def tick(phase: str) -> None:
        state.phase = phase
        state.elapsed_s = time.monotonic() - started
        state.sent = len(log.sent_ids)
        state.fault = schedule.current() if schedule else ""
        if progress:
            progress(state)

    started = time.monotonic()
    if schedule:
        schedule.start(started)
    try:
        for offset, count in streaming.pacing(total, rate):
            delay = started + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            put_tracked(kinesis, target.stream.stream_name, [next(sessions) for _ in range(count)], log)
            tick("producing")
        production_s = time.monotonic() - started
        if schedule:
            tick("waiting for the last fault to end")
            schedule.join()
    finally:
        if schedule:
            schedule.stop.set()
            schedule.join()
            schedule.restore()

    drain_started = time.monotonic()
    wanted = set(log.sent_ids)

    def found_ids(kind: str | None = None) -> set[str]:
        return {r.session_id for r in collector.records
                if r.session_id in wanted and (kind is None or r.kind == kind)}

    timed_out = _wait(lambda: len(found_ids()) >= len(wanted), collector, state, tick, "draining",
                      deadline=drain_started + drain_timeout_s, count=found_ids)
    _settle(target, collector, since, len(wanted), tick)
    collector.collect()
    redrive_report: dict[str, Any] | None = None
    if faults:
        # Whatever failed into the error output for infrastructure reasons (the database outage) goes back into the
        # stream through the stack's own redrive function, once; then every session must be delivered exactly once.
        tick("redriving")
        redrive_report = run_redrive(target, since)
        expected = len(found_ids("delivered")) + int(redrive_report.get("sent", 0))
        timed_out = _wait(lambda: len(found_ids("delivered")) >= expected, collector, state, tick,
                          "delivering the redriven records", deadline=time.monotonic() + drain_timeout_s,
                          count=lambda: found_ids("delivered")) or timed_out
        _settle(target, collector, since, len(wanted), tick)
        collector.collect()
    drain_s = time.monotonic() - drain_started
    result = reconcile(log.sent_ids, collector.records, redrive_ran=bool(redrive_report and redrive_report.get("sent")))
    outcomes = [asdict(o) for o in schedule.outcomes] if schedule else []
    not_injected = [o for o in outcomes if not o["injected"]]
    killed = any(o["injected"] and o["kind"] in ("runner_kill", "control_plane_kill") for o in outcomes)
    excused = len(result.duplicated) if killed and _only_double_deliveries(result.duplicated) else 0
    reconciliation_ok = result.ok or (excused and not (result.missing or result.without_recommendations
                                                       or result.unreadable))
    # Every session the soak sends is valid: after a redrive, one still only in the error output was not brought back.
    stranded = result.failed if redrive_report is not None else 0
    report = SoakReport(
        started_at=since.isoformat(), minutes=minutes, rate=rate, faults_enabled=faults, seed=seed,
        production_s=round(production_s, 2), achieved_rate=round(len(log.sent_ids) / max(production_s, 1e-9), 2),
        refused_by_kinesis=log.refused, drain_s=round(drain_s, 2), drain_timed_out=timed_out,
        objects={str(k): v for k, v in collector.objects.items()}, faults=outcomes,
        fault_errors=(schedule.error if schedule else None) or (
            f"{len(not_injected)} planned fault(s) were not injected" if not_injected else None),
        reconciliation=result.as_dict(), runner=runner_counters(target, since), stack=handle.name,
        # A soak asked for faults that could not inject them proves less than it claims: it fails too.
        ok=bool(reconciliation_ok) and not stranded and log.refused == 0 and not not_injected
        and not (schedule and schedule.error),
        redrive=redrive_report, fault_kinds=list(kinds) if faults else [], outage_s=outage_s if faults else 0.0,
        at_least_once_duplicates=excused, stranded_after_redrive=stranded,
    )
    return report


def _only_double_deliveries(duplicated: Mapping[str, int]) -> bool:
    """At-least-once re-delivery after a kill repeats a record once; more copies are not the contract's doing."""
    return all(n == 2 for n in duplicated.values())


def _wait(done: Callable[[], bool], collector: Collector, state: SoakProgress, tick: Callable[[str], None],
          phase: str, *, deadline: float, count: Callable[[], set[str]]) -> bool:
    """Collect until `done()`; True when the deadline passed first."""
    while True:
        collector.collect()
        state.found = len(count())
        tick(phase)
        if done():
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(COLLECT_INTERVAL_S)


def settled(*, read: int, written: int, sent: int, quiet_s: float, buffering_s: float) -> bool:
    """Whether nothing can still be on its way to S3 (pure): the delivery stream's metrics count at least the `sent`
    records as read from Kinesis and no more than were `written` to the objects found, or no new object has appeared
    for as long as a record can wait in the delivery stream's buffers. (A runner killed holding records read them
    twice: its successor's copies are written, its own are not, so after a kill only the quiet time tells.)"""
    return sent <= read <= written or quiet_s >= buffering_s


def records_read(target: SoakTarget, since: datetime) -> int:
    """`DataReadFromKinesisStream.Records` since `since` (0 when CloudWatch has none or cannot say)."""
    from botocore.exceptions import BotoCoreError, ClientError

    end = datetime.now(UTC) + timedelta(minutes=1)
    try:
        answer = target.handle.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Firehose", MetricName="DataReadFromKinesisStream.Records", StartTime=since, EndTime=end,
            Period=max(60, math.ceil((end - since).total_seconds() / 60) * 60), Statistics=["Sum"],
            Dimensions=[{"Name": "DeliveryStreamName", "Value": target.stream.delivery_stream}])
    except (BotoCoreError, ClientError):
        return 0
    return int(round(sum(point.get("Sum", 0.0) for point in answer.get("Datapoints", []))))


def _settle(target: SoakTarget, collector: Collector, since: datetime, sent: int, tick: Callable[[str], None]) -> None:
    # Everything is found; a duplicate could still be in flight. Wait until the delivery stream holds nothing.
    started = last_change = time.monotonic()
    objects = sum(collector.objects.values())
    while time.monotonic() < started + SETTLE_MAX_S:
        collector.collect()
        if sum(collector.objects.values()) != objects:
            objects, last_change = sum(collector.objects.values()), time.monotonic()
        if settled(read=records_read(target, since), written=len(collector.records), sent=sent,
                   quiet_s=time.monotonic() - last_change, buffering_s=target.stream.buffering_s):
            return
        tick("settling")
        time.sleep(1.0)


def run_redrive(target: SoakTarget, since: datetime) -> dict[str, Any]:
    """The stack's redrive function over the error output written since the soak started; its report."""
    from harness.workflows.redrive import RedriveError, invoke_redrive

    try:
        return invoke_redrive(target.handle, {"since": since.isoformat()})
    except RedriveError as err:
        raise SoakError(str(err)) from None


def write_report(path: Path, report: SoakReport) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    staging.replace(path)
    return path
