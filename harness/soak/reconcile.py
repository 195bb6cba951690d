"""Reading what was delivered and reconciling it by session_id: pure."""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from harness.soak.plan import ObjectKind


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
    delivered: int
    failed: int
    missing: tuple[str, ...]
    duplicated: dict[str, int]
    without_recommendations: tuple[str, ...]
    unreadable: int
    foreign: int

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
        return {"sent": self.sent, "delivered": self.delivered, "failed": self.failed,
                "missing": len(self.missing), "duplicated": len(self.duplicated),
                "without_recommendations": len(self.without_recommendations), "unreadable": self.unreadable,
                "foreign": self.foreign, "ok": self.ok, "missing_examples": sorted(self.missing)[:10],
                "duplicated_examples": dict(sorted(self.duplicated.items())[:10]), "problems": self.problems()}


def reconcile(sent_ids: Iterable[str], found: Iterable[FoundRecord]) -> Reconciliation:
    """Every sent session must be in exactly one delivered or exactly one error-output record."""
    sent = set(sent_ids)
    appearances: Counter[str] = Counter()
    kinds: dict[str, ObjectKind] = {}
    bare: set[str] = set()
    unreadable = foreign = 0
    for record in found:
        if record.session_id is None:
            unreadable += 1
        elif record.session_id not in sent:
            foreign += 1
        else:
            appearances[record.session_id] += 1
            kinds[record.session_id] = record.kind
            if not record.has_recommendations:
                bare.add(record.session_id)
    once = [sid for sid, n in appearances.items() if n == 1]
    return Reconciliation(
        sent=len(sent),
        delivered=sum(1 for sid in once if kinds[sid] == "delivered"),
        failed=sum(1 for sid in once if kinds[sid] == "error"),
        missing=tuple(sorted(sent - appearances.keys())),
        duplicated={sid: n for sid, n in appearances.items() if n > 1},
        without_recommendations=tuple(sorted(bare)),
        unreadable=unreadable,
        foreign=foreign,
    )


