"""Redrive through the local stack: a vector-database outage longer than the processor's retries sends good records to
the error output; `harness redrive` runs the stack's own redrive function (deployed by `harness up`, invoked through the
local Lambda API); every session ends delivered exactly once, and a second redrive sends nothing."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recsys import events

from harness.cli.target import local_handle
from harness.emulator import firehose_runner
from harness.emulator.control_plane import ControlPlaneClient, read_info
from harness.emulator.faults import start_vector_db, stop_vector_db, vector_db_record
from harness.workflows import stream as streaming
from harness.workflows.soak.target import ensure_ready

REDRIVE_SCHEDULE = "rate(1 hour)"


def bucket_contents(local_stack: Any, bucket: str) -> dict[str, bytes]:
    s3 = local_stack.client("s3")
    return {obj["Key"]: s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for obj in page.get("Contents", [])}


def session_ids(catalogue: Any, count: int, seed: int, empty_history_rate: float = 0.0) -> list[dict[str, Any]]:
    return list(events.generate_sessions(catalogue, count, seed=seed,
                                         mix=events.SessionMix(empty_history_rate=empty_history_rate)))


def runner_stats(state_dir: Path) -> dict[str, Any]:
    """The delivery runner's counters, as the control plane reports them."""
    info = read_info(state_dir)
    assert info is not None, "the control plane is not running"
    streams = ControlPlaneClient(info.url).status()["delivery_streams"]
    return dict(next(iter(streams.values()), {}))


def wait_settled(state_dir: Path, baseline: int, more: int, timeout_s: float = 240) -> None:
    """Until the runner has written `more` records (delivered or failed) beyond `baseline`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = runner_stats(state_dir)
        done = int(stats.get("records_delivered", 0)) + int(stats.get("records_failed", 0))
        if done >= baseline + more and not stats.get("records_buffered"):
            return
        time.sleep(0.5)
    raise AssertionError(f"the runner did not write {more} more records within {timeout_s} s: {stats}")


def written(state_dir: Path) -> int:
    stats = runner_stats(state_dir)
    return int(stats.get("records_delivered", 0)) + int(stats.get("records_failed", 0))


def redrive(local_stack: Any, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(local_stack.run("redrive", "--json", *args, timeout=400).stdout)
    return result


def test_an_outage_is_redriven_by_the_deployed_function_and_every_session_is_delivered_exactly_once(
        local_stack: Any) -> None:
    state_dir = local_stack.state_dir
    # `harness up` deployed the function and recorded its hourly schedule (the emulator records, never fires it).
    function = local_stack.output("redrive_function_name")
    rules = local_stack.client("events").list_rules()["Rules"]
    assert [r["ScheduleExpression"] for r in rules if "redrive" in r["Name"]] == [REDRIVE_SCHEDULE]
    assert function.endswith("-redrive")

    target = ensure_ready(local_handle(state_dir), prepare=True, say=print)
    catalogue = streaming.load_catalogue(target.handle)
    bucket = target.stream.layout.bucket
    seeds = [uuid.uuid4().int % 10**9 for _ in range(2)]

    # Delivered before the outage.
    before = streaming.produce_and_wait(target.handle, 40, None, seed=seeds[0], timeout_s=240)
    assert before.records_delivered == 40

    # The vector database stops for longer than the processor's retries: every batch of the second send fails.
    record = vector_db_record(state_dir, int(target.handle.output("vector_db_port")))
    stop_vector_db(record)
    try:
        sent = streaming.produce(target.handle, 60, None, seed=seeds[1], empty_history_rate=0.1)
        outage = streaming.wait_for_delivery(target.handle, sent, 240)
    finally:
        start_vector_db(record)
    assert (outage.records_delivered, outage.records_failed) == (0, 60)

    first_batch = session_ids(catalogue, 40, seeds[0])
    second_batch = session_ids(catalogue, 60, seeds[1], empty_history_rate=0.1)
    empty = {s["session_id"] for s in second_batch if not s["browse_history"]}
    assert 0 < len(empty) < 60

    # Beside Firehose's own error objects: a copy of a session that was delivered before the outage (as a runner
    # restart can leave), and a record that is not a session at all.
    description = local_stack.client("firehose").describe_delivery_stream(
        DeliveryStreamName=target.stream.delivery_stream)["DeliveryStreamDescription"]
    template = description["Destinations"][0]["ExtendedS3DestinationDescription"]["ErrorOutputPrefix"]
    now = datetime.now(UTC)
    extra_key = firehose_runner.evaluate_prefix(template, now, error_output_type="processing-failed") + \
        firehose_runner.object_name(target.stream.delivery_stream, "1", now)

    def document(data: bytes) -> str:
        return json.dumps({"attemptsMade": 3, "arrivalTimestamp": int(now.timestamp() * 1000),
                           "errorCode": "Lambda.FunctionError", "errorMessage": "injected",
                           "attemptEndingTimestamp": int(now.timestamp() * 1000),
                           "rawData": base64.b64encode(data).decode(), "lambdaArn": "arn:aws:lambda:injected"})

    already = json.dumps(first_batch[0]).encode()
    local_stack.client("s3").put_object(Bucket=bucket, Key=extra_key, Body=(
        document(already) + "\n" + document(b"not a session") + "\n").encode())

    dry = redrive(local_stack, "--dry-run")
    assert (dry["to_send"], dry["sent"], dry["already_delivered"], dry["poison"], dry["objects_marked"]) == (
        60, 0, 1, 1, 0)
    assert dry["poison_records"] == [{"key": extra_key, "line": 2, "error_code": "Lambda.FunctionError",
                                      "reason": "the record is not valid JSON (Expecting value at position 0)"}]
    shown = local_stack.run("redrive", "--dry-run", timeout=400).stdout
    assert "to send" in shown and "poison records" in shown
    assert f"  {extra_key} line 2: Lambda.FunctionError: the record is not valid JSON" in shown.splitlines()[-1]

    baseline = written(state_dir)
    report = redrive(local_stack)
    assert (report["sent"], report["already_delivered"], report["duplicates"], report["poison"]) == (60, 1, 0, 1)
    assert report["objects_marked"] == report["objects_read"] >= 2
    wait_settled(state_dir, baseline, 60)

    again = redrive(local_stack)
    assert (again["sent"], again["chosen"]) == (0, 0), "a second redrive sends nothing"
    assert again["objects_settled_before"] == report["objects_marked"], "the first run's objects are not even read"
    # The empty-history sessions failed again on their own merits (new ProcessingFailed objects, read and marked
    # once): they wait for an opt-in, never sent by default.
    assert again["left_processing_failed"] == len(empty)
    third = redrive(local_stack)
    assert (third["sent"], third["objects_read"], third["left_processing_failed"]) == (0, 0, len(empty))

    # Reconcile by session id across the whole bucket.
    delivered: Counter[str] = Counter()
    failed: dict[str, list[str]] = {}
    for key, body in bucket_contents(local_stack, bucket).items():
        if key.startswith("errors/redriven/"):
            continue
        for line in body.decode().splitlines():
            value = json.loads(line)
            if key.startswith("errors/"):
                try:
                    payload = json.loads(base64.b64decode(value["rawData"]))
                except ValueError:
                    continue
                failed.setdefault(payload["session_id"], []).append(value["errorCode"])
            else:
                delivered[value["session_id"]] += 1
                assert value["recommended_items"], key
    for s in first_batch:
        assert delivered[s["session_id"]] == 1, s["session_id"]
    for s in second_batch:
        sid = s["session_id"]
        if sid in empty:
            assert delivered[sid] == 0 and sorted(failed[sid]) == ["Lambda.FunctionError", "Lambda.ProcessingFailed"]
        else:
            assert delivered[sid] == 1, sid
            assert failed[sid] == ["Lambda.FunctionError"], "failed once, in the outage"
