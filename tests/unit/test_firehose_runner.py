"""The local delivery stream behaves as Amazon Data Firehose does, against a real moto server (Kinesis and S3).

The processor is an in-process function, the clock is injected, so buffering intervals are proven without waiting.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from harness.emulator import firehose_runner as fr
from harness.emulator import runner_state

REGION = "us-east-1"
ACCOUNT = "123456789012"
NAME_RE = r"(?P<stream>[a-z0-9-]+)-1-(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-[0-9a-f-]{36}"
_names = itertools.count()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Processor:
    """An in-process transformation: upper-cases each record and appends a newline, unless told to misbehave."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail_next = 0
        self.results: dict[bytes, str] = {}

    def __call__(self, function_arn: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("could not connect to server: Connection refused")
        out = []
        for record in event["records"]:
            raw = base64.b64decode(record["data"])
            result = self.results.get(raw, "Ok")
            data = base64.b64encode(raw.upper() + b"\n").decode() if result == "Ok" else ""
            out.append({"recordId": record["recordId"], "result": result, "data": data})
        return {"records": out}


class Stack:
    def __init__(self, endpoint: str, shards: int = 1, **destination: Any) -> None:
        n = next(_names)
        kwargs = {"endpoint_url": endpoint, "region_name": REGION,
                  "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.kinesis = boto3.client("kinesis", **kwargs)
        self.s3 = boto3.client("s3", **kwargs)
        self.firehose = boto3.client("firehose", **kwargs)
        self.stream = f"sessions-{n}"
        self.bucket = f"recommendations-{n}"
        self.delivery = f"delivery-{n}"
        self.shards = shards
        self.kinesis.create_stream(StreamName=self.stream, ShardCount=shards)
        self.stream_arn = self.kinesis.describe_stream_summary(StreamName=self.stream)[
            "StreamDescriptionSummary"]["StreamARN"]
        self.s3.create_bucket(Bucket=self.bucket)
        params = destination.pop("processor", {"NumberOfRetries": "3"})
        role = f"arn:aws:iam::{ACCOUNT}:role/firehose"
        self.lambda_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:transformation"
        config: dict[str, Any] = {"RoleARN": role, "BucketARN": f"arn:aws:s3:::{self.bucket}", **destination}
        if params is not None:
            config["ProcessingConfiguration"] = {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
                {"ParameterName": "LambdaArn", "ParameterValue": self.lambda_arn},
                *({"ParameterName": k, "ParameterValue": v} for k, v in params.items()),
            ]}]}
        self.firehose.create_delivery_stream(
            DeliveryStreamName=self.delivery,
            DeliveryStreamType="KinesisStreamAsSource",
            KinesisStreamSourceConfiguration={"KinesisStreamARN": self.stream_arn, "RoleARN": role},
            ExtendedS3DestinationConfiguration=config,
        )

    def recreate_stream(self) -> str:
        """Delete the Kinesis stream and create it again under its name (as `harness down` then `up` does): the same
        ARN, sequence numbers from 1 again. Answers the new creation time."""
        self.kinesis.delete_stream(StreamName=self.stream)
        self.kinesis.create_stream(StreamName=self.stream, ShardCount=self.shards)
        summary = self.kinesis.describe_stream_summary(StreamName=self.stream)["StreamDescriptionSummary"]
        assert summary["StreamARN"] == self.stream_arn
        return runner_state.stream_identity(self.kinesis, self.stream).created

    def delete(self) -> None:
        """Free the delivery stream (moto allows 50 per region, and the moto server serves the whole session)."""
        self.firehose.delete_delivery_stream(DeliveryStreamName=self.delivery)
        self.kinesis.delete_stream(StreamName=self.stream)

    def runner(self, processor: Processor, clock: FakeClock, state_path: Path | None = None) -> fr.FirehoseRunner:
        description = self.firehose.describe_delivery_stream(DeliveryStreamName=self.delivery)
        return fr.FirehoseRunner(description, self.kinesis, self.s3, processor, clock, state_path=state_path)

    def put(self, payloads: list[bytes], key: str | None = None) -> None:
        for start in range(0, len(payloads), 500):
            chunk = payloads[start : start + 500]
            self.kinesis.put_records(StreamName=self.stream, Records=[
                {"Data": p, "PartitionKey": key or f"pk-{start + i}"} for i, p in enumerate(chunk)
            ])

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
        return out

    def delivered_lines(self) -> list[bytes]:
        return [line for key, body in sorted(self.objects().items()) if "failed" not in key
                for line in body.splitlines()]

    def error_documents(self) -> list[dict[str, Any]]:
        return [json.loads(line) for key, body in sorted(self.objects().items()) if "failed" in key
                for line in body.splitlines()]


@pytest.fixture
def stack(moto_service: Any) -> Iterator[Any]:
    made: list[Stack] = []

    def make(**kwargs: Any) -> Stack:
        made.append(Stack(moto_service.endpoint_url, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.delete()


def drain(runner: fr.FirehoseRunner, clock: FakeClock, step: float = 10.0, limit: int = 200) -> None:
    """Poll, advancing the clock, until nothing is buffered (every interval and backoff elapses on the way)."""
    runner.poll_once()
    for _ in range(limit):
        if runner.records_buffered == 0 and not runner.poll_once():
            return
        clock.advance(step)
        runner.poll_once()
    raise AssertionError(f"runner still holds {runner.records_buffered} records")


# ---- buffering -------------------------------------------------------------------------------------------------
def test_processor_waits_for_its_buffer_interval_before_it_is_invoked(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "60", "BufferSizeInMBs": "1"})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    s.put([b"a", b"b", b"c"])

    runner.poll_once()
    clock.advance(59)
    runner.poll_once()
    assert processor.events == []

    clock.advance(1)
    runner.poll_once()
    assert len(processor.events) == 1 and len(processor.events[0]["records"]) == 3


def test_a_full_processor_buffer_is_sent_at_once_and_no_batch_exceeds_its_size(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "900", "BufferSizeInMBs": "0.2"})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    payloads = [bytes([65 + i % 26]) * 20_000 for i in range(25)]  # 500 KB in 20 KB records
    s.put(payloads)

    for _ in range(10):
        runner.poll_once()
    sent = [len(base64.b64decode(r["data"])) for e in processor.events for r in e["records"]]
    assert len(processor.events) >= 2
    assert all(sum(len(base64.b64decode(r["data"])) for r in e["records"]) <= 0.2 * fr.MIB for e in processor.events)
    assert sum(sent) >= 400_000  # everything past the last full buffer waits for the interval


def test_objects_wait_for_the_destination_interval_then_hold_every_record(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 120})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    s.put([f"event-{i}".encode() for i in range(10)])

    runner.poll_once()
    assert len(processor.events) == 1
    assert s.objects() == {}
    clock.advance(119)
    runner.poll_once()
    assert s.objects() == {}
    clock.advance(1)
    runner.poll_once()
    assert sorted(s.delivered_lines()) == sorted(f"EVENT-{i}".encode() for i in range(10))
    assert runner.objects_written == 1


def test_a_full_destination_buffer_is_written_before_its_interval(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0", "BufferSizeInMBs": "3"},
              BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    s.put([b"x" * 100_000 for _ in range(12)])  # 1.2 MB
    for _ in range(3):
        runner.poll_once()
    assert runner.objects_written >= 1
    assert runner.records_buffered < 12


# ---- the event and the response -------------------------------------------------------------------------------
def test_the_processor_gets_firehose_s_event_shape(stack: Any) -> None:
    s = stack(shards=2, processor={"BufferIntervalInSeconds": "0"})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    s.put([b'{"n": 1}', b'{"n": 2}'])
    runner.poll_once()

    (event,) = processor.events
    assert set(event) == {"invocationId", "deliveryStreamArn", "sourceKinesisStreamArn", "region", "records"}
    assert event["deliveryStreamArn"] == f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{s.delivery}"
    assert event["sourceKinesisStreamArn"] == s.stream_arn and event["region"] == REGION
    ids = [r["recordId"] for r in event["records"]]
    assert len(set(ids)) == 2
    for record in event["records"]:
        assert set(record) == {"recordId", "approximateArrivalTimestamp", "data", "kinesisRecordMetadata"}
        meta = record["kinesisRecordMetadata"]
        assert set(meta) == {"shardId", "partitionKey", "approximateArrivalTimestamp", "sequenceNumber",
                             "subsequenceNumber"}
        assert meta["shardId"].startswith("shardId-") and meta["partitionKey"].startswith("pk-")
        assert isinstance(record["approximateArrivalTimestamp"], int)
    assert sorted(base64.b64decode(r["data"]) for r in event["records"]) == [b'{"n": 1}', b'{"n": 2}']


@pytest.mark.parametrize(
    ("response", "code"),
    [
        ({"records": [{"recordId": "a", "result": "Ok", "data": ""}]}, "Lambda.MissingRecordId"),
        ({"records": [{"recordId": "a", "result": "Ok", "data": ""}, {"recordId": "b", "result": "Ok", "data": ""},
                      {"recordId": "c", "result": "Ok", "data": ""}]}, "Lambda.MismatchedRecordId"),
        ({"records": [{"recordId": "a", "result": "Ok", "data": ""}, {"recordId": "a", "result": "Ok", "data": ""}]},
         "Lambda.DuplicatedRecordId"),
        ({"records": [{"recordId": "a", "result": "Fine", "data": ""}, {"recordId": "b", "result": "Ok", "data": ""}]},
         "Lambda.JsonProcessingException"),
        ({"records": [{"recordId": "a", "result": "Ok", "data": "%%"}, {"recordId": "b", "result": "Ok", "data": ""}]},
         "Lambda.JsonProcessingException"),
        ({"statusCode": 200}, "Lambda.JsonProcessingException"),
        ("not json", "Lambda.JsonProcessingException"),
    ],
)
def test_a_response_firehose_would_reject_fails_the_whole_invocation(response: Any, code: str) -> None:
    with pytest.raises(fr.ProcessorError) as err:
        fr.check_response(["a", "b"], response)
    assert err.value.code == code


def test_a_valid_response_is_accepted_with_every_result() -> None:
    out = fr.check_response(["a", "b", "c"], {"records": [
        {"recordId": "c", "result": "ProcessingFailed", "data": ""},
        {"recordId": "a", "result": "Ok", "data": base64.b64encode(b"x\n").decode()},
        {"recordId": "b", "result": "Dropped", "data": ""},
    ]})
    assert {k: (v.result, v.data) for k, v in out.items()} == {
        "a": ("Ok", b"x\n"), "b": ("Dropped", b""), "c": ("ProcessingFailed", b"")}


# ---- retries and the error output --------------------------------------------------------------------------------
def test_a_failing_processor_is_retried_then_the_batch_goes_to_the_error_output(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0", "NumberOfRetries": "2"},
              BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    clock, processor = FakeClock(), Processor()
    processor.fail_next = 100
    runner = s.runner(processor, clock)
    s.put([b"one", b"two"])
    drain(runner, clock)

    assert len(processor.events) == 3  # the first attempt and two retries
    assert s.delivered_lines() == []
    errors = s.error_documents()
    assert sorted(base64.b64decode(e["rawData"]) for e in errors) == [b"one", b"two"]
    for e in errors:
        assert set(e) == {"attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage", "attemptEndingTimestamp",
                          "rawData", "lambdaArn"}
        assert e["attemptsMade"] == 3 and e["errorCode"] == "Lambda.FunctionError"
        assert e["lambdaArn"] == s.lambda_arn and "Connection refused" in e["errorMessage"]
    assert (runner.events_read, runner.records_delivered, runner.records_failed) == (2, 0, 2)


def test_a_processor_that_recovers_within_its_retries_loses_nothing(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0", "NumberOfRetries": "3"},
              BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    clock, processor = FakeClock(), Processor()
    processor.fail_next = 2
    runner = s.runner(processor, clock)
    s.put([b"a", b"b", b"c"])

    runner.poll_once()
    runner.poll_once()  # the backoff has not elapsed: no second attempt yet
    assert len(processor.events) == 1
    drain(runner, clock)

    assert sorted(s.delivered_lines()) == [b"A", b"B", b"C"]
    assert s.error_documents() == []
    assert runner.counters.invocation_failures == 2


def test_processing_failed_records_go_to_the_error_prefix_and_the_rest_is_delivered(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
              ErrorOutputPrefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/")
    clock, processor = FakeClock(), Processor()
    processor.results = {b"bad": "ProcessingFailed", b"skip": "Dropped"}
    runner = s.runner(processor, clock)
    s.put([b"good", b"bad", b"skip", b"fine"])
    drain(runner, clock)

    assert sorted(s.delivered_lines()) == [b"FINE", b"GOOD"]
    (error,) = s.error_documents()
    assert base64.b64decode(error["rawData"]) == b"bad" and error["errorCode"] == "Lambda.ProcessingFailed"
    assert error["attemptsMade"] == 1
    (error_key,) = [k for k in s.objects() if "failed" in k]
    assert re.fullmatch(r"errors/processing-failed/\d{4}/\d{2}/\d{2}/" + NAME_RE, error_key)
    c = runner.counters
    assert (c.events_read, c.records_delivered, c.records_dropped, c.records_failed) == (4, 2, 1, 1)


# ---- prefixes and names ----------------------------------------------------------------------------------------
def test_objects_land_under_the_default_hourly_prefix_with_firehose_s_name(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    before = datetime.now(UTC)
    s.put([b"r"])
    after = datetime.now(UTC)
    drain(runner, clock)

    (key,) = s.objects()
    match = re.fullmatch(r"(?P<prefix>\d{4}/\d{2}/\d{2}/\d{2}/)" + NAME_RE, key)
    assert match, key
    assert match["prefix"] in {before.strftime("%Y/%m/%d/%H/"), after.strftime("%Y/%m/%d/%H/")}
    assert match["stream"] == s.delivery


def test_a_plain_prefix_gets_the_hourly_folders_appended_and_gzip_adds_its_extension(stack: Any) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
              Prefix="recommendations/", CompressionFormat="GZIP")
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    s.put([b"z"])
    drain(runner, clock)
    ((key, body),) = s.objects().items()
    assert re.fullmatch(r"recommendations/\d{4}/\d{2}/\d{2}/\d{2}/" + NAME_RE + r"\.gz", key)
    assert gzip.decompress(body) == b"Z\n"


def test_prefix_expressions_are_evaluated_as_firehose_does() -> None:
    when = datetime(2026, 11, 27, 21, 5, 9, tzinfo=UTC)
    assert fr.evaluate_prefix("", when, error_output_type=None) == "2026/11/27/21/"
    assert fr.evaluate_prefix("recs/", when, error_output_type=None) == "recs/2026/11/27/21/"
    assert fr.evaluate_prefix("recs/!{timestamp:yyyy-MM-dd}/h='!{timestamp:HH}'/", when,
                              error_output_type=None) == "recs/2026-11-27/h='21'/"
    assert fr.evaluate_prefix("dt=!{timestamp:yyyy'T'HH}/", when, error_output_type=None) == "dt=2026T21/"
    assert fr.evaluate_prefix("e/!{firehose:error-output-type}/!{timestamp:yyyy}/", when,
                              error_output_type="processing-failed") == "e/processing-failed/2026/"
    assert fr.evaluate_prefix("r/!{firehose:random-string}/", when, error_output_type=None,
                              random_string=lambda: "abcdefghijk") == "r/abcdefghijk/2026/11/27/21/"
    assert re.fullmatch(r"[a-z0-9]{11}/2026/11/27/21/",
                        fr.evaluate_prefix("!{firehose:random-string}/", when, error_output_type=None))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("x/!{firehose:error-output-type}/", "only allowed in ErrorOutputPrefix"),
        ("x/!{timestamp:yyyy-QQ}/", "'QQ' is not supported"),
        ("x/!{partitionKeyFromQuery:customer}/", "is not supported locally"),
    ],
)
def test_an_unsupported_prefix_is_a_clear_configuration_error(template: str, message: str) -> None:
    with pytest.raises(fr.FirehoseConfigError, match=re.escape(message)):
        fr.evaluate_prefix(template, datetime(2026, 1, 1, tzinfo=UTC), error_output_type=None)


def test_object_names_follow_firehose_s_pattern() -> None:
    when = datetime(2026, 11, 27, 21, 5, 9, tzinfo=UTC)
    name = fr.object_name("de-c1w4-delivery-stream", "1", when, "u")
    assert name == "de-c1w4-delivery-stream-1-2026-11-27-21-05-09-u"


# ---- reading the source: every shard, nothing twice, nothing skipped ------------------------------------------
def test_every_shard_is_read_and_no_record_is_read_twice(stack: Any) -> None:
    s = stack(shards=3, processor={"BufferIntervalInSeconds": "0"},
              BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock)
    s.put([f"r{i}".encode() for i in range(60)])
    drain(runner, clock)
    s.put([f"q{i}".encode() for i in range(15)])
    drain(runner, clock)

    lines = s.delivered_lines()
    assert sorted(lines) == sorted([f"R{i}".encode() for i in range(60)] + [f"Q{i}".encode() for i in range(15)])
    shards = {r["kinesisRecordMetadata"]["shardId"] for e in processor.events for r in e["records"]}
    assert len(shards) == 3
    assert runner.events_read == runner.records_delivered == 75


def test_a_restarted_runner_resumes_after_its_checkpoint(stack: Any, tmp_path: Path) -> None:
    s = stack(shards=2, processor={"BufferIntervalInSeconds": "0"},
              BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    state = tmp_path / "firehose" / "delivery.json"
    clock, processor = FakeClock(), Processor()
    first = s.runner(processor, clock, state_path=state)
    s.put([f"a{i}".encode() for i in range(10)])
    drain(first, clock)

    s.put([f"b{i}".encode() for i in range(5)])
    second = s.runner(processor, clock, state_path=state)
    drain(second, clock)

    assert sorted(s.delivered_lines()) == sorted([f"A{i}".encode() for i in range(10)] +
                                                 [f"B{i}".encode() for i in range(5)])
    saved = json.loads(state.read_text())
    assert saved["records_delivered"] == 15 and saved["events_read"] == 15


def test_records_buffered_but_never_written_are_read_again_after_a_crash(stack: Any, tmp_path: Path) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 300})
    state = tmp_path / "delivery.json"
    clock, processor = FakeClock(), Processor()
    crashed = s.runner(processor, clock, state_path=state)
    s.put([b"kept"])
    crashed.poll_once()  # processed, waiting in the destination buffer: then the process dies
    assert crashed.records_buffered == 1 and s.objects() == {}

    restarted = s.runner(processor, clock, state_path=state)
    drain(restarted, clock, step=100)
    assert s.delivered_lines() == [b"KEPT"]


def test_without_a_processor_records_are_delivered_as_they_are(stack: Any) -> None:
    s = stack(processor=None, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    clock = FakeClock()
    runner = s.runner(Processor(), clock)
    s.put([b"raw-1\n", b"raw-2\n"])
    drain(runner, clock)
    assert sorted(s.delivered_lines()) == [b"raw-1", b"raw-2"]


def test_an_unsupported_delivery_stream_is_refused_when_the_runner_starts(stack: Any) -> None:
    s = stack(DynamicPartitioningConfiguration={"Enabled": True})
    description = s.firehose.describe_delivery_stream(DeliveryStreamName=s.delivery)
    with pytest.raises(fr.FirehoseConfigError, match="dynamic partitioning is not emulated"):
        fr.FirehoseRunner(description, s.kinesis, s.s3, Processor(), FakeClock())


def test_a_damaged_checkpoint_file_is_reported_and_the_stream_read_from_its_start(stack: Any, tmp_path: Path) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    state = tmp_path / "delivery.json"
    state.write_text("{not json")
    clock = FakeClock()
    runner = s.runner(Processor(), clock, state_path=state)
    assert runner.last_error is not None and "unreadable checkpoint file" in runner.last_error
    s.put([b"a"])
    drain(runner, clock)
    assert s.delivered_lines() == [b"A"]
    assert json.loads(state.read_text())["records_delivered"] == 1


# ---- runner state belongs to one incarnation of the source stream ------------------------------------------------
@pytest.mark.parametrize("sent", ["before the new runner starts", "after its first poll"])
def test_a_checkpoint_of_a_deleted_stream_is_not_used_for_the_stream_re_created_under_its_name(
    stack: Any, tmp_path: Path, sent: str,
) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    state = tmp_path / "delivery.json"
    clock, processor = FakeClock(), Processor()
    first = s.runner(processor, clock, state_path=state)
    s.put([f"old-{i}".encode() for i in range(50)])
    drain(first, clock)
    assert json.loads(state.read_text())["checkpoints"] == {"shardId-000000000000": "50"}

    created = s.recreate_stream()  # `harness down` then `harness up`: the same ARN, sequence numbers from 1 again
    new = [f"new-{i}".encode() for i in range(60)]  # more than the old checkpoint: its sequence number exists again
    if sent == "before the new runner starts":
        s.put(new)
    second = s.runner(processor, clock, state_path=state)
    second.poll_once()
    if sent == "after its first poll":
        s.put(new)
    drain(second, clock)

    assert sorted(line for line in s.delivered_lines() if line.startswith(b"NEW-")) == sorted(p.upper() for p in new)
    (discarded,) = second.stats()["state_discarded"]
    assert f"checkpoint of {s.stream_arn} created " in discarded and f"re-created (now created {created})" in discarded
    assert (second.events_read, second.records_delivered, second.objects_written) == (60, 60, 1)  # counters restart
    saved = json.loads(state.read_text())
    assert (saved["source_stream_created"], saved["records_delivered"]) == (created, 60)


def test_a_checkpoint_beyond_its_shard_s_latest_record_or_for_a_missing_shard_is_reported_and_read_again(
    stack: Any, tmp_path: Path,
) -> None:
    s = stack(shards=2, processor={"BufferIntervalInSeconds": "0"},
              BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    state = tmp_path / "delivery.json"
    clock, processor = FakeClock(), Processor()
    first = s.runner(processor, clock, state_path=state)
    payloads = [f"r{i}".encode() for i in range(30)]
    s.put(payloads)
    drain(first, clock)
    shard_of = {base64.b64decode(r["data"]): r["kinesisRecordMetadata"]["shardId"]
                for e in processor.events for r in e["records"]}
    assert set(shard_of.values()) == {"shardId-000000000000", "shardId-000000000001"}
    saved = json.loads(state.read_text())
    # Damage the checkpoints of the same incarnation: one far beyond its shard's end, one for a shard never created.
    good = saved["checkpoints"]["shardId-000000000001"]
    saved["checkpoints"]["shardId-000000000000"] = "900"
    saved["checkpoints"]["shardId-000000000007"] = "3"
    state.write_text(json.dumps(saved))

    second = s.runner(processor, clock, state_path=state)
    drain(second, clock)

    again = sorted(p.upper() for p in payloads if shard_of[p] == "shardId-000000000000")
    assert sorted(s.delivered_lines()) == sorted([p.upper() for p in payloads] + again)  # shard 0 twice, none lost
    assert second.stats()["state_discarded"] == [
        "checkpoint 900 for shardId-000000000000 ignored: the shard has no record at or after it (beyond its latest "
        "sequence number); reading from TRIM_HORIZON",
        "checkpoint 3 for shardId-000000000007 ignored: the stream has no such shard",
    ]
    # The same incarnation: counters go on (the first 30 are in S3), the valid checkpoint was kept.
    assert (second.events_read, second.records_delivered) == (30 + len(again), 30 + len(again))
    assert second.stats()["checkpoints"]["shardId-000000000001"] == good


def test_a_checkpoint_file_without_the_stream_s_creation_time_is_not_trusted(stack: Any, tmp_path: Path) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    state = tmp_path / "delivery.json"
    # The format before the creation time was saved: it may be a deleted stream's, so it could skip records.
    state.write_text(json.dumps({"source_stream_arn": s.stream_arn, "checkpoints": {"shardId-000000000000": "2"},
                                 "counters": {"events_read": 9, "records_delivered": 9}}))
    s.put([b"a", b"b", b"c"])
    clock = FakeClock()
    runner = s.runner(Processor(), clock, state_path=state)
    drain(runner, clock)
    assert sorted(s.delivered_lines()) == [b"A", b"B", b"C"]
    assert "older format" in runner.stats()["state_discarded"][0]
    assert (runner.events_read, runner.records_delivered) == (3, 3)


def test_a_stream_re_created_while_the_runner_runs_delivers_what_was_read_then_reads_the_new_one(
    stack: Any, tmp_path: Path,
) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 300})
    clock, processor = FakeClock(), Processor()
    runner = s.runner(processor, clock, state_path=tmp_path / "delivery.json")
    s.put([b"old-1", b"old-2", b"old-3"])
    runner.poll_once()
    assert runner.records_buffered == 3 and s.objects() == {}  # waiting for the destination interval

    s.recreate_stream()
    s.put([b"new-1", b"new-2"])
    runner.poll_once()  # notices the new incarnation: writes what it holds of the old one before reading on
    assert sorted(s.delivered_lines()) == [b"OLD-1", b"OLD-2", b"OLD-3"]
    assert "was re-created" in runner.stats()["state_discarded"][0]
    drain(runner, clock, step=100)

    assert sorted(s.delivered_lines()) == [b"NEW-1", b"NEW-2", b"OLD-1", b"OLD-2", b"OLD-3"]
    assert (runner.events_read, runner.records_delivered, runner.records_buffered) == (2, 2, 0)  # counters restart
