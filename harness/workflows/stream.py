"""Streaming to a deployed stack: send shoppers' sessions to its Kinesis stream and follow them into S3.

`produce` writes sessions (made by `recsys.events` from the stack's customers and products) at a steady rate and
returns what it sent (`Produced`: the session ids and when). `wait_for_delivery` follows those sessions into the
recommendations bucket and the error output (`harness.workflows.delivery`) until each is delivered or failed;
`status` reads the stream, the delivery stream and the delivery stream's CloudWatch metrics. Everything goes through
the stack's `StackHandle`, so the same code streams to the local stack and to one on AWS. The `stream` commands are
thin wrappers in `harness/cli/stream.py`.

The customers and products come from the source database when it can be reached from here (the local stack; a lab
stack), else from the data lake's ETL output, which holds every customer and product that has a rating (the program's
source database is private on AWS).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from recsys import events as ev

from harness.workflows.delivery import Delivery, DeliveryLayout, DeliveryScan, buffering_seconds, layout_of
from harness.workflows.handle import HandleError, StackHandle

DEFAULT_TIMEOUT_S = 180.0
# Beyond the delivery stream's own buffering: the processor's run and retries, S3's write.
DELIVERY_MARGIN_S = 120.0
POLL_S = 1.0
ETL_PREFIX = "ratings-ml-training/"
# The delivery stream's CloudWatch metrics `status` sums (namespace AWS/Firehose, as Firehose publishes them):
# (key in the status, metric name, statistic).
METRICS = (
    ("records_read", "DataReadFromKinesisStream.Records", "Sum"),
    ("records_processed", "SucceedProcessing.Records", "Sum"),
    ("records_delivered", "DeliveryToS3.Records", "Sum"),
    ("objects_written", "DeliveryToS3.Success", "Sum"),
    ("invocations", "ExecuteProcessing.Success", "SampleCount"),
    ("invocations_succeeded", "ExecuteProcessing.Success", "Sum"),
)
DEFAULT_METRICS_WINDOW = timedelta(hours=1)

Progress = Callable[[int, int], None]


class StreamError(RuntimeError):
    """A user-facing problem (no such output, nothing seeded, delivery timed out): printed as one message."""


@dataclass(frozen=True)
class StreamTarget:
    stream_name: str
    delivery_stream: str
    layout: DeliveryLayout
    buffering_s: int  # how long a record may wait in the delivery stream's buffers

    @property
    def delivery_timeout_s(self) -> float:
        """Long enough for the slowest record of a burst: the stream's buffering (5 minutes and more with AWS's
        defaults, seconds on the local stack) plus a margin, and never less than DEFAULT_TIMEOUT_S."""
        return max(DEFAULT_TIMEOUT_S, self.buffering_s + DELIVERY_MARGIN_S)


def resolve_target(handle: StackHandle) -> StreamTarget:
    """The stream, the delivery stream and where it writes (its description, read through the Firehose API)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stream, delivery = (str(handle.output(name)) for name in ("kinesis_stream_name", "delivery_stream_name"))
        bucket = str(handle.output("recommendations_bucket_id"))
    except HandleError as err:
        raise StreamError(str(err)) from None
    try:
        description = handle.client("firehose").describe_delivery_stream(DeliveryStreamName=delivery)
    except (BotoCoreError, ClientError) as err:
        raise StreamError(f"cannot describe the delivery stream {delivery} ({err}); is the stack deployed?") from None
    return StreamTarget(stream_name=stream, delivery_stream=delivery, layout=layout_of(description, bucket),
                        buffering_s=buffering_seconds(description))


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


# ---- the catalogue sessions are made from ----------------------------------------------------------------------------

def catalogue_from_source(settings: dict[str, Any]) -> ev.Catalogue:
    """Customers and products from the source database (`StackHandle.source_db_settings()`'s shape)."""
    import pymysql

    try:
        conn = pymysql.connect(host=settings["host"], port=int(settings["port"]), user=settings["user"],
                               password=settings["password"], database=settings["database"], connect_timeout=10,
                               charset="utf8mb4")
    except pymysql.MySQLError as err:
        raise ConnectionError(f"cannot reach the source database {settings['host']}:{settings['port']}: "
                              f"{err.args[-1] if err.args else err}") from None
    try:
        return ev.load_catalogue(conn)
    except pymysql.MySQLError as err:
        raise StreamError(f"cannot read customers and products ({err.args[-1] if err.args else err}): "
                          "run `harness seed` first") from None
    except ev.CatalogueError as err:
        raise StreamError(str(err)) from None
    finally:
        conn.close()


def catalogue_from_rows(rows: list[dict[str, Any]]) -> ev.Catalogue:
    """Customers and products from ETL output rows, in the source database's order (pure)."""
    customers: dict[int, ev.Customer] = {}
    products: dict[str, ev.Product] = {}
    for row in rows:
        number, code = row.get("customerNumber"), row.get("productCode")
        if number is not None and row.get("city") is not None and row.get("country") is not None:
            limit = row.get("creditLimit")
            customers.setdefault(int(number), ev.Customer(int(number), str(row["city"]), str(row["country"]),
                                                          None if limit is None else float(limit)))
        if code is not None and row.get("productLine") is not None:
            products.setdefault(str(code), ev.Product(str(code), str(row["productLine"])))
    try:
        return ev.Catalogue(tuple(customers[n] for n in sorted(customers)),
                            tuple(products[c] for c in sorted(products)))
    except ev.CatalogueError as err:
        raise StreamError(f"the data lake's ETL output has no customers or products: {err}") from None


def catalogue_from_data_lake(handle: StackHandle) -> ev.Catalogue:
    import pyarrow.dataset as ds

    from harness.workflows.train import download_prefix

    columns = ["customerNumber", "city", "country", "creditLimit", "productCode", "productLine"]
    with tempfile.TemporaryDirectory(prefix="recsys-catalogue-") as tmp:
        download_prefix(handle.client("s3"), str(handle.output("data_lake_bucket_id")), ETL_PREFIX, Path(tmp))
        table = ds.dataset(tmp, format="parquet", partitioning="hive").to_table(columns=columns)
    return catalogue_from_rows(table.to_pylist())


def load_catalogue(handle: StackHandle, *, say: Callable[[str], None] = lambda text: None) -> ev.Catalogue:
    """The source database's customers and products, or the data lake's when the source cannot be reached."""
    try:
        return catalogue_from_source(handle.source_db_settings())
    except (ConnectionError, HandleError) as unreachable:
        try:
            catalogue = catalogue_from_data_lake(handle)
        except (HandleError, ValueError) as err:  # TrainingDataError is a ValueError
            raise StreamError(f"{unreachable}; and the data lake has no ETL output to make sessions from ({err})"
                              ) from None
        say(f"{unreachable}: sessions are made from the data lake's customers and products instead")
        return catalogue


# ---- producing and following --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Produced:
    """What one `produce` sent: the sessions to look for, and when they were sent (UTC, ISO 8601)."""

    stack: str
    stream_name: str
    started_at: str
    seed: int
    session_ids: tuple[str, ...]

    @property
    def since(self) -> datetime:
        return datetime.fromisoformat(self.started_at)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Produced:
        data = json.loads(text)
        return cls(stack=str(data["stack"]), stream_name=str(data["stream_name"]),
                   started_at=str(data["started_at"]), seed=int(data["seed"]),
                   session_ids=tuple(str(sid) for sid in data["session_ids"]))


def produce(handle: StackHandle, events: int, rate: float | None = None, *, seed: int | None = None,
            empty_history_rate: float = 0.0, progress: Progress | None = None,
            say: Callable[[str], None] = lambda text: None, sleep: Callable[[float], None] = time.sleep) -> Produced:
    """Send `events` sessions at `rate` per second (None: as fast as Kinesis takes them)."""
    if events < 1:
        raise StreamError(f"--events must be at least 1, got {events}")
    try:
        mix = ev.SessionMix(empty_history_rate=empty_history_rate)
    except ValueError as err:
        raise StreamError(str(err)) from None
    target = resolve_target(handle)
    catalogue = load_catalogue(handle, say=say)
    seed = time.time_ns() if seed is None else seed
    sessions = list(ev.generate_sessions(catalogue, events, seed=seed, mix=mix))
    entries = list(ev.kinesis_entries(sessions))
    kinesis = handle.client("kinesis")
    produced = Produced(stack=handle.name, stream_name=target.stream_name, started_at=datetime.now(UTC).isoformat(),
                        seed=seed, session_ids=tuple(s["session_id"] for s in sessions))
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
    return produced


def wait_for_delivery(handle: StackHandle, produced: Produced, timeout_s: float | None = None, *,
                      progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> Delivery:
    """Block until every session of `produced` is delivered or in the error output (at most `timeout_s`; None: what
    the delivery stream's buffering needs); `StreamError` on timeout, saying how many are missing and where to look."""
    target = resolve_target(handle)
    follow = DeliveryScan(handle.client("s3"), target.layout, produced.session_ids, produced.since)
    timeout_s = target.delivery_timeout_s if timeout_s is None else timeout_s
    deadline = clock() + timeout_s
    while True:
        follow.poll()
        found = follow.delivery()
        if progress:
            progress(found.events_sent - found.records_pending, found.events_sent)
        if found.settled:
            return found
        if clock() >= deadline:
            raise StreamError(
                f"after {timeout_s:.0f} s, {found.records_pending} of {found.events_sent} sessions are neither in "
                f"s3://{follow.layout.bucket}/ nor in its error output; see `harness stream status` (the delivery "
                "stream's metrics) and the functions' logs")
        sleep(POLL_S)


def produce_and_wait(handle: StackHandle, events: int, rate: float | None = None, *,
                     timeout_s: float | None = None, seed: int | None = None, empty_history_rate: float = 0.0,
                     progress: Progress | None = None) -> Delivery:
    produced = produce(handle, events, rate, seed=seed, empty_history_rate=empty_history_rate, progress=progress)
    return wait_for_delivery(handle, produced, timeout_s)


# ---- status, from the AWS APIs ---------------------------------------------------------------------------------------

def metric_sums(cloudwatch: Any, delivery_stream: str, start: datetime, end: datetime) -> dict[str, int]:
    """The delivery stream's metrics summed from `start` to `end` (0 where Firehose published nothing)."""
    period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
    sums: dict[str, int] = {}
    for key, metric, statistic in METRICS:
        answer = cloudwatch.get_metric_statistics(
            Namespace="AWS/Firehose", MetricName=metric, StartTime=start, EndTime=end, Period=period,
            Statistics=[statistic], Dimensions=[{"Name": "DeliveryStreamName", "Value": delivery_stream}])
        sums[key] = int(round(sum(point.get(statistic, 0.0) for point in answer.get("Datapoints", []))))
    return sums


def status(handle: StackHandle, produced: Produced | None = None, *,
           window: timedelta = DEFAULT_METRICS_WINDOW) -> dict[str, Any]:
    """The stream and the delivery stream as their APIs describe them, the delivery stream's metrics over `window`,
    and what became of `produced` (the last `produce`) when given."""
    from botocore.exceptions import BotoCoreError, ClientError

    target = resolve_target(handle)
    # A minute past now: a datapoint of this very second is past an `EndTime` of now once that is cut to the second.
    end = datetime.now(UTC) + timedelta(minutes=1)
    try:
        summary = handle.client("kinesis").describe_stream_summary(StreamName=target.stream_name)
        description = handle.client("firehose").describe_delivery_stream(DeliveryStreamName=target.delivery_stream)
        metrics = metric_sums(handle.client("cloudwatch"), target.delivery_stream, end - window, end)
    except (BotoCoreError, ClientError) as err:
        raise StreamError(f"cannot read the stream's status ({err})") from None
    info: dict[str, Any] = {
        "kinesis_stream": target.stream_name,
        "kinesis_status": summary["StreamDescriptionSummary"]["StreamStatus"],
        "delivery_stream": target.delivery_stream,
        "delivery_status": description["DeliveryStreamDescription"]["DeliveryStreamStatus"],
        "bucket": target.layout.bucket,
        "metrics_minutes": int(window.total_seconds() // 60),  # the metrics below are sums over the last this many
        **metrics,
    }
    if produced is not None and produced.stream_name == target.stream_name:
        follow = DeliveryScan(handle.client("s3"), target.layout, produced.session_ids, produced.since)
        follow.poll()
        info["last_produce"] = follow.delivery().counts()
    return info


def error_output_root(description: dict[str, Any]) -> str:
    """The literal start of the error output prefix (up to its first expression): what every error key starts with."""
    return layout_of(description, "").error_template.split("!{", 1)[0]

