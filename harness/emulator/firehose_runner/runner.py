"""`FirehoseRunner`: one delivery stream, Kinesis source -> Lambda processor -> S3, polled (behaviour: the package's
docstring and docs/streaming.md)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.emulator import runner_state
from harness.emulator.firehose_runner import metrics, processing
from harness.emulator.firehose_runner.config import config_from_description
from harness.emulator.firehose_runner.counters import Counters
from harness.emulator.firehose_runner.delivery import S3Buffer, s3_object
from harness.emulator.firehose_runner.errors import ProcessorError, RunnerCrashed
from harness.emulator.firehose_runner.source import KinesisSource, SourceRecord

Invoke = Callable[[str, dict[str, Any]], Any]
Clock = Callable[[], float]
# How long a clean stop waits for CloudWatch to take the last metrics.
METRICS_CLOSE_TIMEOUT_S = 5.0


class FirehoseRunner:
    """One delivery stream, driven by `poll_once()` (tests, injected clock) or `run(stop_event)` (the control plane).

    `cloudwatch`, when given, receives the delivery stream's metrics as Firehose publishes them (`metrics.py`)."""

    def __init__(
        self,
        description: Mapping[str, Any],
        kinesis: Any,
        s3: Any,
        invoke: Invoke,
        clock: Clock = time.time,
        *,
        state_path: Path | None = None,
        poll_interval_s: float = 0.5,
        get_records_limit: int = 1000,
        cloudwatch: Any = None,
    ) -> None:
        self.config = config_from_description(description)
        self.kinesis = kinesis
        self.s3 = s3
        self.invoke = invoke
        self.clock = clock
        self.state_path = state_path
        self.poll_interval_s = poll_interval_s
        self.source = KinesisSource(kinesis, self.config.source_stream_name, clock, get_records_limit)
        self.metrics = metrics.MetricsPublisher(cloudwatch) if cloudwatch is not None else None
        self.counters = Counters()
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._incoming: deque[SourceRecord] = deque()
        self._incoming_bytes = 0
        self._incoming_since: float | None = None
        self._attempts = 0
        self._retry_at: float | None = None
        self._delivered = S3Buffer(error=False)
        self._errors = S3Buffer(error=True)
        self._samples = metrics.Samples()
        self._published_at: float | None = None
        # Read now (damage is reported at once), adopted at the first poll once the source stream's identity is known.
        self._saved: runner_state.SavedState | None = None
        if state_path is not None:
            self._saved, self.last_error = runner_state.read_state(state_path)
        self._identity: runner_state.StreamIdentity | None = None
        self._successor: runner_state.StreamIdentity | None = None  # the source was re-created: drain, then read it
        self.state_discarded: list[str] = []
        self._crashed = False

    # ---- public surface ----------------------------------------------------------------------------------------
    @property
    def events_read(self) -> int:
        return self.counters.events_read

    @property
    def records_delivered(self) -> int:
        return self.counters.records_delivered

    @property
    def records_failed(self) -> int:
        return self.counters.records_failed

    @property
    def objects_written(self) -> int:
        return self.counters.objects_written

    @property
    def records_buffered(self) -> int:
        return len(self._incoming) + len(self._delivered.sources) + len(self._errors.sources)

    def stats(self) -> dict[str, Any]:
        # No lock: a poll can hold it for a whole (slow) invocation, and `harness status` must still answer.
        return {
            "delivery_stream": self.config.stream_name,
            **dict(vars(self.counters)),
            "records_buffered": self.records_buffered,
            "checkpoints": self.source.checkpoints(),
            "state_discarded": list(self.state_discarded),
            "last_error": self.last_error,
            "cloudwatch": self.metrics.stats() if self.metrics is not None else None,
            "updated_at": self.clock(),
        }

    def poll_once(self, *, flush: bool = False) -> int:
        """Read what the source has, invoke the processor and write objects when their buffers are due.

        `flush=True` treats every buffer as due (for shutdown and for `harness stream wait`). Returns how many records
        were read from Kinesis.
        """
        with self._lock:
            try:
                self._follow_source()
                read = self._read_source() if self._successor is None else 0
                # Records of a deleted incarnation cannot be read again: deliver them before moving to its successor.
                flush = flush or self._successor is not None
                self._maybe_process(flush=flush)
                if self.metrics is not None:
                    self._samples.freshness_s = metrics.data_freshness_s(self.clock(), self._oldest_buffered_ms())
                self._maybe_write(self._delivered, flush=flush)
                self._maybe_write(self._errors, flush=flush)
                if self._successor is not None and self.records_buffered == 0:
                    self._start(self._successor)
                self._save_state()
                return read
            finally:
                self._publish()

    def crash(self) -> None:
        """Die now, as a killed process would (the soak's `runner_kill`): no flush, no further S3 write, invocation or
        checkpoint save, even from a poll already under way; what was read but not written is gone from memory and is
        read again from the last saved checkpoint by the runner that replaces this one."""
        self._crashed = True
        if self.metrics is not None:
            self.metrics.close(timeout=0)

    def _alive(self) -> None:
        if self._crashed:
            raise RunnerCrashed(f"delivery stream {self.config.stream_name}: Firehose runner crashed on purpose")

    def run(self, stop_event: threading.Event) -> None:
        while not stop_event.is_set() and not self._crashed:
            try:
                read = self.poll_once()
            except Exception as exc:  # noqa: BLE001 - a broken poll (moto restarting) must not end delivery for good
                self.last_error = f"{type(exc).__name__}: {exc}"
                read = 0
            if not read:
                stop_event.wait(self.poll_interval_s)
        if self._crashed:
            return
        try:
            # Deliver what is buffered; whatever cannot be delivered now stays after the checkpoint and is re-read.
            self.poll_once(flush=True)
        except Exception as exc:  # noqa: BLE001
            self.last_error = f"{type(exc).__name__}: {exc}"
        if self.metrics is not None:
            self.metrics.close(timeout=METRICS_CLOSE_TIMEOUT_S)

    # ---- the source's identity ------------------------------------------------------------------------------------
    def _follow_source(self) -> None:
        """Adopt the saved state at the first poll; notice a source deleted and re-created under the same name."""
        identity = self.source.identity()
        if self._identity is None:
            self._start(identity)
        elif identity != self._identity and identity != self._successor:
            self._successor = identity
            self.last_error = (f"source stream {identity.arn} was re-created (now created {identity.created}): "
                               f"writing the {self.records_buffered} record(s) read from the previous one, then "
                               "reading the new one from its oldest record, counters restart")
            self.state_discarded = [self.last_error]

    def _start(self, identity: runner_state.StreamIdentity) -> None:
        """Begin reading `identity` from the saved state when it is this incarnation's, else from TRIM_HORIZON."""
        adopted = runner_state.adopt(self._saved, identity)
        problems = self.source.resume(adopted.checkpoints)
        self._saved, self._identity, self._successor = None, identity, None
        self.counters = Counters.resumed(adopted.counters)
        if adopted.discarded or problems:
            self.state_discarded = [*adopted.discarded, *problems]
            self.last_error = "; ".join(self.state_discarded)

    # ---- reading -------------------------------------------------------------------------------------------------
    def _read_source(self) -> int:
        if self._incoming_bytes >= self.config.processor_buffer_bytes:
            return 0  # backpressure: the processor buffer is full until the next invocation drains it
        records = self.source.read()
        if records and not self._incoming:
            self._incoming_since = self.clock()
        for record in records:
            self._incoming.append(record)
            self._incoming_bytes += len(record.data)
            self._samples.bytes_read += len(record.data)
        self.counters.events_read += len(records)
        self._samples.records_read += len(records)
        return len(records)

    # ---- processing ----------------------------------------------------------------------------------------------
    def _maybe_process(self, *, flush: bool) -> None:
        while self._incoming:
            now = self.clock()
            due = (
                flush
                or self._incoming_bytes >= self.config.processor_buffer_bytes
                or (self._incoming_since is not None and now - self._incoming_since >= self.config.processor_interval_s)
            )
            if not due or (self._retry_at is not None and now < self._retry_at):
                return
            batch = processing.next_batch(self._incoming, self.config.processor_buffer_bytes)
            if self.config.lambda_arn is None:
                for record in batch:
                    self._delivered.add(record.data, record, now)
                self._take(len(batch))
                continue
            if not self._process(self.config.lambda_arn, batch):
                return  # a retry is scheduled; later polls try again

    def _take(self, count: int) -> None:
        for _ in range(count):
            record = self._incoming.popleft()
            self._incoming_bytes -= len(record.data)
        self._incoming_since = self.clock() if self._incoming else None
        self._attempts = 0
        self._retry_at = None

    def _process(self, lambda_arn: str, batch: list[SourceRecord]) -> bool:
        self._alive()
        event = processing.invocation_event(self.config, batch)
        self._attempts += 1
        self.counters.invocations += 1
        started = self.clock()
        try:
            processed = processing.check_response([r.record_id for r in batch], self.invoke(lambda_arn, event))
        except ProcessorError as exc:
            return self._invocation_failed(batch, exc.code, exc.message, started)
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is an invocation failure to retry
            return self._invocation_failed(
                batch, "Lambda.FunctionError",
                f"The Lambda function was invoked but it returned an error result ({type(exc).__name__}: {exc}).",
                started,
            )
        now = self.clock()
        self._samples.invocations.append((True, (now - started) * 1000))
        for record in batch:
            out = processed[record.record_id]
            if out.result == "Ok":
                self._delivered.add(out.data, record, now)
            elif out.result == "Dropped":
                self.source.mark_done(record)
                self.counters.records_dropped += 1
            else:
                self._fail(record, "Lambda.ProcessingFailed",
                           "The Lambda function returned ProcessingFailed for this record.", now)
            if out.result != "ProcessingFailed":
                self._samples.records_processed += 1  # Firehose: Ok and Dropped are "successfully processed"
        self.last_error = None
        self._take(len(batch))
        return True

    def _invocation_failed(self, batch: list[SourceRecord], code: str, message: str, started: float) -> bool:
        self.counters.invocation_failures += 1
        self.last_error = f"{code}: {message}"
        now = self.clock()
        self._samples.invocations.append((False, (now - started) * 1000))
        if self._attempts <= self.config.retries:
            self._retry_at = now + processing.backoff_s(self._attempts)
            return False
        for record in batch:
            self._fail(record, code, message, now)
        self._take(len(batch))
        return True

    def _fail(self, record: SourceRecord, code: str, message: str, now: float) -> None:
        line = processing.error_line(record, attempts=self._attempts, code=code, message=message, now=now,
                                     lambda_arn=self.config.lambda_arn)
        self._errors.add(line, record, now)

    # ---- writing -------------------------------------------------------------------------------------------------
    def _maybe_write(self, buffer: S3Buffer, *, flush: bool) -> None:
        if not buffer.due(self.config, self.clock(), flush=flush):
            return
        obj = s3_object(self.config, buffer)
        # Firehose retries S3 writes until they succeed; an exception here leaves the buffer intact for the next poll.
        self._alive()
        try:
            self.s3.put_object(Bucket=self.config.bucket, Key=obj.key, Body=obj.body)
        except Exception:
            self._samples.s3_puts.append(False)
            raise
        self._samples.s3_puts.append(True)
        # Counted when written, not when buffered: the counters say what is in S3.
        if buffer.error:
            self.counters.error_objects_written += 1
            self.counters.records_failed += len(buffer.sources)
        else:
            self.counters.objects_written += 1
            self.counters.records_delivered += len(buffer.sources)
            self.counters.bytes_delivered += len(obj.body)
            self._samples.records_delivered += len(buffer.sources)
            self._samples.bytes_delivered += sum(len(record.data) for record in buffer.sources)
        for record in buffer.sources:
            self.source.mark_done(record)
        buffer.clear()

    # ---- persistence and metrics -----------------------------------------------------------------------------------
    def _save_state(self) -> None:
        if self.state_path is None or self._identity is None or self._crashed:
            return
        runner_state.write_state(self.state_path, runner_state.state_document(
            self._identity, self.stats(), vars(self.counters)))

    def _oldest_buffered_ms(self) -> int | None:
        arrivals = [r.arrival_ms for r in self._incoming]
        arrivals += [b.oldest_arrival_ms for b in (self._delivered, self._errors) if b.oldest_arrival_ms is not None]
        return min(arrivals, default=None)

    def _publish(self) -> None:
        """Hand this poll's metrics to the sender (one batch per poll at most), or nothing when nothing happened and
        no record has waited a minute since the last batch."""
        samples, self._samples = self._samples, metrics.Samples()
        if self.metrics is None or self._crashed:
            return
        now = self.clock()
        idle_due = samples.freshness_s is not None and (
            self._published_at is None or now - self._published_at >= metrics.IDLE_PUBLISH_S)
        if not samples.active and not idle_due:
            return
        self.metrics.submit(metrics.metric_data(self.config.stream_name, samples, metrics.timestamp(now)))
        self._published_at = now
