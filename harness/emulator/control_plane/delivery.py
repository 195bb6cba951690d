"""The delivery runners' supervision: one `FirehoseRunner` thread per delivery stream moto has (Kinesis source ->
processor -> S3), started at refresh and every RESCAN_INTERVAL_S for new or changed streams, replaced when one stops.

moto stores a delivery stream's configuration but never reads its source; the runner does what Firehose would
(docs/streaming.md). Its checkpoints survive a restart of the control plane (`<state>/daemon/firehose/<stream>.json`),
so a restarted runner resumes after what it delivered.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.emulator.control_plane.files import ApiError, runner_state_path
from harness.emulator.firehose_runner import FirehoseRunner

# Delivery streams created or changed outside `up` (the aws CLI) are picked up this often.
RESCAN_INTERVAL_S = 5.0
COUNTERS = ("events_read", "records_delivered", "records_failed", "objects_written")


@dataclass
class DeliveryStreamRunner:
    name: str
    version_id: str
    runner: FirehoseRunner
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread = field(default_factory=threading.Thread)
    error: str | None = None


def stream_version(description: Mapping[str, Any]) -> str:
    """What tells one incarnation of a stream from the next: a deleted and re-created stream starts again at
    VersionId 1, its creation time differs."""
    return f"{description['VersionId']}@{description.get('CreateTimestamp')}"


class DeliveryRunners:
    def __init__(self, state_dir: Path, firehose: Any, kinesis: Any, s3: Any,
                 invoke_processor: Callable[[str, Mapping[str, Any]], Any], *, cloudwatch: Any = None) -> None:
        self.state_dir = state_dir
        self.cloudwatch = cloudwatch
        self.firehose = firehose
        self.kinesis = kinesis
        self.s3 = s3
        self.invoke_processor = invoke_processor
        self.runners: dict[str, DeliveryStreamRunner] = {}
        self._lock = threading.Lock()

    def sync(self) -> None:
        """One runner per delivery stream; a changed stream (new VersionId) gets a fresh runner."""
        with self._lock:
            names = self.firehose.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
            for name in set(self.runners) - set(names):
                self._stop(self.runners.pop(name))
            for name in names:
                description = self.firehose.describe_delivery_stream(DeliveryStreamName=name)[
                    "DeliveryStreamDescription"]
                version = stream_version(description)
                current = self.runners.get(name)
                if current is not None and current.version_id == version and current.thread.is_alive():
                    continue
                if current is not None:
                    self._stop(current)
                runner = FirehoseRunner(description, self.kinesis, self.s3, self.invoke_processor, time.time,
                                        state_path=runner_state_path(self.state_dir, name), cloudwatch=self.cloudwatch)
                entry = DeliveryStreamRunner(name, version, runner)
                entry.thread = threading.Thread(target=self._run, args=(entry,), name=f"firehose-{name}", daemon=True)
                self.runners[name] = entry
                entry.thread.start()

    @staticmethod
    def _run(entry: DeliveryStreamRunner) -> None:
        try:
            entry.runner.run(entry.stop)
        except Exception as exc:  # shown in `harness status`; the next rescan starts a fresh runner
            entry.error = f"{type(exc).__name__}: {exc}"
            print(f"delivery stream {entry.name}: runner stopped: {entry.error}", file=sys.stderr, flush=True)

    @staticmethod
    def _stop(entry: DeliveryStreamRunner, timeout_s: float = 30.0) -> None:
        entry.stop.set()
        entry.thread.join(timeout=timeout_s)

    def crash(self, name: str) -> dict[str, Any]:
        """Kill one delivery stream's runner as a process crash would (the soak's `runner_kill`: no flush, what it held
        in memory is lost) and start a fresh one from its checkpoint file, as Firehose replaces a failed worker."""
        with self._lock:
            entry = self.runners.get(name)
            if entry is None:
                raise ApiError(404, "ResourceNotFoundException", f"no runner for delivery stream {name}")
            held = entry.runner.records_buffered
            entry.runner.crash()
            self._stop(entry)
        self.sync()  # the dead thread is replaced by a runner built from the saved state
        return {"delivery_stream": name, "records_lost_from_memory": held}

    def rescan_forever(self, stop: threading.Event) -> None:
        while not stop.wait(RESCAN_INTERVAL_S):
            try:
                self.sync()
            except Exception as exc:
                print(f"delivery stream rescan failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def status(self) -> dict[str, Any]:
        streams: dict[str, Any] = {}
        for name, entry in sorted(self.runners.items()):
            counters = entry.runner.stats()
            streams[name] = {**counters, "running": entry.thread.is_alive(),
                             "error": entry.error or counters.get("last_error")}
        return streams

    def shutdown(self) -> None:
        entries = list(self.runners.values())
        for entry in entries:
            entry.stop.set()
        for entry in entries:
            entry.thread.join(timeout=10)
