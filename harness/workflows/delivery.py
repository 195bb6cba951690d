"""What became of streamed sessions, read from S3 as a user would on AWS: a session is delivered when a record with its
`session_id` is in the delivery stream's output (`Prefix`), failed when it is only in the error output
(`ErrorOutputPrefix`, the original record base64-encoded in `rawData`). Nothing here reads the emulator's own counters,
so the same scan follows a local stack and one on AWS.

Only the hours that can hold the sessions are listed (from an hour before they were sent, as Firehose names an object
after the oldest record of its buffer: `recsys.redrive.listing_prefixes`), only objects written since they were sent
are read, and each object is read once (S3 objects are immutable).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from recsys import redrive as rd

# Firehose names an object after the oldest record in its buffer, which may have arrived before ours.
LISTING_LOOKBACK = rd.DELIVERY_LOOKBACK
# S3's clock (LastModified) and ours may disagree by a little; an object written before we sent anything is not ours.
CLOCK_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class DeliveryLayout:
    """Where the delivery stream writes: its bucket, and the key templates of its output and its error output."""

    bucket: str
    delivered_template: str
    error_template: str


def layout_of(description: Mapping[str, Any], bucket: str) -> DeliveryLayout:
    """From `DescribeDeliveryStream`'s answer (pure). An empty `ErrorOutputPrefix` is Firehose's default."""
    desc = description.get("DeliveryStreamDescription", description)
    destination = desc["Destinations"][0]
    s3 = destination.get("ExtendedS3DestinationDescription") or destination.get("S3DestinationDescription") or {}
    return DeliveryLayout(bucket=bucket, delivered_template=str(s3.get("Prefix") or ""),
                          error_template=str(s3.get("ErrorOutputPrefix") or rd.DEFAULT_ERROR_TEMPLATE))


def buffering_seconds(description: Mapping[str, Any]) -> int:
    """How long a record can wait in the delivery stream's buffers before it is written: the S3 buffer's interval plus
    the processor's (pure; Firehose's defaults, 300 s and 60 s, where the description names none)."""
    desc = description.get("DeliveryStreamDescription", description)
    destination = desc["Destinations"][0]
    s3 = destination.get("ExtendedS3DestinationDescription") or destination.get("S3DestinationDescription") or {}
    seconds = int((s3.get("BufferingHints") or {}).get("IntervalInSeconds", 300))
    for processor in (s3.get("ProcessingConfiguration") or {}).get("Processors") or []:
        values = {p["ParameterName"]: p["ParameterValue"] for p in processor.get("Parameters", [])}
        seconds += int(values.get("BufferIntervalInSeconds", 60))
    return seconds


def delivered_records(body: bytes, wanted: Collection[str]) -> list[dict[str, Any]]:
    """The records of one delivered object (JSON Lines) whose `session_id` is wanted (pure)."""
    found = []
    for line in rd.decompress("", body).decode("utf-8", errors="replace").split("\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("session_id") in wanted:
            found.append(record)
    return found


def failed_sessions(body: bytes, wanted: Collection[str]) -> dict[str, str]:
    """Session id -> Firehose's error code, for the wanted sessions in one error object (pure)."""
    records = rd.parse_error_object(rd.decompress("", body))
    return {r.session_id: r.error_code or "unknown" for r in records
            if r.session_id is not None and r.session_id in wanted}


@dataclass
class Delivery:
    """What the scan found for the sessions sent: delivered, failed (only in the error output), still pending."""

    events_sent: int
    records_delivered: int
    records_failed: int
    records_pending: int
    objects: int  # delivered objects holding at least one of the sessions
    error_objects: int
    duplicates: int  # delivered copies beyond the first (Firehose delivers at least once)
    without_recommendations: int = 0  # delivered sessions whose record has no `recommended_items`
    failures: dict[str, int] = field(default_factory=dict)  # error code -> sessions
    sample: dict[str, Any] | None = None  # one delivered record, the newest

    @property
    def settled(self) -> bool:
        return self.records_pending == 0

    def counts(self) -> dict[str, int]:
        return {"events_sent": self.events_sent, "records_delivered": self.records_delivered,
                "records_failed": self.records_failed, "records_pending": self.records_pending,
                "objects": self.objects, "error_objects": self.error_objects, "duplicates": self.duplicates,
                "without_recommendations": self.without_recommendations}


class DeliveryScan:
    """Follows `session_ids`, sent at `since`, into `layout`'s bucket: `poll()` reads what is new, `delivery()` sums
    up."""

    def __init__(self, s3: Any, layout: DeliveryLayout, session_ids: Collection[str], since: datetime) -> None:
        self.s3 = s3
        self.layout = layout
        self.wanted = frozenset(session_ids)
        self.since = since.astimezone(UTC)
        self._seen: set[str] = set()
        self._delivered: dict[str, int] = {}  # session id -> copies
        self._unrecommended: set[str] = set()
        self._failed: dict[str, str] = {}
        self._objects: set[str] = set()
        self._error_objects: set[str] = set()
        self._sample: tuple[datetime, dict[str, Any]] | None = None

    def _new_objects(self, template: str, error_output_type: str | None, now: datetime) -> list[dict[str, Any]]:
        objects = []
        for prefix in rd.listing_prefixes(template, self.since - LISTING_LOOKBACK, now,
                                          error_output_type=error_output_type):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.layout.bucket, Prefix=prefix):
                objects += [obj for obj in page.get("Contents", [])
                            if obj["Key"] not in self._seen and obj["LastModified"] >= self.since - CLOCK_SLACK]
        return objects

    def _read(self, key: str) -> bytes:
        self._seen.add(key)
        return bytes(self.s3.get_object(Bucket=self.layout.bucket, Key=key)["Body"].read())

    def poll(self, now: datetime | None = None) -> None:
        now = (now or datetime.now(UTC)) + CLOCK_SLACK
        for obj in self._new_objects(self.layout.delivered_template, None, now):
            records = delivered_records(self._read(obj["Key"]), self.wanted)
            if records:
                self._objects.add(obj["Key"])
            for record in records:
                self._delivered[record["session_id"]] = self._delivered.get(record["session_id"], 0) + 1
                if not isinstance(record.get("recommended_items"), list) or not record["recommended_items"]:
                    self._unrecommended.add(record["session_id"])
                if self._sample is None or obj["LastModified"] >= self._sample[0]:
                    self._sample = (obj["LastModified"], record)
        for obj in self._new_objects(self.layout.error_template, rd.ERROR_OUTPUT_TYPE, now):
            failed = failed_sessions(self._read(obj["Key"]), self.wanted)
            if failed:
                self._error_objects.add(obj["Key"])
            self._failed.update(failed)

    def delivery(self) -> Delivery:
        failed = {sid: code for sid, code in self._failed.items() if sid not in self._delivered}
        failures: dict[str, int] = {}
        for code in failed.values():
            failures[code] = failures.get(code, 0) + 1
        return Delivery(
            events_sent=len(self.wanted), records_delivered=len(self._delivered), records_failed=len(failed),
            records_pending=len(self.wanted) - len(self._delivered) - len(failed), objects=len(self._objects),
            error_objects=len(self._error_objects),
            duplicates=sum(copies - 1 for copies in self._delivered.values()),
            without_recommendations=len(self._unrecommended),
            failures=dict(sorted(failures.items())), sample=self._sample[1] if self._sample else None)
