"""Reading what was delivered and reconciling it by session_id: pure."""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.workflows.soak.plan import ObjectKind


@dataclass(frozen=True)
class FoundRecord:
    session_id: str | None  # None: the record could not be read as one of the producer's events
    kind: ObjectKind
    has_recommendations: bool = True


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON value in `text`, newline-separated or not (the lab's processor wrote records back to back)."""
    decoder = json.JSONDecoder()
    index, end = 0, len(text)
    while index < end:
        while index < end and text[index] in " \t\r\n":
            index += 1
        if index >= end:
            return
        value, index = decoder.raw_decode(text, index)
        yield value


def records_in_object(body: bytes, kind: ObjectKind) -> list[FoundRecord]:
    """The records of one object: delivered records carry the session itself, error records (Firehose's
    processing-failed documents) carry it base64-encoded in `rawData`."""
    try:
        values = list(_json_values(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [FoundRecord(None, kind)]
    found = []
    for value in values:
        if kind == "error":
            try:
                value = json.loads(base64.b64decode(value["rawData"], validate=True))
            except (KeyError, TypeError, ValueError, binascii.Error):
                found.append(FoundRecord(None, kind))
                continue
        session_id = value.get("session_id") if isinstance(value, dict) else None
        found.append(FoundRecord(
            session_id if isinstance(session_id, str) else None, kind,
            has_recommendations=kind == "error" or (isinstance(value, dict) and "recommended_items" in value)))
    return found


@dataclass(frozen=True)
class Reconciliation:
    sent: int
    delivered: int  # delivered exactly once (after a redrive or not)
    failed: int  # in the error output and never delivered
    missing: tuple[str, ...]
    duplicated: dict[str, int]  # session -> appearances, for sessions the pipeline doubled
    without_recommendations: tuple[str, ...]
    unreadable: int
    foreign: int
    redriven: int = 0  # delivered exactly once after failing into the error output (a redrive ran)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.without_recommendations or self.unreadable)

    def problems(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} sent session(s) are in no delivered and no error-output record, e.g. "
                       f"{', '.join(sorted(self.missing)[:3])}")
        if self.duplicated:
            examples = ", ".join(f"{sid} x{n}" for sid, n in sorted(self.duplicated.items())[:3])
            out.append(f"{len(self.duplicated)} session(s) appear more than once, e.g. {examples}")
        if self.without_recommendations:
            out.append(f"{len(self.without_recommendations)} delivered record(s) have no recommended_items, e.g. "
                       f"{', '.join(sorted(self.without_recommendations)[:3])}")
        if self.unreadable:
            out.append(f"{self.unreadable} record(s) in the bucket are not readable as sessions")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "delivered": self.delivered, "failed": self.failed, "redriven": self.redriven,
                "missing": len(self.missing), "duplicated": len(self.duplicated),
                "without_recommendations": len(self.without_recommendations), "unreadable": self.unreadable,
                "foreign": self.foreign, "ok": self.ok, "missing_examples": sorted(self.missing)[:10],
                "duplicated_examples": dict(sorted(self.duplicated.items())[:10]), "problems": self.problems()}


def reconcile(sent_ids: Iterable[str], found: Iterable[FoundRecord], *, redrive_ran: bool = False) -> Reconciliation:
    """Every sent session must be in exactly one delivered or exactly one error-output record. After a redrive, a
    session may also be in the error output once or more (it failed, was sent again, perhaps failed again) as long as
    it is delivered at most once: delivered once it counts as redriven, never delivered as failed."""
    sent = set(sent_ids)
    delivered: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    bare: set[str] = set()
    unreadable = foreign = 0
    for record in found:
        if record.session_id is None:
            unreadable += 1
        elif record.session_id not in sent:
            foreign += 1
        else:
            (delivered if record.kind == "delivered" else failed)[record.session_id] += 1
            if not record.has_recommendations:
                bare.add(record.session_id)
    duplicated: dict[str, int] = {}
    once = redriven = only_failed = 0
    for sid in delivered.keys() | failed.keys():
        d, e = delivered[sid], failed[sid]
        if d > 1 or (not redrive_ran and d + e > 1):
            duplicated[sid] = d + e
        elif d == 1:
            once += 1
            redriven += e > 0
        else:
            only_failed += 1
    return Reconciliation(
        sent=len(sent),
        delivered=once,
        failed=only_failed,
        missing=tuple(sorted(sent - delivered.keys() - failed.keys())),
        duplicated=duplicated,
        without_recommendations=tuple(sorted(bare)),
        unreadable=unreadable,
        foreign=foreign,
        redriven=redriven,
    )
