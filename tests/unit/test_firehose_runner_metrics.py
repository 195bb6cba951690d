"""The Firehose runner's CloudWatch metrics: published where Firehose publishes them (`AWS/Firehose`, dimension
`DeliveryStreamName`), read back with `get_metric_statistics` as a user would, and equal to what S3 holds; a CloudWatch
that fails or hangs loses and holds up no record.

Against a moto server (Kinesis, S3, CloudWatch) with an in-process processor and an injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from harness.emulator import firehose_runner as fr
from harness.emulator.firehose_runner import metrics
from tests.unit.test_firehose_runner import REGION, FakeClock, Processor, Stack, drain
from tests.unit.test_firehose_runner import stack as stack  # noqa: F401 - the fixture


def cloudwatch_client(moto_service: Any) -> Any:
    return boto3.client("cloudwatch", endpoint_url=moto_service.endpoint_url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def build(s: Stack, processor: Processor, clock: FakeClock, cloudwatch: Any) -> fr.FirehoseRunner:
    description = s.firehose.describe_delivery_stream(DeliveryStreamName=s.delivery)
    return fr.FirehoseRunner(description, s.kinesis, s.s3, processor, clock, cloudwatch=cloudwatch)


def statistic(cloudwatch: Any, s: Stack, name: str, stat: str, around: float) -> float | None:
    """`stat` of the delivery stream's metric `name` over the day around `around`, as a user reads it."""
    when = datetime.fromtimestamp(around, tz=UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Firehose", MetricName=name, Dimensions=[{"Name": "DeliveryStreamName", "Value": s.delivery}],
        StartTime=when - timedelta(hours=12), EndTime=when + timedelta(hours=12), Period=86400,
        Statistics=["Sum", "SampleCount", "Maximum", "Minimum"])["Datapoints"]
    if not points:
        return None
    if stat == "Maximum":
        return float(max(p["Maximum"] for p in points))
    if stat == "Minimum":
        return float(min(p["Minimum"] for p in points))
    return float(sum(p[stat] for p in points))


def mixed_batch(processor: Processor) -> tuple[list[bytes], list[bytes]]:
    """40 records: 30 the processor returns Ok, 5 Dropped, 5 ProcessingFailed. Answers (all, the Ok ones)."""
    payloads = [f"rec-{i:02d}".encode() for i in range(40)]
    for p in payloads[30:35]:
        processor.results[p] = "Dropped"
    for p in payloads[35:]:
        processor.results[p] = "ProcessingFailed"
    return payloads, payloads[:30]


def test_the_delivery_stream_s_metrics_equal_what_s3_holds(stack: Any, moto_service: Any) -> None:
    s = stack()
    cloudwatch = cloudwatch_client(moto_service)
    clock, processor = FakeClock(), Processor()
    payloads, ok = mixed_batch(processor)
    processor.fail_next = 1  # one failed invocation, then the retry succeeds
    runner = build(s, processor, clock, cloudwatch)
    assert runner.metrics is not None
    batches: list[list[dict[str, Any]]] = []
    submit, poll = runner.metrics.submit, runner.poll_once
    polls = 0

    def counted_submit(data: list[dict[str, Any]]) -> None:
        batches.append(data)
        submit(data)

    def counted_poll(*, flush: bool = False) -> int:
        nonlocal polls
        polls += 1
        return poll(flush=flush)

    runner.metrics.submit = counted_submit  # type: ignore[method-assign]
    runner.poll_once = counted_poll  # type: ignore[method-assign]
    s.put(payloads)
    drain(runner, clock)
    assert runner.metrics.flush(timeout=30)

    # Independent counts, from S3 and from what was sent.
    delivered, errors, objects = s.delivered_lines(), s.error_documents(), s.objects()
    assert sorted(delivered) == sorted(p.upper() for p in ok) and len(errors) == 5

    def stat(name: str, which: str = "Sum") -> float | None:
        return statistic(cloudwatch, s, name, which, clock.now)

    assert stat("DataReadFromKinesisStream.Records") == len(payloads) == 40
    assert stat("DataReadFromKinesisStream.Bytes") == sum(len(p) for p in payloads)
    assert stat("SucceedProcessing.Records") == len(delivered) + 5  # Ok and Dropped are "successfully processed"
    assert stat("DeliveryToS3.Records") == len(delivered) == 30  # the error output is not counted
    assert stat("DeliveryToS3.Bytes") == sum(len(p) for p in ok)  # as read, before the transformation
    assert stat("DeliveryToS3.Success") == stat("DeliveryToS3.Success", "SampleCount") == len(objects) == 2
    assert stat("ExecuteProcessing.Success", "SampleCount") == len(processor.events) == 2
    assert stat("ExecuteProcessing.Success") == len(processor.events) - 1
    assert stat("ExecuteProcessing.Duration", "SampleCount") == len(processor.events)
    # Batched: at most one PutMetricData batch per poll, each metric at most once in it.
    assert 0 < len(batches) <= polls
    assert all(len({d["MetricName"] for d in batch}) == len(batch) for batch in batches)
    assert runner.stats()["cloudwatch"] == {"namespace": "AWS/Firehose", "published": sum(map(len, batches)),
                                            "pending": 0, "failed_calls": 0, "dropped": 0, "last_error": None}


def test_data_freshness_is_the_age_of_the_oldest_record_not_yet_in_s3(stack: Any, moto_service: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "60"}, BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 60})
    cloudwatch = cloudwatch_client(moto_service)
    clock, processor = FakeClock(), Processor()
    clock.now = time.time()  # near Kinesis's arrival times, which freshness is measured from
    runner = build(s, processor, clock, cloudwatch)
    s.put([b"a", b"b", b"c"])
    # Read at t0 (age ~0), invoked at t0+60 (~60), written at t0+120 (~120: measured before the write); idle polls
    # in between publish nothing (under a minute since the last batch), nor does the last one (nothing waits).
    drain(runner, clock)
    assert runner.metrics is not None and runner.metrics.flush(timeout=30)
    assert len(s.delivered_lines()) == 3

    def stat(which: str) -> float | None:
        return statistic(cloudwatch, s, "DeliveryToS3.DataFreshness", which, clock.now)

    assert stat("SampleCount") == 3
    assert 0 <= (stat("Minimum") or 0) < 10
    assert 110 < (stat("Maximum") or 0) <= 120


def test_a_runner_holding_records_without_activity_publishes_its_freshness_once_a_minute(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 900})
    clock, processor = FakeClock(), Processor()
    runner = build(s, processor, clock, cloudwatch=object())
    assert runner.metrics is not None
    batches: list[list[dict[str, Any]]] = []
    runner.metrics.submit = batches.append  # type: ignore[method-assign]
    s.put([b"a"])
    runner.poll_once()  # read and invoked: published at once
    for _ in range(30):  # 300 s of idle polls, 10 s apart, the record waiting for S3 all along
        clock.advance(10)
        runner.poll_once()
    names = [[d["MetricName"] for d in batch] for batch in batches]
    assert len(batches) == 1 + 5  # t0, then every 60 s: 60, 120, 180, 240, 300
    assert names[1:] == [["DeliveryToS3.DataFreshness"]] * 5


def test_without_a_cloudwatch_client_nothing_is_published() -> None:
    description = {"DeliveryStreamName": "d", "DeliveryStreamARN": "arn:aws:firehose:us-east-1:1:deliverystream/d",
                   "Source": {"KinesisStreamSourceDescription": {
                       "KinesisStreamARN": "arn:aws:kinesis:us-east-1:1:stream/s"}},
                   "Destinations": [{"ExtendedS3DestinationDescription": {"BucketARN": "arn:aws:s3:::b"}}]}
    runner = fr.FirehoseRunner(description, kinesis=None, s3=None, invoke=Processor())
    assert runner.metrics is None and runner.stats()["cloudwatch"] is None


# ---- CloudWatch failing ------------------------------------------------------------------------------------------
class FlakyCloudWatch:
    """Fails the first `failures` calls (as an unreachable endpoint would), then forwards to moto."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real, self.failures, self.calls = real, failures, 0

    def put_metric_data(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("Could not connect to the endpoint URL")
        return self.real.put_metric_data(**kwargs)


class HangingCloudWatch:
    """Blocks until released (a CloudWatch endpoint that accepts the connection and never answers)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.entered, self.release, self.returned = threading.Event(), threading.Event(), threading.Event()

    def put_metric_data(self, **kwargs: Any) -> Any:
        self.entered.set()
        released = self.release.wait(timeout=20)
        self.returned.set()
        if not released:
            raise TimeoutError("read timeout")
        return self.real.put_metric_data(**kwargs)


def delivered_with(stack: Callable[..., Stack], cloudwatch: Callable[[Any], Any], moto_service: Any,
                   ) -> tuple[Stack, fr.FirehoseRunner, Any, list[bytes], FakeClock]:
    s = stack()
    clock, processor = FakeClock(), Processor()
    payloads, ok = mixed_batch(processor)
    stub = cloudwatch(cloudwatch_client(moto_service))
    runner = build(s, processor, clock, stub)
    assert runner.metrics is not None
    runner.metrics.retry_s = 0.05
    s.put(payloads)
    drain(runner, clock)
    return s, runner, stub, ok, clock


def test_cloudwatch_failing_for_a_while_loses_no_record_and_no_metric(stack: Any, moto_service: Any) -> None:
    s, runner, stub, ok, clock = delivered_with(stack, lambda real: FlakyCloudWatch(real, failures=3), moto_service)
    assert sorted(s.delivered_lines()) == sorted(p.upper() for p in ok)
    assert runner.last_error is None  # a metrics problem is not a delivery problem
    assert runner.metrics is not None and runner.metrics.flush(timeout=30)
    stats = runner.stats()["cloudwatch"]
    assert (stats["failed_calls"], stats["dropped"], stats["pending"]) == (3, 0, 0)
    assert stats["last_error"] == "PutMetricData: ConnectionError: Could not connect to the endpoint URL"
    # What failed was sent again: the metrics still equal what S3 holds.
    assert statistic(stub.real, s, "DeliveryToS3.Records", "Sum", clock.now) == len(s.delivered_lines()) == 30
    assert statistic(stub.real, s, "DataReadFromKinesisStream.Records", "Sum", clock.now) == 40


def test_cloudwatch_hanging_holds_up_no_record(stack: Any, moto_service: Any) -> None:
    s, runner, stub, ok, clock = delivered_with(stack, HangingCloudWatch, moto_service)
    # Every record was delivered while the first PutMetricData was still waiting for an answer.
    assert stub.entered.is_set() and not stub.returned.is_set()
    assert sorted(s.delivered_lines()) == sorted(p.upper() for p in ok)
    stub.release.set()
    assert runner.metrics is not None and runner.metrics.flush(timeout=30)
    assert statistic(stub.real, s, "DeliveryToS3.Records", "Sum", clock.now) == 30


# ---- the pure parts ------------------------------------------------------------------------------------------------
def test_one_poll_s_samples_become_firehose_s_metric_data() -> None:
    when = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    samples = metrics.Samples(records_read=7, bytes_read=700, invocations=[(False, 12.0), (True, 30.0)],
                              records_processed=6, s3_puts=[True, True], records_delivered=5, bytes_delivered=500,
                              freshness_s=61.5)
    data = metrics.metric_data("delivery-x", samples, when)
    dims = [{"Name": "DeliveryStreamName", "Value": "delivery-x"}]
    assert all(d["Dimensions"] == dims and d["Timestamp"] == when for d in data)
    assert {d["MetricName"]: (d.get("Value"), d.get("StatisticValues"), d["Unit"]) for d in data} == {
        "DataReadFromKinesisStream.Records": (7.0, None, "Count"),
        "DataReadFromKinesisStream.Bytes": (700.0, None, "Bytes"),
        "ExecuteProcessing.Success": (None, {"SampleCount": 2.0, "Sum": 1.0, "Minimum": 0.0, "Maximum": 1.0}, "Count"),
        "ExecuteProcessing.Duration": (None, {"SampleCount": 2.0, "Sum": 42.0, "Minimum": 12.0, "Maximum": 30.0},
                                       "Milliseconds"),
        "SucceedProcessing.Records": (6.0, None, "Count"),
        "DeliveryToS3.Records": (5.0, None, "Count"),
        "DeliveryToS3.Bytes": (500.0, None, "Bytes"),
        "DeliveryToS3.Success": (None, {"SampleCount": 2.0, "Sum": 2.0, "Minimum": 1.0, "Maximum": 1.0}, "Count"),
        "DeliveryToS3.DataFreshness": (61.5, None, "Seconds"),
    }
    assert metrics.metric_data("delivery-x", metrics.Samples(), when) == []  # nothing happened: no zero counts


def test_freshness_is_never_negative_and_absent_when_nothing_waits() -> None:
    assert metrics.data_freshness_s(100.0, 40_000) == 60.0
    assert metrics.data_freshness_s(100.0, 160_000) == 0.0  # Kinesis's clock ahead of the runner's
    assert metrics.data_freshness_s(100.0, None) is None


def test_the_pending_metrics_are_bounded_and_dropped_on_close() -> None:
    class Down:
        def put_metric_data(self, **kwargs: Any) -> None:
            raise ConnectionError("down")

    publisher = metrics.MetricsPublisher(Down(), retry_s=0.01, max_pending=3)
    for i in range(3):
        publisher.submit([{"MetricName": f"m{i}a"}, {"MetricName": f"m{i}b"}])
    assert not publisher.flush(timeout=0.2)  # it cannot send
    assert (publisher.stats()["pending"], publisher.stats()["dropped"]) == (3, 3)  # the oldest three went
    publisher.close(timeout=0.1)
    # A call under way when it closed is given up when it fails: wait for it rather than race it.
    deadline = time.monotonic() + 10
    while publisher.stats()["dropped"] < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (publisher.stats()["pending"], publisher.stats()["dropped"]) == (0, 6)
    publisher.submit([{"MetricName": "late"}])
    assert publisher.stats()["dropped"] == 7


@pytest.mark.parametrize("failures", [0, 2])
def test_whatever_cloudwatch_does_the_publisher_sends_each_datum_once(failures: int) -> None:
    class Recording:
        def __init__(self) -> None:
            self.calls, self.sent = 0, list[str]()

        def put_metric_data(self, *, Namespace: str, MetricData: list[dict[str, Any]]) -> None:  # noqa: N803
            self.calls += 1
            if self.calls <= failures:
                raise ConnectionError("down")
            assert Namespace == "AWS/Firehose"
            self.sent += [d["MetricName"] for d in MetricData]

    cloudwatch = Recording()
    publisher = metrics.MetricsPublisher(cloudwatch, retry_s=0.01)
    for i in range(5):
        publisher.submit([{"MetricName": f"m{i}"}])
    assert publisher.flush(timeout=10)
    assert sorted(cloudwatch.sent) == [f"m{i}" for i in range(5)]
    assert publisher.stats()["failed_calls"] == failures
