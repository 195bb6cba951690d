"""Lambda `redrive.handler`: records of Firehose's error output back into the Kinesis stream, each session once.

Invoked by hand (`python -m harness redrive`, or `aws lambda invoke` on AWS) with
`{"dry_run", "since", "include_processing_failed", "max_records", "max_scan_bytes"}` (all optional), and every hour
by an EventBridge rule with `{}`. The decisions are pure (`recsys.redrive`); this module lists and reads S3, sends with
`recsys.events.put_all` and writes the markers:

1. take the lease (`<marker prefix>.lease`, a conditional PutObject): two runs never send at once;
2. list the error objects of every hour since `since` (default: 7 days), and their markers;
3. read the objects that still have lines this run would choose, choose, and read the delivered output from the hour
   before the earliest chosen arrival until now for those session ids (bounded by `max_scan_bytes`);
4. per error object: PutRecords its sends (500 at a time, refused records re-sent), then write its marker. A marker is
   written only after Kinesis accepted what it says was sent.

Environment: RECOMMENDATIONS_BUCKET, ERROR_OUTPUT_PREFIX and RECOMMENDATIONS_PREFIX (the delivery stream's templates),
REDRIVEN_PREFIX (markers), KINESIS_STREAM_NAME.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from recsys import events
from recsys import redrive as rd

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "redrive"))

# Kinesis refuses records beyond a shard's 1,000 records/s: more patient than the producer's 5 attempts.
PUT_ATTEMPTS = 8
DEFAULT_LEASE_S = 900  # Lambda's longest timeout
LEASE_MARGIN_S = 60


class Busy(rd.RedriveError):
    """Another run holds the lease."""


@functools.cache
def s3_client() -> Any:
    import boto3

    return boto3.client("s3")


@functools.cache
def kinesis_client() -> Any:
    import boto3

    return boto3.client("kinesis")


def handler(event: Any, context: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    options = rd.parse_options(event, now)
    settings = rd.settings_from_env(os.environ)
    remaining_ms = getattr(context, "get_remaining_time_in_millis", lambda: DEFAULT_LEASE_S * 1000)()
    report = run(options, settings, s3_client(), kinesis_client(), now=now, run_id=str(uuid.uuid4()),
                 lease_s=remaining_ms / 1000 + LEASE_MARGIN_S)
    logger.info("redrive finished", extra={k: v for k, v in report.items() if k != "poison_records"})
    return report


# ---- S3 ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    last_modified: datetime


def _list(s3: Any, bucket: str, prefix: str) -> Iterator[Listed]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield Listed(obj["Key"], int(obj.get("Size", 0)), obj["LastModified"].astimezone(UTC))


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return rd.decompress(key, s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _error_code(err: Exception) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


@contextmanager
def lease(s3: Any, settings: rd.Settings, run_id: str, now: datetime, seconds: float) -> Iterator[None]:
    """Hold `<marker prefix>.lease` for the run: created only if absent (If-None-Match), taken over only when expired
    and unchanged since read (If-Match), deleted at the end."""
    body = json.dumps({"run_id": run_id, "expires_at": (now + timedelta(seconds=seconds)).isoformat()}).encode()
    key = settings.lease_key
    try:
        s3.put_object(Bucket=settings.bucket, Key=key, Body=body, IfNoneMatch="*")
    except Exception as err:  # noqa: BLE001 - botocore's ClientError, told apart by its code
        if _error_code(err) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
            raise
        held = s3.get_object(Bucket=settings.bucket, Key=key)
        try:
            current = json.loads(held["Body"].read())
            holder, expires = str(current["run_id"]), rd.parse_time(current["expires_at"], "the lease's expiry")
        except (ValueError, KeyError, TypeError, rd.RedriveError):
            holder, expires = "unknown", now  # unreadable: treated as expired, taken over below only if unchanged
        if expires > now:
            raise Busy(f"another redrive (run {holder}) is running until {expires:%Y-%m-%dT%H:%M:%SZ}; "
                       "try again after it") from None
        try:
            s3.put_object(Bucket=settings.bucket, Key=key, Body=body, IfMatch=held["ETag"])
        except Exception as again:  # noqa: BLE001
            if _error_code(again) in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise Busy("another redrive took the expired lease first; try again in a few minutes") from None
            raise
    try:
        yield
    finally:
        s3.delete_object(Bucket=settings.bucket, Key=key)


# ---- the run ------------------------------------------------------------------------------------------------------

def run(options: rd.Options, settings: rd.Settings, s3: Any, kinesis: Any, *, now: datetime, run_id: str,
        lease_s: float = DEFAULT_LEASE_S) -> dict[str, Any]:
    if options.dry_run:  # reads only: no lease needed, and it never waits for a running redrive
        return _run(options, settings, s3, kinesis, now=now, run_id=run_id)
    with lease(s3, settings, run_id, now, lease_s):
        return _run(options, settings, s3, kinesis, now=now, run_id=run_id)


def _error_objects(s3: Any, settings: rd.Settings, start: datetime, now: datetime) -> list[Listed]:
    found: dict[str, Listed] = {}
    for prefix in rd.listing_prefixes(settings.error_template, start - rd.FAILURE_LOOKBACK, now,
                                      error_output_type=rd.ERROR_OUTPUT_TYPE):
        for obj in _list(s3, settings.bucket, prefix):
            if not obj.key.startswith(settings.marker_prefix) and obj.last_modified >= start:
                found[obj.key] = obj
    return sorted(found.values(), key=lambda o: o.key)


def _markers(s3: Any, settings: rd.Settings, error_keys: list[str]) -> dict[str, rd.Marker | None]:
    """Markers of the listed error objects: a listing of each marker prefix that can hold one, then one GET each."""
    wanted = {rd.marker_key(settings, key): key for key in error_keys}
    prefixes = sorted({key.rsplit("/", 1)[0] + "/" if "/" in key else "" for key in wanted})
    markers: dict[str, rd.Marker | None] = {}
    for prefix in [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]:
        for obj in _list(s3, settings.bucket, prefix):
            if obj.key in wanted:
                markers[wanted[obj.key]] = rd.parse_marker(_get(s3, settings.bucket, obj.key))
    return markers


def _delivered(s3: Any, settings: rd.Settings, ids: set[str], start: datetime, now: datetime, max_bytes: int
               ) -> tuple[set[str], dict[str, Any]]:
    error_root = settings.marker_prefix.removesuffix(rd.MARKER_DIRECTORY)
    prefixes = rd.listing_prefixes(settings.recommendations_template, start, now, error_output_type=None)
    # Keys under the error root (error documents, markers) hold no delivered record; skipping them saves the reads.
    objects = [obj for prefix in prefixes for obj in _list(s3, settings.bucket, prefix)
               if not obj.key.startswith(settings.marker_prefix)
               and not (error_root and obj.key.startswith(error_root))]
    total = sum(obj.size for obj in objects)
    if total > max_bytes:
        raise rd.RedriveError(
            f"deduplication would read {total:,} bytes of delivered output since {start:%Y-%m-%dT%H:%MZ} "
            f"(max_scan_bytes is {max_bytes:,}): pass a later 'since' or a larger max_scan_bytes; nothing was sent")
    found: set[str] = set()
    for obj in objects:
        found |= rd.delivered_ids_in(_get(s3, settings.bucket, obj.key), ids)
    return found, {"from": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "prefixes": len(prefixes), "objects": len(objects),
                   "bytes": total}


def _run(options: rd.Options, settings: rd.Settings, s3: Any, kinesis: Any, *, now: datetime, run_id: str
         ) -> dict[str, Any]:
    start = options.window_start(now)
    wanted = options.wanted()
    listed = _error_objects(s3, settings, start, now)
    markers = _markers(s3, settings, [obj.key for obj in listed])
    objects: list[rd.ErrorObject] = []
    open_elsewhere: Counter[str] = Counter()  # open lines of objects not read (their markers say nothing is wanted)
    for obj in listed:
        marker = markers.get(obj.key)
        if marker is not None and not marker.needs_reading(wanted):
            open_elsewhere.update(marker.open)
            continue
        records = rd.parse_error_object(_get(s3, settings.bucket, obj.key))
        objects.append(rd.ErrorObject(obj.key, records, marker))

    chosen = rd.choose(objects, wanted)
    scan_from = rd.scan_start(chosen, now, start)
    delivered: set[str] = set()
    scan: dict[str, Any] = {"from": None, "prefixes": 0, "objects": 0, "bytes": 0}
    if scan_from is not None:
        ids = {record.session_id for _, record in chosen if record.session_id is not None}
        delivered, scan = _delivered(s3, settings, ids, scan_from, now, options.max_scan_bytes)
    plan = rd.plan(chosen, delivered, options.max_records)

    unsettled: Counter[str] = Counter(open_elsewhere)
    for read in objects:
        settled = read.marker.settled if read.marker else {}
        unsettled.update(r.category for r in read.records if r.line not in settled)
    report: dict[str, Any] = {
        "run_id": run_id, "dry_run": options.dry_run, "since": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "stream": settings.stream_name, "include_processing_failed": options.include_processing_failed,
        "error_objects": len(listed), "objects_read": len(objects),
        "objects_settled_before": len(listed) - len(objects),
        "records_open": {category: unsettled[category] for category in rd.CATEGORIES},
        "chosen": len(chosen), "to_send": len(plan.sends), "sent": 0,
        "already_delivered": plan.count("already_delivered"), "duplicates": plan.count("duplicate"),
        "deferred": plan.deferred,
        "left_processing_failed": 0 if options.include_processing_failed else unsettled["processing_failed"],
        "poison": unsettled["poison"] + unsettled["unreadable"],
        "poison_records": rd.poison_report(objects),
        "objects_marked": 0, "scan": scan,
    }
    if not options.dry_run:
        _execute(plan, objects, settings, s3, kinesis, report, now=now, run_id=run_id)
    return report


def _execute(plan: rd.Plan, objects: list[rd.ErrorObject], settings: rd.Settings, s3: Any, kinesis: Any,
             report: dict[str, Any], *, now: datetime, run_id: str) -> None:
    """Send object by object; each object's marker is written after Kinesis accepted its records. If Kinesis keeps
    refusing, what was accepted is marked and the run stops with the error (the rest goes in the next run)."""
    sends = plan.sends_by_object()
    for obj in objects:
        newly: dict[int, rd.Settlement] = dict(plan.skipped.get(obj.key, {}))
        failure: events.PutRecordsError | None = None
        pending = sends.get(obj.key, [])
        for start in range(0, len(pending), events.KINESIS_BATCH):
            chunk = pending[start : start + events.KINESIS_BATCH]
            try:
                events.put_all(kinesis, settings.stream_name, [send.entry() for send in chunk], attempts=PUT_ATTEMPTS)
            except events.PutRecordsError as err:
                failure = err
                break
            newly.update({send.line: "sent" for send in chunk})
            report["sent"] += len(chunk)
        marker = rd.updated_marker(obj, newly)
        if obj.marker is None or marker != obj.marker:
            s3.put_object(Bucket=settings.bucket, Key=rd.marker_key(settings, obj.key),
                          Body=rd.marker_body(obj.key, marker, run_id=run_id, now=now),
                          ContentType="application/json")
            report["objects_marked"] += 1
        if failure is not None:
            raise rd.RedriveError(
                f"{failure}; {report['sent']} of {report['to_send']} records were sent and marked, run the redrive "
                "again to send the rest")
