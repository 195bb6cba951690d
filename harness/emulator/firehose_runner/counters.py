"""The Firehose runner's counters: what `stats()`, `harness status` and the state file show.

Nothing is dropped: `events_read == records_delivered + records_dropped + records_failed + records_buffered`, where
delivered and failed count records written to S3 (not when buffered). The CloudWatch metrics (`metrics.py`) count the
same events as Firehose's own metrics do, per poll; these counters are the runner's running totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass
class Counters:
    events_read: int = 0
    records_delivered: int = 0
    records_dropped: int = 0
    records_failed: int = 0
    objects_written: int = 0
    error_objects_written: int = 0
    invocations: int = 0
    invocation_failures: int = 0
    bytes_delivered: int = 0

    @classmethod
    def resumed(cls, saved: Mapping[str, int]) -> Counters:
        """The counters a restarted runner continues from: the saved ones it knows, with `events_read` set back to
        what is accounted for, since what was buffered but not written is read again."""
        known = {f.name for f in fields(cls)}
        counters = cls(**{k: v for k, v in saved.items() if k in known})
        counters.events_read = counters.records_delivered + counters.records_dropped + counters.records_failed
        return counters
