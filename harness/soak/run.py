"""The soak run: producing at a steady rate, collecting what was delivered, the report."""

from __future__ import annotations

import gzip
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import stream as streaming
from harness.soak.faults import FaultInjector
from harness.soak.plan import (
    COLLECT_INTERVAL_S,
    DEFAULT_DRAIN_TIMEOUT_S,
    MAX_RATE,
    PUT_ATTEMPTS,
    REPORT_FILE,
    ObjectKind,
    SoakError,
    parse_minutes,
    plan_faults,
)
from harness.soak.reconcile import FoundRecord, reconcile, records_in_object
from harness.soak.target import SoakTarget, ensure_ready


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
        self.s3 = streaming.aws_client(target.stream, "s3")
        self.records: list[FoundRecord] = []
        self.objects: dict[ObjectKind, int] = {"delivered": 0, "error": 0}
        self._seen: set[str] = set()

    def kind_of(self, key: str) -> ObjectKind:
        root = self.target.error_root
        return "error" if (key.startswith(root) if root else "processing-failed" in key) else "delivered"

    def collect(self) -> None:
        bucket = self.target.stream.bucket
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key in self._seen or obj["LastModified"] < self.since:
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def runner_counters(target: SoakTarget) -> dict[str, Any]:
    stats = streaming.runner_stats(target.stream) or {}
    return {k: stats.get(k) for k in ("events_read", "records_delivered", "records_failed", "records_dropped",
                                      "records_buffered", "invocations", "invocation_failures", "last_error")}


def run_soak(state_dir: Path, *, minutes: float, rate: float, faults: bool, seed: int | None = None,
             prepare: bool = False, drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S,
             progress: Callable[[SoakProgress], None] | None = None,
             say: Callable[[str], None] = lambda text: None) -> SoakReport:
    minutes = parse_minutes(minutes)
    if not 0 < rate <= MAX_RATE:
        raise SoakError(f"--rate must be more than 0 and at most {MAX_RATE:g}/s, got {rate:g}/s")
    target = ensure_ready(state_dir, prepare=prepare, say=say)
    try:
        catalogue = streaming.load_catalogue(target.stream)
    except streaming.StreamError as err:
        raise SoakError(str(err)) from None
    seed = time.time_ns() if seed is None else seed
    rng = random.Random(seed)
    duration_s = minutes * 60.0
    total = max(1, math.ceil(rate * duration_s))
    plan = plan_faults(duration_s, random.Random(rng.getrandbits(64))) if faults else []
    # Fresh session ids per soak (seeded from `seed`): a duplicate can only be the pipeline's doing.
    sessions = streaming.ev.generate_sessions(catalogue, total, seed=rng.getrandbits(64))
    kinesis = streaming.aws_client(target.stream, "kinesis")
    since = datetime.now(UTC).replace(microsecond=0)
    collector = Collector(target, since)
    injector = FaultInjector(state_dir, target, plan) if plan else None
    state = SoakProgress()
    log = ProducedLog()

    def tick(phase: str) -> None:
        state.phase = phase
        state.elapsed_s = time.monotonic() - started
        state.sent = len(log.sent_ids)
        state.fault = injector.current() if injector else ""
        if progress:
            progress(state)

    started = time.monotonic()
    if injector:
        injector.start(started)
    try:
        for offset, count in streaming.pacing(total, rate):
            delay = started + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            put_tracked(kinesis, target.stream.stream_name, [next(sessions) for _ in range(count)], log)
            tick("producing")
        production_s = time.monotonic() - started
        if injector:
            tick("waiting for the last fault to end")
            injector.join()
    finally:
        if injector:
            injector.stop.set()
            injector.join()
            injector.restore()

    drain_started = time.monotonic()
    wanted = set(log.sent_ids)
    timed_out = False
    while True:
        collector.collect()
        found = {r.session_id for r in collector.records if r.session_id in wanted}
        state.found = len(found)
        tick("draining")
        if len(found) >= len(wanted):
            break
        if time.monotonic() - drain_started > drain_timeout_s:
            timed_out = True
            break
        time.sleep(COLLECT_INTERVAL_S)
    # Everything is found; a duplicate could still be in flight. Wait until the runner holds nothing, then read again.
    settle_deadline = time.monotonic() + 60.0
    while time.monotonic() < settle_deadline and (runner_counters(target).get("records_buffered") or 0) > 0:
        tick("settling")
        time.sleep(1.0)
    collector.collect()
    drain_s = time.monotonic() - drain_started
    result = reconcile(log.sent_ids, collector.records)
    outcomes = [asdict(o) for o in injector.outcomes] if injector else []
    not_injected = [o for o in outcomes if not o["injected"]]
    report = SoakReport(
        started_at=since.isoformat(), minutes=minutes, rate=rate, faults_enabled=faults, seed=seed,
        production_s=round(production_s, 2), achieved_rate=round(len(log.sent_ids) / max(production_s, 1e-9), 2),
        refused_by_kinesis=log.refused, drain_s=round(drain_s, 2), drain_timed_out=timed_out,
        objects={str(k): v for k, v in collector.objects.items()}, faults=outcomes,
        fault_errors=(injector.error if injector else None) or (
            f"{len(not_injected)} planned fault(s) were not injected" if not_injected else None),
        reconciliation=result.as_dict(), runner=runner_counters(target),
        # A soak asked for faults that could not inject them proves less than it claims: it fails too.
        ok=result.ok and log.refused == 0 and not not_injected and not (injector and injector.error),
    )
    write_report(state_dir, report)
    return report


def write_report(state_dir: Path, report: SoakReport) -> Path:
    path = state_dir / REPORT_FILE
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    staging.replace(path)
    return path
