"""The delivery stream's CloudWatch metrics, as Firehose publishes them: namespace `AWS/Firehose`, dimension
`DeliveryStreamName`, so what a user reads on AWS (`aws cloudwatch get-metric-statistics`, a dashboard, an alarm) reads
the same locally.

- `DataReadFromKinesisStream.Records` / `.Bytes`: records (their data bytes) read from Kinesis, rereads after a
  restart included (as Firehose's);
- `ExecuteProcessing.Success`: one sample per invocation, 1 succeeded, 0 failed (Average = success ratio, Sum =
  successes); `ExecuteProcessing.Duration`: one sample per invocation, in milliseconds on the runner's clock;
- `SucceedProcessing.Records`: records the processor returned `Ok` or `Dropped` (Firehose's "successfully processed");
- `DeliveryToS3.Records`: records in objects written under `Prefix` (not the error output); `DeliveryToS3.Bytes`: their
  data as read from Kinesis (Firehose: "the pre-processed byte size" when it transforms);
- `DeliveryToS3.Success`: one sample per PutObject, delivered and error output alike, 1 written, 0 failed (Sum =
  objects written);
- `DeliveryToS3.DataFreshness`: seconds since the oldest record not yet in S3 arrived, when a poll is about to write
  (nothing published while no record waits).

Firehose publishes no count of `ProcessingFailed` records: they are `DataReadFromKinesisStream.Records` minus
`SucceedProcessing.Records` once nothing is buffered, and a failed invocation shows as `ExecuteProcessing.Success` below
1. AWS refuses `PutMetricData` in an `AWS/` namespace to its users; moto (5.2) accepts it, which is what lets the
emulator publish where Firehose does.

Publishing never holds up delivery: a poll hands its batch to a sender thread and returns; a CloudWatch call that fails
is retried with the next batch (up to `MAX_PENDING_DATUMS`, the oldest dropped beyond that), one that hangs delays only
the metrics.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NAMESPACE = "AWS/Firehose"
DIMENSION = "DeliveryStreamName"
DATA_READ_RECORDS = "DataReadFromKinesisStream.Records"
DATA_READ_BYTES = "DataReadFromKinesisStream.Bytes"
EXECUTE_SUCCESS = "ExecuteProcessing.Success"
EXECUTE_DURATION = "ExecuteProcessing.Duration"
SUCCEED_RECORDS = "SucceedProcessing.Records"
DELIVERY_RECORDS = "DeliveryToS3.Records"
DELIVERY_BYTES = "DeliveryToS3.Bytes"
DELIVERY_SUCCESS = "DeliveryToS3.Success"
DATA_FRESHNESS = "DeliveryToS3.DataFreshness"
# Firehose publishes once a minute: a runner holding records without anything happening publishes its freshness this
# often (a poll that reads, invokes or writes publishes at once).
IDLE_PUBLISH_S = 60.0
PUT_METRIC_DATA_LIMIT = 1000  # datums per PutMetricData call
MAX_PENDING_DATUMS = 20_000
RETRY_S = 5.0


@dataclass
class Samples:
    """What one poll did, in Firehose's metric terms."""

    records_read: int = 0
    bytes_read: int = 0
    invocations: list[tuple[bool, float]] = field(default_factory=list)  # (succeeded, duration in ms)
    records_processed: int = 0
    s3_puts: list[bool] = field(default_factory=list)
    records_delivered: int = 0
    bytes_delivered: int = 0
    freshness_s: float | None = None  # None: nothing was waiting for S3

    @property
    def active(self) -> bool:
        return bool(self.records_read or self.invocations or self.s3_puts)


def data_freshness_s(now: float, oldest_arrival_ms: int | None) -> float | None:
    """Seconds since the oldest record still waiting arrived; None when none waits. Never negative (the arrival time
    is Kinesis's, the runner's clock may be behind it)."""
    if oldest_arrival_ms is None:
        return None
    return max(0.0, now - oldest_arrival_ms / 1000)


def _statistics(values: list[float]) -> dict[str, float]:
    return {"SampleCount": float(len(values)), "Sum": float(sum(values)), "Minimum": float(min(values)),
            "Maximum": float(max(values))}


def metric_data(stream_name: str, samples: Samples, timestamp: datetime) -> list[dict[str, Any]]:
    """The `MetricData` of one PutMetricData call for `samples`: only what happened (no zero counts)."""
    dimensions = [{"Name": DIMENSION, "Value": stream_name}]
    data: list[dict[str, Any]] = []

    def value(name: str, amount: float, unit: str) -> None:
        data.append({"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Value": float(amount),
                     "Unit": unit})

    def statistics(name: str, values: list[float], unit: str) -> None:
        data.append({"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp,
                     "StatisticValues": _statistics(values), "Unit": unit})

    if samples.records_read:
        value(DATA_READ_RECORDS, samples.records_read, "Count")
        value(DATA_READ_BYTES, samples.bytes_read, "Bytes")
    if samples.invocations:
        statistics(EXECUTE_SUCCESS, [1.0 if ok else 0.0 for ok, _ in samples.invocations], "Count")
        statistics(EXECUTE_DURATION, [ms for _, ms in samples.invocations], "Milliseconds")
    if samples.records_processed:
        value(SUCCEED_RECORDS, samples.records_processed, "Count")
    if samples.records_delivered:
        value(DELIVERY_RECORDS, samples.records_delivered, "Count")
        value(DELIVERY_BYTES, samples.bytes_delivered, "Bytes")
    if samples.s3_puts:
        statistics(DELIVERY_SUCCESS, [1.0 if ok else 0.0 for ok in samples.s3_puts], "Count")
    if samples.freshness_s is not None:
        value(DATA_FRESHNESS, samples.freshness_s, "Seconds")
    return data


class MetricsPublisher:
    """Sends metric data to CloudWatch from its own thread (started at the first batch)."""

    def __init__(self, cloudwatch: Any, *, retry_s: float = RETRY_S, max_pending: int = MAX_PENDING_DATUMS) -> None:
        self.cloudwatch = cloudwatch
        self.retry_s = retry_s
        self.max_pending = max_pending
        self.published = 0  # datums CloudWatch accepted
        self.failed_calls = 0
        self.dropped = 0  # datums given up (over `max_pending`, or pending when closed)
        self.last_error: str | None = None
        self._pending: deque[dict[str, Any]] = deque()
        self._sending = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, data: list[dict[str, Any]]) -> None:
        """Queue `data` and return at once."""
        if not data:
            return
        with self._cond:
            if self._closed:
                self.dropped += len(data)
                return
            self._pending.extend(data)
            while len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.dropped += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="firehose-metrics", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is sent (or `timeout` passes); True when it was."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._sending, timeout=timeout)

    def close(self, timeout: float) -> None:
        """Send what is queued for up to `timeout` seconds, then stop; what is still queued is dropped."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self.dropped += len(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))  # a call under way ends, or is abandoned

    def stats(self) -> dict[str, Any]:
        return {"namespace": NAMESPACE, "published": self.published, "pending": len(self._pending),
                "failed_calls": self.failed_calls, "dropped": self.dropped, "last_error": self.last_error}

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), PUT_METRIC_DATA_LIMIT))]
                self._sending = True
            try:
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=batch)
            except Exception as exc:  # noqa: BLE001 - CloudWatch down or refusing: metrics wait, delivery goes on
                with self._cond:
                    self.failed_calls += 1
                    self.last_error = f"PutMetricData: {type(exc).__name__}: {exc}"
                    self._sending = False
                    if self._closed:
                        self.dropped += len(batch)
                        self._cond.notify_all()
                        return
                    self._pending.extendleft(reversed(batch))
                    while len(self._pending) > self.max_pending:
                        self._pending.popleft()
                        self.dropped += 1
                    self._cond.notify_all()
                    self._cond.wait(timeout=self.retry_s)  # a new batch or close() ends the wait early
                continue
            with self._cond:
                self.published += len(batch)
                self._sending = False
                self._cond.notify_all()


def timestamp(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC)
