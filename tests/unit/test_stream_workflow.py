"""The stream workflow through a `StackHandle` against a real moto: sessions into Kinesis, followed into S3 by
session id (the delivered output and the error output, as a user reads them on AWS), status from the AWS APIs."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from recsys import events as ev

from harness.workflows import delivery
from harness.workflows import stream as streaming
from harness.workflows.handle import AwsEndpoints, StackHandle

CATALOGUE = ev.Catalogue(customers=(ev.Customer(103, "Nantes", "France", 21000.0),
                                    ev.Customer(112, "Las Vegas", "USA", None)),
                         products=(ev.Product("S10_1678", "Motorcycles"), ev.Product("S12_1108", "Classic Cars")))
ERROR_TEMPLATE = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"


@pytest.fixture
def stack(moto_service: Any) -> Iterator[StackHandle]:
    """A Kinesis stream, a delivery stream into a bucket (default Prefix, the program's error prefix), and a handle."""
    suffix = uuid.uuid4().hex[:8]
    handle = StackHandle(name="t", outputs={"kinesis_stream_name": f"s-{suffix}", "delivery_stream_name": f"d-{suffix}",
                                            "recommendations_bucket_id": f"recs-{suffix}"},
                         aws=AwsEndpoints(region="us-east-1", default_url=moto_service.endpoint_url,
                                          credentials=("testing", "testing")))
    handle.client("s3").create_bucket(Bucket=f"recs-{suffix}")
    handle.client("kinesis").create_stream(StreamName=f"s-{suffix}", ShardCount=1)
    handle.client("firehose").create_delivery_stream(
        DeliveryStreamName=f"d-{suffix}", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/f",
                                            "BucketARN": f"arn:aws:s3:::recs-{suffix}",
                                            "ErrorOutputPrefix": ERROR_TEMPLATE})
    yield handle


def hour_path(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y/%m/%d/%H")


def delivered_object(handle: StackHandle, when: datetime, *session_ids: str, recommended: bool = True,
                     compress: bool = False) -> str:
    key = f"{hour_path(when)}/d-1-{uuid.uuid4()}" + (".gz" if compress else "")
    body = b"".join(json.dumps({"session_id": sid, "customer_number": 103,
                                "recommended_items": [{"id": "S10_1678", "score": 1.5}] if recommended else [],
                                "similar_items": {}}).encode() + b"\n" for sid in session_ids)
    handle.client("s3").put_object(Bucket=handle.outputs["recommendations_bucket_id"], Key=key,
                                   Body=gzip.compress(body) if compress else body)
    return key


def error_object(handle: StackHandle, when: datetime, codes: dict[str, str]) -> str:
    key = f"errors/processing-failed/{hour_path(when)}/d-1-{uuid.uuid4()}"
    lines = [json.dumps({"attemptsMade": 1, "arrivalTimestamp": int(when.timestamp() * 1000), "errorCode": code,
                         "errorMessage": "m", "rawData": base64.b64encode(json.dumps({"session_id": sid}).encode())
                         .decode()}) for sid, code in codes.items()]
    handle.client("s3").put_object(Bucket=handle.outputs["recommendations_bucket_id"], Key=key,
                                   Body="\n".join(lines).encode())
    return key


def test_the_layout_and_the_buffering_are_read_from_the_delivery_streams_description() -> None:
    description = {"DeliveryStreamDescription": {"Destinations": [{"ExtendedS3DestinationDescription": {
        "Prefix": "recs/", "ErrorOutputPrefix": ""}}]}}
    assert delivery.layout_of(description, "b") == delivery.DeliveryLayout("b", "recs/", "processing-failed/")
    assert delivery.buffering_seconds(description) == 300  # Firehose's default S3 interval, no processor
    processed = {"Destinations": [{"ExtendedS3DestinationDescription": {
        "BufferingHints": {"IntervalInSeconds": 10, "SizeInMBs": 1},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:f"},
            {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "20"}]}]}}}]}
    assert delivery.buffering_seconds(processed) == 30
    default_processor = {"Destinations": [{"ExtendedS3DestinationDescription": {"ProcessingConfiguration": {
        "Processors": [{"Type": "Lambda", "Parameters": []}]}}}]}
    assert delivery.buffering_seconds(default_processor) == 360
    assert streaming.error_output_root({"Destinations": [{"S3DestinationDescription": {
        "ErrorOutputPrefix": ERROR_TEMPLATE}}]}) == "errors/"


def test_the_scan_counts_each_session_once_by_where_it_ended_up(stack: StackHandle) -> None:
    now = datetime.now(UTC)
    since = now - timedelta(seconds=5)
    wanted = ["a", "b", "d", "e", "f"]
    delivered_object(stack, now, "a", "b", "other")
    delivered_object(stack, now, "b", compress=True)  # a second copy (at least once)
    delivered_object(stack, now - timedelta(hours=3), "e")  # an hour the sessions cannot be in: not listed
    delivered_object(stack, now, "f", recommended=False)
    # b failed first, was redriven and delivered: delivered. d failed only: failed.
    error_object(stack, now, {"b": "Lambda.FunctionError", "d": "Lambda.ProcessingFailed", "x": "Lambda.FunctionError"})
    follow = streaming.DeliveryScan(stack.client("s3"), streaming.resolve_target(stack).layout, wanted, since)

    follow.poll()
    found = follow.delivery()

    assert found.counts() == {"events_sent": 5, "records_delivered": 3, "records_failed": 1, "records_pending": 1,
                              "objects": 3, "error_objects": 1, "duplicates": 1, "without_recommendations": 1}
    assert found.failures == {"Lambda.ProcessingFailed": 1} and not found.settled
    assert found.sample is not None and found.sample["session_id"] in {"a", "b", "f"}

    reads: list[str] = []
    original = follow._read
    follow._read = lambda key: reads.append(key) or original(key)  # type: ignore[method-assign]
    latest = delivered_object(stack, now, "e")
    follow.poll()
    assert reads == [latest], "objects already read are not read again"
    assert follow.delivery().settled and follow.delivery().records_delivered == 4


def test_produce_sends_the_sessions_it_reports_and_wait_follows_them_into_s3(
        stack: StackHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "load_catalogue", lambda handle, say: CATALOGUE)
    produced = streaming.produce(stack, 7, None, seed=5)

    assert produced.stack == "t" and len(produced.session_ids) == 7
    assert streaming.Produced.from_json(produced.to_json()) == produced
    assert list(produced.session_ids) == [s["session_id"] for s in ev.generate_sessions(CATALOGUE, 7, seed=5)]
    kinesis = stack.client("kinesis")
    shard = kinesis.describe_stream(StreamName=produced.stream_name)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=produced.stream_name, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    sent = [json.loads(r["Data"])["session_id"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]]
    assert sent == list(produced.session_ids)

    now = datetime.now(UTC)
    delivered_object(stack, now, *produced.session_ids[:5])
    error_object(stack, now, {sid: "Lambda.ProcessingFailed" for sid in produced.session_ids[5:]})
    found = streaming.wait_for_delivery(stack, produced, 5, sleep=lambda s: None)
    assert (found.records_delivered, found.records_failed, found.objects) == (5, 2, 1)
    # moto's delivery stream buffers 300 s by default: a wait without a timeout allows that plus the margin.
    assert streaming.resolve_target(stack).delivery_timeout_s == 300 + streaming.DELIVERY_MARGIN_S


def test_wait_times_out_saying_how_many_sessions_are_missing(stack: StackHandle) -> None:
    produced = streaming.Produced(stack="t", stream_name=stack.outputs["kinesis_stream_name"],
                                  started_at=datetime.now(UTC).isoformat(), seed=1, session_ids=("a", "b", "c"))
    delivered_object(stack, datetime.now(UTC), "a")
    ticks = iter(range(100))
    with pytest.raises(streaming.StreamError) as raised:
        streaming.wait_for_delivery(stack, produced, 3, sleep=lambda s: None, clock=lambda: float(next(ticks)))
    bucket = stack.outputs["recommendations_bucket_id"]
    assert str(raised.value) == (f"after 3 s, 2 of 3 sessions are neither in s3://{bucket}/ nor in its error output; "
                                 "see `harness stream status` (the delivery stream's metrics) and the functions' logs")


def test_a_stack_without_the_stream_outputs_says_which_is_missing() -> None:
    handle = StackHandle(name="dev", outputs={"kinesis_stream_name": "s"}, aws=AwsEndpoints())
    with pytest.raises(streaming.StreamError, match="the stack dev has no `delivery_stream_name` output"):
        streaming.resolve_target(handle)


def test_status_comes_from_the_stream_apis_and_the_delivery_streams_metrics(stack: StackHandle) -> None:
    name = stack.outputs["delivery_stream_name"]
    dimensions = [{"Name": "DeliveryStreamName", "Value": name}]
    now = datetime.now(UTC)
    stack.client("cloudwatch").put_metric_data(Namespace="AWS/Firehose", MetricData=[
        {"MetricName": "DataReadFromKinesisStream.Records", "Dimensions": dimensions, "Value": 30, "Timestamp": now},
        {"MetricName": "DataReadFromKinesisStream.Records", "Dimensions": dimensions, "Value": 12, "Timestamp": now},
        {"MetricName": "DeliveryToS3.Records", "Dimensions": dimensions, "Value": 40, "Timestamp": now},
        {"MetricName": "ExecuteProcessing.Success", "Dimensions": dimensions, "Timestamp": now,
         "StatisticValues": {"SampleCount": 4, "Sum": 3, "Minimum": 0, "Maximum": 1}},
        {"MetricName": "DeliveryToS3.Records", "Dimensions": [{"Name": "DeliveryStreamName", "Value": "other"}],
         "Value": 999, "Timestamp": now},
    ])
    produced = streaming.Produced(stack="t", stream_name=stack.outputs["kinesis_stream_name"],
                                  started_at=now.isoformat(), seed=1, session_ids=("a", "b"))
    delivered_object(stack, now, "a")

    info = streaming.status(stack, produced)

    assert info["kinesis_stream"] == stack.outputs["kinesis_stream_name"] and info["kinesis_status"] == "ACTIVE"
    assert info["delivery_stream"] == name and info["delivery_status"] == "ACTIVE"
    assert {key: info[key] for key, _, _ in streaming.METRICS} == {
        "records_read": 42, "records_processed": 0, "records_delivered": 40, "objects_written": 0,
        "invocations": 4, "invocations_succeeded": 3}
    assert info["last_produce"]["records_delivered"] == 1 and info["last_produce"]["records_pending"] == 1


def test_the_catalogue_from_the_data_lake_has_each_customer_and_product_once_in_order() -> None:
    rows = [{"customerNumber": 112, "city": "Las Vegas", "country": "USA", "creditLimit": None,
             "productCode": "S12_1108", "productLine": "Classic Cars"},
            {"customerNumber": 103, "city": "Nantes", "country": "France", "creditLimit": 21000,
             "productCode": "S10_1678", "productLine": "Motorcycles"},
            {"customerNumber": 103, "city": "Nantes", "country": "France", "creditLimit": 21000,
             "productCode": "S12_1108", "productLine": "Classic Cars"}]
    assert streaming.catalogue_from_rows(rows) == CATALOGUE
    with pytest.raises(streaming.StreamError, match="no customers or products"):
        streaming.catalogue_from_rows([])
