"""The local delivery stream: what Amazon Data Firehose does with a Kinesis source, a Lambda processor and S3.

moto stores a delivery stream's configuration but never reads its Kinesis source or calls its processor, so the daemon
runs one `FirehoseRunner` per delivery stream. It follows the service's documented behaviour:

- reads every shard of the source stream, keeping a read position and a delivered checkpoint per shard (persisted to
  `state_path` when given): a restart resumes after the last record written to S3, nothing skipped. The state belongs
  to one incarnation of the stream (ARN and creation time, `harness.emulator.runner_state`): another's is discarded
  (counters
  restart), a checkpoint beyond its shard's end makes that shard be read from TRIM_HORIZON, both reported; a stream
  re-created while the runner runs is noticed at the next poll, what was read from the old one delivered first;
- buffers records for the processor (`BufferSizeInMBs`, default 1 MiB; `BufferIntervalInSeconds`, default 60 s) and
  invokes it with the Firehose event (invocationId, deliveryStreamArn, sourceKinesisStreamArn, region, records with
  recordId, approximateArrivalTimestamp, data, kinesisRecordMetadata);
- checks the response as Firehose does: a missing, unknown or duplicated recordId, an unknown result or data that is
  not base64 fails the whole invocation; retries `NumberOfRetries` times (default 3), then sends the batch to the error
  output;
- buffers transformed records for S3 (`BufferingHints`, default 5 MiB / 300 s) and writes objects named
  `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>` under the evaluated `Prefix` (default `YYYY/MM/DD/HH/`, UTC, from
  the oldest record's arrival time); failed records go under `ErrorOutputPrefix` (default `processing-failed/`) as
  Firehose's JSON (attemptsMade, arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp, rawData, lambdaArn).

It never drops a record: `events_read == records_delivered + records_dropped + records_failed + records_buffered`, where
delivered and failed count records written to S3; after a restart `events_read` restarts from the saved sum, as what was
buffered is read again. Delivery is at-least-once, as Firehose's: a runner that dies after writing an object, before a
checkpoint covering its records is saved, reads and writes those records again (a clean stop flushes first).

Not implemented (fails loudly at construction when configured): dynamic partitioning, format conversion, compression
other than UNCOMPRESSED and GZIP, processors other than Lambda, S3 backup. Differences on purpose: a new runner starts
at the stream's oldest record (TRIM_HORIZON) rather than LATEST, so events sent before the runner started are delivered.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness.emulator import runner_state
from harness.emulator.lambda_runtime import REQUEST_PAYLOAD_LIMIT_BYTES

MIB = 1024 * 1024
# Lambda's synchronous invocation payload limit, the one the local runtime enforces: Firehose never sends a bigger
# event.
MAX_INVOKE_PAYLOAD = REQUEST_PAYLOAD_LIMIT_BYTES
DEFAULT_PROCESSOR_BUFFER_MB = 1.0
DEFAULT_PROCESSOR_INTERVAL_S = 60
DEFAULT_RETRIES = 3
DEFAULT_DESTINATION_BUFFER_MB = 5
DEFAULT_DESTINATION_INTERVAL_S = 300
DEFAULT_ERROR_PREFIX = "processing-failed/"
ERROR_OUTPUT_TYPE = "processing-failed"
RETRY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0)

Result = Literal["Ok", "Dropped", "ProcessingFailed"]
RESULTS: tuple[Result, ...] = ("Ok", "Dropped", "ProcessingFailed")
Compression = Literal["UNCOMPRESSED", "GZIP"]
COMPRESSIONS: tuple[Compression, ...] = ("UNCOMPRESSED", "GZIP")

Invoke = Callable[[str, dict[str, Any]], Any]
Clock = Callable[[], float]


class FirehoseConfigError(ValueError):
    """The delivery stream uses a feature this runner does not emulate, or its configuration is malformed."""


class ProcessorError(Exception):
    """Raised by an `invoke` callable to report a failed invocation with Firehose's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidProcessorResponse(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- configuration ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunnerConfig:
    stream_name: str
    stream_arn: str
    version_id: str
    region: str
    source_stream_arn: str
    bucket: str
    prefix: str
    error_prefix: str
    destination_buffer_bytes: int
    destination_interval_s: float
    compression: Compression
    lambda_arn: str | None
    retries: int
    processor_buffer_bytes: int
    processor_interval_s: float

    @property
    def source_stream_name(self) -> str:
        return self.source_stream_arn.rsplit("/", 1)[-1]


def _processor_parameters(processing: Mapping[str, Any]) -> dict[str, str] | None:
    if not processing or not processing.get("Enabled", False):
        return None
    processors = processing.get("Processors") or []
    params: dict[str, str] = {}
    for processor in processors:
        kind = processor.get("Type")
        if kind != "Lambda":
            raise FirehoseConfigError(f"processor type {kind!r} is not emulated locally (only Lambda is)")
        for p in processor.get("Parameters") or []:
            params[p["ParameterName"]] = str(p["ParameterValue"])
    if "LambdaArn" not in params:
        raise FirehoseConfigError("processing is enabled but no Lambda processor has a LambdaArn parameter")
    return params


def _number(params: Mapping[str, str], name: str, default: float) -> float:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise FirehoseConfigError(f"processor parameter {name} must be a number, got {raw!r}") from None


def config_from_description(description: Mapping[str, Any]) -> RunnerConfig:
    """What the runner needs from `DescribeDeliveryStream` (the whole response or its DeliveryStreamDescription)."""
    desc = description.get("DeliveryStreamDescription", description)
    name = desc["DeliveryStreamName"]
    arn = desc["DeliveryStreamARN"]
    source = (desc.get("Source") or {}).get("KinesisStreamSourceDescription") or {}
    if not source.get("KinesisStreamARN"):
        raise FirehoseConfigError(
            f"delivery stream {name} has no Kinesis source; only KinesisStreamAsSource is emulated"
        )
    destinations = desc.get("Destinations") or []
    if not destinations:
        raise FirehoseConfigError(f"delivery stream {name} has no destination")
    dest = destinations[0].get("ExtendedS3DestinationDescription") or destinations[0].get("S3DestinationDescription")
    if not dest:
        raise FirehoseConfigError(f"delivery stream {name}: only S3 destinations are emulated locally")
    if (dest.get("DynamicPartitioningConfiguration") or {}).get("Enabled"):
        raise FirehoseConfigError(f"delivery stream {name}: dynamic partitioning is not emulated locally")
    if (dest.get("DataFormatConversionConfiguration") or {}).get("Enabled"):
        raise FirehoseConfigError(f"delivery stream {name}: record format conversion is not emulated locally")
    compression: str = dest.get("CompressionFormat") or "UNCOMPRESSED"
    if compression not in COMPRESSIONS:
        raise FirehoseConfigError(
            f"delivery stream {name}: compression {compression} is not emulated (UNCOMPRESSED, GZIP)"
        )
    hints = dest.get("BufferingHints") or {}
    params = _processor_parameters(dest.get("ProcessingConfiguration") or {})
    prefix = dest.get("Prefix") or ""
    error_prefix = dest.get("ErrorOutputPrefix") or ""
    # Validate both templates now: a typo in a prefix is a configuration error, not a failure at the first write.
    evaluate_prefix(prefix, datetime(2000, 1, 1, tzinfo=UTC), error_output_type=None)
    evaluate_prefix(error_prefix or DEFAULT_ERROR_PREFIX, datetime(2000, 1, 1, tzinfo=UTC),
                    error_output_type=ERROR_OUTPUT_TYPE)
    return RunnerConfig(
        stream_name=name,
        stream_arn=arn,
        version_id=str(desc.get("VersionId") or "1"),
        region=arn.split(":")[3],
        source_stream_arn=source["KinesisStreamARN"],
        bucket=dest["BucketARN"].rsplit(":", 1)[-1],
        prefix=prefix,
        error_prefix=error_prefix,
        destination_buffer_bytes=int(float(hints.get("SizeInMBs", DEFAULT_DESTINATION_BUFFER_MB)) * MIB),
        destination_interval_s=float(hints.get("IntervalInSeconds", DEFAULT_DESTINATION_INTERVAL_S)),
        compression=compression,
        lambda_arn=params["LambdaArn"] if params else None,
        retries=int(_number(params or {}, "NumberOfRetries", DEFAULT_RETRIES)),
        processor_buffer_bytes=int(_number(params or {}, "BufferSizeInMBs", DEFAULT_PROCESSOR_BUFFER_MB) * MIB),
        processor_interval_s=_number(params or {}, "BufferIntervalInSeconds", DEFAULT_PROCESSOR_INTERVAL_S),
    )


# ---- prefixes and names -------------------------------------------------------------------------------------------
_EXPRESSION = re.compile(r"!\{([^}]*)\}")
_JAVA_FIELDS = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
RANDOM_ALPHABET = string.ascii_lowercase + string.digits


def java_datetime_format(pattern: str, when: datetime) -> str:
    """Format `when` with the subset of Java's DateTimeFormatter that Firehose prefixes use (yyyy yy MM dd HH mm ss,
    'quoted text'); any other pattern letter is an error, as it would be a surprise in an S3 key."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise FirehoseConfigError(f"unterminated quote in timestamp pattern {pattern!r}")
            out.append(pattern[i + 1 : end] or "'")
            i = end + 1
            continue
        if char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            token = pattern[i:j]
            if token not in _JAVA_FIELDS:
                raise FirehoseConfigError(
                    f"timestamp pattern {pattern!r}: {token!r} is not supported (use yyyy, yy, MM, dd, HH, mm, ss)"
                )
            out.append(when.strftime(_JAVA_FIELDS[token]))
            i = j
            continue
        out.append(char)
        i += 1
    return "".join(out)


def evaluate_prefix(
    template: str,
    when: datetime,
    *,
    error_output_type: str | None,
    random_string: Callable[[], str] | None = None,
) -> str:
    """Firehose's custom prefix rules: `!{timestamp:<pattern>}` (UTC), `!{firehose:random-string}`,
    `!{firehose:error-output-type}` (error prefix only); when the template has no timestamp expression,
    `YYYY/MM/DD/HH/` is appended, which makes an empty template the default prefix."""
    when = when.astimezone(UTC)
    draw = random_string or (lambda: "".join(secrets.choice(RANDOM_ALPHABET) for _ in range(11)))
    has_timestamp = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal has_timestamp
        namespace, _, value = match.group(1).partition(":")
        if namespace == "timestamp":
            has_timestamp = True
            return java_datetime_format(value, when)
        if namespace == "firehose" and value == "random-string":
            return draw()
        if namespace == "firehose" and value == "error-output-type":
            if error_output_type is None:
                raise FirehoseConfigError("!{firehose:error-output-type} is only allowed in ErrorOutputPrefix")
            return error_output_type
        raise FirehoseConfigError(f"prefix expression !{{{match.group(1)}}} is not supported locally")

    evaluated = _EXPRESSION.sub(substitute, template)
    if not has_timestamp:
        evaluated += when.strftime("%Y/%m/%d/%H/")
    return evaluated


def object_name(stream_name: str, version_id: str, when: datetime, unique: str | None = None) -> str:
    """`<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>`, as Firehose names the objects it writes."""
    return f"{stream_name}-{version_id}-{when.astimezone(UTC):%Y-%m-%d-%H-%M-%S}-{unique or uuid.uuid4()}"


# ---- the processor's response -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessedRecord:
    record_id: str
    result: Result
    data: bytes


def _is_base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_response(record_ids: Sequence[str], response: Any) -> dict[str, ProcessedRecord]:
    """Validate a processor response as Firehose does; any problem fails the whole invocation."""
    if isinstance(response, bytes | str):
        try:
            response = json.loads(response)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InvalidProcessorResponse(
                "Lambda.JsonProcessingException", "The processor's response is not JSON."
            ) from None
    if not isinstance(response, dict) or not isinstance(response.get("records"), list):
        raise InvalidProcessorResponse(
            "Lambda.JsonProcessingException", "The processor's response has no 'records' list."
        )
    expected = set(record_ids)
    seen: dict[str, ProcessedRecord] = {}
    for entry in response["records"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("recordId"), str):
            raise InvalidProcessorResponse("Lambda.JsonProcessingException", "A returned record has no recordId.")
        record_id = entry["recordId"]
        if record_id not in expected:
            raise InvalidProcessorResponse(
                "Lambda.MismatchedRecordId", f"The processor returned recordId {record_id!r} that was not sent."
            )
        if record_id in seen:
            raise InvalidProcessorResponse(
                "Lambda.DuplicatedRecordId", f"Multiple records were returned with recordId {record_id!r}."
            )
        result = entry.get("result")
        if result not in RESULTS:
            raise InvalidProcessorResponse(
                "Lambda.JsonProcessingException",
                f"Record {record_id!r} has result {result!r}; it must be one of Ok, Dropped, ProcessingFailed.",
            )
        data = entry.get("data", "" if result != "Ok" else None)
        decoded = _is_base64(data) if isinstance(data, str) else None
        if decoded is None:
            raise InvalidProcessorResponse(
                "Lambda.JsonProcessingException", f"Record {record_id!r} has data that is not a base64 string."
            )
        seen[record_id] = ProcessedRecord(record_id=record_id, result=result, data=decoded)
    missing = expected - seen.keys()
    if missing:
        raise InvalidProcessorResponse(
            "Lambda.MissingRecordId", f"{len(missing)} record ID(s) were not returned, e.g. {sorted(missing)[0]!r}."
        )
    return seen


# ---- records in flight --------------------------------------------------------------------------------------------
@dataclass
class SourceRecord:
    record_id: str
    shard_id: str
    sequence_number: str
    partition_key: str
    arrival_ms: int
    data: bytes

    def event_entry(self) -> dict[str, Any]:
        return {
            "recordId": self.record_id,
            "approximateArrivalTimestamp": self.arrival_ms,
            "data": base64.b64encode(self.data).decode("ascii"),
            "kinesisRecordMetadata": {
                "shardId": self.shard_id,
                "partitionKey": self.partition_key,
                "approximateArrivalTimestamp": self.arrival_ms,
                "sequenceNumber": self.sequence_number,
                "subsequenceNumber": 0,
            },
        }

    @property
    def event_size(self) -> int:
        # base64 growth plus the metadata around it, close enough to size batches against the payload limit.
        return (len(self.data) + 2) // 3 * 4 + 320


@dataclass
class _Buffer:
    """Bytes waiting for S3 with the records they came from (so checkpoints advance only once they are written)."""

    lines: list[bytes] = field(default_factory=list)
    sources: list[SourceRecord] = field(default_factory=list)
    size: int = 0
    opened_at: float | None = None
    oldest_arrival_ms: int | None = None

    def add(self, line: bytes, source: SourceRecord, now: float) -> None:
        if self.opened_at is None:
            self.opened_at = now
        self.lines.append(line)
        self.sources.append(source)
        self.size += len(line)
        arrival = source.arrival_ms
        self.oldest_arrival_ms = arrival if self.oldest_arrival_ms is None else min(self.oldest_arrival_ms, arrival)


@dataclass
class _ShardState:
    read_after: str | None = None  # last sequence number read into a buffer
    checkpoint: str | None = None  # last sequence number whose record (and all before it) is written to S3
    iterator: str | None = None
    closed: bool = False
    pending: deque[str] = field(default_factory=deque)
    done: set[str] = field(default_factory=set)


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


class RunnerCrashed(Exception):
    """The runner was crashed on purpose (`crash()`): nothing after that moment reaches S3 or the state file."""


class FirehoseRunner:
    """One delivery stream, driven by `poll_once()` (tests, injected clock) or `run(stop_event)` (the daemon)."""

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
    ) -> None:
        self.config = config_from_description(description)
        self.kinesis = kinesis
        self.s3 = s3
        self.invoke = invoke
        self.clock = clock
        self.state_path = state_path
        self.poll_interval_s = poll_interval_s
        self.get_records_limit = get_records_limit
        self.counters = Counters()
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._shards: dict[str, _ShardState] = {}
        self._incoming: deque[SourceRecord] = deque()
        self._incoming_bytes = 0
        self._incoming_since: float | None = None
        self._attempts = 0
        self._retry_at: float | None = None
        self._delivered = _Buffer()
        self._errors = _Buffer()
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
            "checkpoints": {shard: s.checkpoint for shard, s in list(self._shards.items())},
            "state_discarded": list(self.state_discarded),
            "last_error": self.last_error,
            "updated_at": self.clock(),
        }

    def poll_once(self, *, flush: bool = False) -> int:
        """Read what the source has, invoke the processor and write objects when their buffers are due.

        `flush=True` treats every buffer as due (for shutdown and for `harness stream wait`). Returns how many records
        were read from Kinesis.
        """
        with self._lock:
            self._follow_source()
            read = self._read_source() if self._successor is None else 0
            # Records of a deleted incarnation cannot be read again: deliver them before moving to its successor.
            flush = flush or self._successor is not None
            self._maybe_process(flush=flush)
            self._maybe_write(self._delivered, error=False, flush=flush)
            self._maybe_write(self._errors, error=True, flush=flush)
            if self._successor is not None and self.records_buffered == 0:
                self._start(self._successor)
            self._save_state()
            return read

    def crash(self) -> None:
        """Die now, as a killed process would (the soak's `runner_kill`): no flush, no further S3 write, invocation or
        checkpoint save, even from a poll already under way; what was read but not written is gone from memory and is
        read again from the last saved checkpoint by the runner that replaces this one."""
        self._crashed = True

    def _alive(self) -> None:
        if self._crashed:
            raise RunnerCrashed(f"delivery stream {self.config.stream_name}: runner crashed on purpose")

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

    # ---- the source's identity ------------------------------------------------------------------------------------
    def _follow_source(self) -> None:
        """Adopt the saved state at the first poll; notice a source deleted and re-created under the same name."""
        identity = runner_state.stream_identity(self.kinesis, self.config.source_stream_name)
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
        resume, problems = runner_state.resume_points(
            adopted.checkpoints, self._list_shards() if adopted.checkpoints else {},
            lambda shard_id, sequence: runner_state.first_sequence_at(
                self.kinesis, self.config.source_stream_name, shard_id, sequence),
        )
        self._saved, self._identity, self._successor = None, identity, None
        # Reading resumes after the last *written* record: what was buffered but unwritten is read again.
        self._shards = {shard_id: _ShardState(read_after=seq, checkpoint=seq) for shard_id, seq in resume.items()}
        self.counters = c = Counters(**{k: v for k, v in adopted.counters.items() if k in vars(Counters())})
        c.events_read = c.records_delivered + c.records_dropped + c.records_failed
        if adopted.discarded or problems:
            self.state_discarded = [*adopted.discarded, *problems]
            self.last_error = "; ".join(self.state_discarded)

    # ---- reading -------------------------------------------------------------------------------------------------
    def _list_shards(self) -> dict[str, dict[str, Any]]:
        shards: dict[str, dict[str, Any]] = {}
        # By name, not ARN: moto's shard iterators minted from an ARN do not resolve their stream.
        kwargs: dict[str, Any] = {"StreamName": self.config.source_stream_name}
        while True:
            page = self.kinesis.list_shards(**kwargs)
            shards.update((s["ShardId"], s) for s in page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    def _iterator_for(self, shard_id: str, state: _ShardState) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.config.source_stream_name, "ShardId": shard_id}
        if state.read_after:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=state.read_after)
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        return self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def _read_source(self) -> int:
        if self._incoming_bytes >= self.config.processor_buffer_bytes:
            return 0  # backpressure: the processor buffer is full until the next invocation drains it
        total = 0
        for shard_id in self._list_shards():
            state = self._shards.setdefault(shard_id, _ShardState())
            if state.closed:
                continue
            if state.iterator is None:
                state.iterator = self._iterator_for(shard_id, state)
            try:
                page = self.kinesis.get_records(ShardIterator=state.iterator, Limit=self.get_records_limit)
            except self.kinesis.exceptions.ExpiredIteratorException:
                state.iterator = self._iterator_for(shard_id, state)
                page = self.kinesis.get_records(ShardIterator=state.iterator, Limit=self.get_records_limit)
            for record in page.get("Records", []):
                self._accept(shard_id, state, record)
                total += 1
            state.iterator = page.get("NextShardIterator")
            if state.iterator is None:
                state.closed = True
        return total

    def _accept(self, shard_id: str, state: _ShardState, record: Mapping[str, Any]) -> None:
        arrival = record.get("ApproximateArrivalTimestamp")
        arrival_ms = int(arrival.timestamp() * 1000) if isinstance(arrival, datetime) else int(self.clock() * 1000)
        sequence = record["SequenceNumber"]
        source = SourceRecord(
            record_id=f"{sequence}{int(shard_id.rsplit('-', 1)[-1] or 0):012d}",
            shard_id=shard_id,
            sequence_number=sequence,
            partition_key=record.get("PartitionKey", ""),
            arrival_ms=arrival_ms,
            data=bytes(record["Data"]),
        )
        state.read_after = sequence
        state.pending.append(sequence)
        if not self._incoming:
            self._incoming_since = self.clock()
        self._incoming.append(source)
        self._incoming_bytes += len(source.data)
        self.counters.events_read += 1

    # ---- processing ----------------------------------------------------------------------------------------------
    def _next_batch(self) -> list[SourceRecord]:
        batch: list[SourceRecord] = []
        size = 0
        payload = 512
        for record in self._incoming:
            if batch and (size + len(record.data) > self.config.processor_buffer_bytes
                          or payload + record.event_size > MAX_INVOKE_PAYLOAD):
                break
            batch.append(record)
            size += len(record.data)
            payload += record.event_size
        return batch

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
            batch = self._next_batch()
            if self.config.lambda_arn is None:
                for record in batch:
                    self._delivered.add(record.data, record, now)
                self._take(len(batch))
                continue
            if not self._process(batch):
                return  # a retry is scheduled; later polls try again

    def _take(self, count: int) -> None:
        for _ in range(count):
            record = self._incoming.popleft()
            self._incoming_bytes -= len(record.data)
        self._incoming_since = self.clock() if self._incoming else None
        self._attempts = 0
        self._retry_at = None

    def _process(self, batch: list[SourceRecord]) -> bool:
        assert self.config.lambda_arn is not None
        self._alive()
        event = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": self.config.stream_arn,
            "sourceKinesisStreamArn": self.config.source_stream_arn,
            "region": self.config.region,
            "records": [record.event_entry() for record in batch],
        }
        self._attempts += 1
        self.counters.invocations += 1
        try:
            processed = check_response([r.record_id for r in batch], self.invoke(self.config.lambda_arn, event))
        except (ProcessorError, InvalidProcessorResponse) as exc:
            return self._invocation_failed(batch, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is an invocation failure to retry
            return self._invocation_failed(
                batch, "Lambda.FunctionError",
                f"The Lambda function was invoked but it returned an error result ({type(exc).__name__}: {exc}).",
            )
        now = self.clock()
        for record in batch:
            out = processed[record.record_id]
            if out.result == "Ok":
                self._delivered.add(out.data, record, now)
            elif out.result == "Dropped":
                self._mark_done(record)
                self.counters.records_dropped += 1
            else:
                self._fail(record, "Lambda.ProcessingFailed",
                           "The Lambda function returned ProcessingFailed for this record.", now)
        self.last_error = None
        self._take(len(batch))
        return True

    def _invocation_failed(self, batch: list[SourceRecord], code: str, message: str) -> bool:
        self.counters.invocation_failures += 1
        self.last_error = f"{code}: {message}"
        now = self.clock()
        if self._attempts <= self.config.retries:
            self._retry_at = now + RETRY_BACKOFF_S[min(self._attempts - 1, len(RETRY_BACKOFF_S) - 1)]
            return False
        for record in batch:
            self._fail(record, code, message, now)
        self._take(len(batch))
        return True

    def _fail(self, record: SourceRecord, code: str, message: str, now: float) -> None:
        document = {
            "attemptsMade": self._attempts,
            "arrivalTimestamp": record.arrival_ms,
            "errorCode": code,
            "errorMessage": message,
            "attemptEndingTimestamp": int(now * 1000),
            "rawData": base64.b64encode(record.data).decode("ascii"),
            "lambdaArn": self.config.lambda_arn,
        }
        self._errors.add((json.dumps(document) + "\n").encode("utf-8"), record, now)

    # ---- writing -------------------------------------------------------------------------------------------------
    def _maybe_write(self, buffer: _Buffer, *, error: bool, flush: bool) -> None:
        if not buffer.sources:
            return
        now = self.clock()
        due = (
            flush
            or buffer.size >= self.config.destination_buffer_bytes
            or (buffer.opened_at is not None and now - buffer.opened_at >= self.config.destination_interval_s)
        )
        if not due:
            return
        assert buffer.oldest_arrival_ms is not None
        oldest = datetime.fromtimestamp(buffer.oldest_arrival_ms / 1000, tz=UTC)
        if error:
            prefix = evaluate_prefix(self.config.error_prefix or DEFAULT_ERROR_PREFIX, oldest,
                                     error_output_type=ERROR_OUTPUT_TYPE)
        else:
            prefix = evaluate_prefix(self.config.prefix, oldest, error_output_type=None)
        key = prefix + object_name(self.config.stream_name, self.config.version_id, oldest)
        body = b"".join(buffer.lines)
        if self.config.compression == "GZIP":
            key += ".gz"
            body = gzip.compress(body, mtime=0)
        # Firehose retries S3 writes until they succeed; an exception here leaves the buffer intact for the next poll.
        self._alive()
        self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=body)
        # Counted when written, not when buffered: the counters say what is in S3.
        if error:
            self.counters.error_objects_written += 1
            self.counters.records_failed += len(buffer.sources)
        else:
            self.counters.objects_written += 1
            self.counters.records_delivered += len(buffer.sources)
            self.counters.bytes_delivered += len(body)
        for record in buffer.sources:
            self._mark_done(record)
        buffer.lines.clear()
        buffer.sources.clear()
        buffer.size = 0
        buffer.opened_at = None
        buffer.oldest_arrival_ms = None

    def _mark_done(self, record: SourceRecord) -> None:
        state = self._shards[record.shard_id]
        state.done.add(record.sequence_number)
        while state.pending and state.pending[0] in state.done:
            sequence = state.pending.popleft()
            state.done.discard(sequence)
            state.checkpoint = sequence

    # ---- persistence ---------------------------------------------------------------------------------------------
    def _save_state(self) -> None:
        if self.state_path is None or self._identity is None or self._crashed:
            return
        runner_state.write_state(self.state_path, runner_state.state_document(
            self._identity, self.stats(), vars(self.counters)))
