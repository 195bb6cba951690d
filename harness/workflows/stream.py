"""Streaming against the local stack: send shoppers' sessions to its Kinesis stream and follow their delivery.

`produce` writes sessions (made by `recsys.events` from the stack's source database) at a steady rate;
`wait_for_delivery` follows the delivery-stream runner's counters (its state file, written on every poll) until every
event sent is accounted for, delivered to the recommendations bucket or written under the error prefix.
`produce_and_wait` is both, for `harness demo`. The `stream` CLI commands are thin wrappers in `harness/cli/`.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.emulator import state as st

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"
if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

from recsys import events as ev  # noqa: E402  (lambda_src is the Lambda's root, not an installed package)

DEFAULT_TIMEOUT_S = 180.0
COUNTERS = ("events_read", "records_delivered", "records_dropped", "records_failed", "objects_written",
            "error_objects_written", "records_buffered")

Progress = Callable[[int, int], None]


class StreamError(RuntimeError):
    """A user-facing problem (stack not up, nothing seeded, delivery timed out): printed as one message."""


@dataclass(frozen=True)
class StreamTarget:
    moto_url: str
    region: str
    stream_name: str
    stream_arn: str | None
    delivery_stream: str
    bucket: str
    source: dict[str, str]
    runner_state: Path


def _output(outputs: dict[str, Any], name: str) -> Any:
    entry = outputs.get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def resolve_target(state_dir: Path) -> StreamTarget:
    """Where to send and where to look, from `state.json` (pure: no connection is made)."""
    state = st.load_state(state_dir)
    if not state.get("services"):
        raise StreamError("the local stack is not up: run `python -m harness up` first")
    outputs: dict[str, Any] = state.get("outputs") or {}
    names = {key: _output(outputs, key) for key in ("kinesis_stream_name", "delivery_stream_name",
                                                     "recommendations_bucket_id")}
    missing = [key for key, value in names.items() if not value]
    if missing:
        raise StreamError(f"the stack has no {', '.join(missing)} output yet: run `python -m harness up` to deploy it")
    from harness.cli.stack import DEFAULT_REGION, mysql_client_settings
    from harness.emulator.daemon import daemon_dir
    from harness.emulator.services import RunningServices

    delivery = str(names["delivery_stream_name"])
    return StreamTarget(
        moto_url=RunningServices.from_dict(state["services"]).moto.endpoint_url,
        region=str(state.get("region") or DEFAULT_REGION),
        stream_name=str(names["kinesis_stream_name"]),
        stream_arn=_output(outputs, "kinesis_stream_arn"),
        delivery_stream=delivery,
        bucket=str(names["recommendations_bucket_id"]),
        source=mysql_client_settings(state),
        runner_state=daemon_dir(state_dir) / "firehose" / f"{delivery}.json",
    )


def aws_client(target: StreamTarget, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=target.moto_url, region_name=target.region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def parse_rate(text: str | None) -> float | None:
    """`50/s`, `50`, `0.5/s` -> events per second; `max`, `0` or nothing -> as fast as possible (None)."""
    if text is None or text.strip().lower() in ("", "max", "0", "0/s"):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*s)?\s*", text)
    if not match:
        raise ValueError(f"--rate must look like 50/s (events per second) or max, got {text!r}")
    return float(match.group(1))


def pacing(total: int, rate: float | None, *, max_batch: int = ev.KINESIS_BATCH) -> Iterator[tuple[float, int]]:
    """(seconds after the start, how many to send then): batches of at most a fifth of a second's worth of events,
    so a rate is held smoothly rather than in one burst per second."""
    if rate is None:
        for start in range(0, total, max_batch):
            yield 0.0, min(max_batch, total - start)
        return
    per_batch = max(1, min(max_batch, math.ceil(rate / 5)))
    sent = 0
    while sent < total:
        count = min(per_batch, total - sent)
        yield sent / rate, count
        sent += count


def load_catalogue(target: StreamTarget) -> ev.Catalogue:
    import pymysql

    try:
        conn = pymysql.connect(host=target.source["host"], port=int(target.source["port"]),
                               user=target.source["user"], password=target.source["password"],
                               database=target.source["database"], connect_timeout=10, charset="utf8mb4")
    except pymysql.MySQLError as err:
        raise StreamError(f"cannot reach the source database {target.source['host']}:{target.source['port']}: "
                          f"{err.args[-1] if err.args else err}") from None
    try:
        return ev.load_catalogue(conn)
    except pymysql.MySQLError as err:
        raise StreamError(f"cannot read customers and products ({err.args[-1] if err.args else err}): "
                          "run `python -m harness seed` first") from None
    except ev.CatalogueError as err:
        raise StreamError(str(err)) from None
    finally:
        conn.close()


def runner_stats(target: StreamTarget) -> dict[str, Any] | None:
    """The runner's last saved counters, or None before its first poll (or when they belong to an older stream)."""
    try:
        saved = json.loads(target.runner_state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if target.stream_arn and saved.get("source_stream_arn") not in (None, target.stream_arn):
        return None
    return saved


def _settled(stats: dict[str, Any] | None) -> dict[str, int]:
    stats = stats or {}
    return {name: int(stats.get(name) or 0) for name in COUNTERS}


def _marker_path(state_dir: Path) -> Path:
    return state_dir / "stream" / "last-produce.json"


def produce(state_dir: Path, events: int, rate: float | None = None, *, seed: int | None = None,
            empty_history_rate: float = 0.0, progress: Progress | None = None,
            sleep: Callable[[float], None] = time.sleep) -> int:
    """Send `events` sessions at `rate` per second (None: as fast as Kinesis takes them). Returns how many were sent.

    Before sending, records the runner's counters, so `wait_for_delivery` counts only what this call sent."""
    if events < 1:
        raise StreamError(f"--events must be at least 1, got {events}")
    target = resolve_target(state_dir)
    try:
        mix = ev.SessionMix(empty_history_rate=empty_history_rate)
    except ValueError as err:
        raise StreamError(str(err)) from None
    catalogue = load_catalogue(target)
    seed = time.time_ns() if seed is None else seed
    entries = list(ev.kinesis_entries(ev.generate_sessions(catalogue, events, seed=seed, mix=mix)))
    marker = _marker_path(state_dir)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"baseline": _settled(runner_stats(target)), "events": events, "seed": seed,
                                  "stream_arn": target.stream_arn, "started_at": time.time()}))
    kinesis = aws_client(target, "kinesis")
    started = time.monotonic()
    sent = 0
    for offset, count in pacing(events, rate):
        delay = started + offset - time.monotonic()
        if delay > 0:
            sleep(delay)
        try:
            sent += ev.put_all(kinesis, target.stream_name, entries[sent : sent + count])
        except ev.PutRecordsError as err:
            raise StreamError(f"{err} (of {events} events, {sent} were sent before)") from None
        if progress:
            progress(sent, events)
    return sent


def _since_last_produce(state_dir: Path, target: StreamTarget) -> tuple[dict[str, int], int]:
    try:
        marker = json.loads(_marker_path(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return _settled(None), 0
    if marker.get("stream_arn") != target.stream_arn:
        return _settled(None), 0
    return {name: int(marker["baseline"].get(name, 0)) for name in COUNTERS}, int(marker.get("events", 0))


def delivery_progress(state_dir: Path) -> dict[str, int]:
    """What happened to the events of the last `produce`: delivered, failed, dropped, objects, still buffered."""
    target = resolve_target(state_dir)
    baseline, sent = _since_last_produce(state_dir, target)
    now = _settled(runner_stats(target))
    return {
        "events_sent": sent,
        "records_delivered": now["records_delivered"] - baseline["records_delivered"],
        "records_failed": now["records_failed"] - baseline["records_failed"],
        "records_dropped": now["records_dropped"] - baseline["records_dropped"],
        "objects": now["objects_written"] - baseline["objects_written"],
        "error_objects": now["error_objects_written"] - baseline["error_objects_written"],
        "records_buffered": now["records_buffered"],
    }


def wait_for_delivery(state_dir: Path, expected: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, *,
                      progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> dict[str, int]:
    """Block until `expected` records (default: all of the last `produce`) are delivered, dropped or failed.

    Raises `StreamError` on timeout, saying how many are still missing and where to look."""
    deadline = clock() + timeout_s
    while True:
        done = delivery_progress(state_dir)
        want = done["events_sent"] if expected is None else expected
        settled = done["records_delivered"] + done["records_failed"] + done["records_dropped"]
        if progress:
            progress(min(settled, want), want)
        if settled >= want:
            return done
        if clock() >= deadline:
            raise StreamError(
                f"after {timeout_s:.0f} s, {want - settled} of {want} events are not delivered yet "
                f"({done['records_buffered']} buffered in the runner); see `python -m harness stream status` and "
                "the daemon log under .local/logs/"
            )
        sleep(0.5)


def produce_and_wait(state_dir: Path, events: int, rate: float | None = None, *,
                     timeout_s: float = DEFAULT_TIMEOUT_S, seed: int | None = None, empty_history_rate: float = 0.0,
                     progress: Progress | None = None) -> dict[str, int]:
    """For `harness demo`: send, then wait; `{events_sent, records_delivered, records_failed, objects, ...}`."""
    sent = produce(state_dir, events, rate, seed=seed, empty_history_rate=empty_history_rate, progress=progress)
    result = wait_for_delivery(state_dir, sent, timeout_s)
    return {**result, "events_sent": sent}


def status(state_dir: Path) -> dict[str, Any]:
    target = resolve_target(state_dir)
    stats = runner_stats(target)
    return {
        "kinesis_stream": target.stream_name,
        "delivery_stream": target.delivery_stream,
        "bucket": target.bucket,
        "runner": "not started yet" if stats is None else ("error: " + stats["last_error"]
                                                            if stats.get("last_error") else "running"),
        **_settled(stats),
        "last_produce": delivery_progress(state_dir),
    }


def error_output_root(description: dict[str, Any]) -> str:
    """The literal start of the error output prefix (up to its first expression): what every error key starts with."""
    from harness.emulator.firehose_runner import DEFAULT_ERROR_PREFIX

    desc = description.get("DeliveryStreamDescription", description)
    dest = desc["Destinations"][0]
    s3 = dest.get("ExtendedS3DestinationDescription") or dest.get("S3DestinationDescription") or {}
    template = s3.get("ErrorOutputPrefix") or DEFAULT_ERROR_PREFIX
    return template.split("!{", 1)[0]


def latest_record(state_dir: Path) -> dict[str, Any] | None:
    """One delivered record from the newest object in the recommendations bucket (for the demo's report)."""
    target = resolve_target(state_dir)
    s3 = aws_client(target, "s3")
    error_root = error_output_root(aws_client(target, "firehose").describe_delivery_stream(
        DeliveryStreamName=target.delivery_stream))
    newest: dict[str, Any] | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=target.bucket):
        for obj in page.get("Contents", []):
            if obj["Key"].startswith(error_root) if error_root else "processing-failed" in obj["Key"]:
                continue
            if newest is None or obj["LastModified"] > newest["LastModified"]:
                newest = obj
    if newest is None:
        return None
    body = s3.get_object(Bucket=target.bucket, Key=newest["Key"])["Body"].read().decode("utf-8")
    first = body.splitlines()[0] if body else ""
    return json.loads(first) if first else None
