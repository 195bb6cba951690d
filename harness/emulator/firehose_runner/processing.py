"""Invoking the processor as Firehose does: the batch, the event, the response check and the error output's documents.

Pure functions; the runner decides when a batch is due and what a failed invocation costs (retries, then the error
output).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.emulator.firehose_runner.config import MAX_INVOKE_PAYLOAD, RunnerConfig
from harness.emulator.firehose_runner.errors import ProcessorError
from harness.emulator.firehose_runner.source import SourceRecord

Result = Literal["Ok", "Dropped", "ProcessingFailed"]
RESULTS: tuple[Result, ...] = ("Ok", "Dropped", "ProcessingFailed")
RETRY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0)
# The event's envelope around its records (invocationId, ARNs, region), counted against the payload limit.
EVENT_ENVELOPE_BYTES = 512


@dataclass(frozen=True)
class ProcessedRecord:
    record_id: str
    result: Result
    data: bytes


def next_batch(incoming: Iterable[SourceRecord], buffer_bytes: int) -> list[SourceRecord]:
    """The oldest records that fit the processor buffer and Lambda's payload limit (at least one)."""
    batch: list[SourceRecord] = []
    size = 0
    payload = EVENT_ENVELOPE_BYTES
    for record in incoming:
        if batch and (size + len(record.data) > buffer_bytes or payload + record.event_size > MAX_INVOKE_PAYLOAD):
            break
        batch.append(record)
        size += len(record.data)
        payload += record.event_size
    return batch


def invocation_event(config: RunnerConfig, batch: Sequence[SourceRecord]) -> dict[str, Any]:
    return {
        "invocationId": str(uuid.uuid4()),
        "deliveryStreamArn": config.stream_arn,
        "sourceKinesisStreamArn": config.source_stream_arn,
        "region": config.region,
        "records": [record.event_entry() for record in batch],
    }


def backoff_s(attempts: int) -> float:
    """The wait before attempt `attempts + 1`: 1, 2, 4, 8, 8, ... seconds."""
    return RETRY_BACKOFF_S[min(attempts - 1, len(RETRY_BACKOFF_S) - 1)]


def _is_base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def check_response(record_ids: Sequence[str], response: Any) -> dict[str, ProcessedRecord]:
    """Validate a processor response as Firehose does; any problem fails the whole invocation (`ProcessorError`)."""
    if isinstance(response, bytes | str):
        try:
            response = json.loads(response)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ProcessorError("Lambda.JsonProcessingException", "The processor's response is not JSON.") from None
    if not isinstance(response, dict) or not isinstance(response.get("records"), list):
        raise ProcessorError("Lambda.JsonProcessingException", "The processor's response has no 'records' list.")
    expected = set(record_ids)
    seen: dict[str, ProcessedRecord] = {}
    for entry in response["records"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("recordId"), str):
            raise ProcessorError("Lambda.JsonProcessingException", "A returned record has no recordId.")
        record_id = entry["recordId"]
        if record_id not in expected:
            raise ProcessorError(
                "Lambda.MismatchedRecordId", f"The processor returned recordId {record_id!r} that was not sent."
            )
        if record_id in seen:
            raise ProcessorError(
                "Lambda.DuplicatedRecordId", f"Multiple records were returned with recordId {record_id!r}."
            )
        result = entry.get("result")
        if result not in RESULTS:
            raise ProcessorError(
                "Lambda.JsonProcessingException",
                f"Record {record_id!r} has result {result!r}; it must be one of Ok, Dropped, ProcessingFailed.",
            )
        data = entry.get("data", "" if result != "Ok" else None)
        decoded = _is_base64(data) if isinstance(data, str) else None
        if decoded is None:
            raise ProcessorError(
                "Lambda.JsonProcessingException", f"Record {record_id!r} has data that is not a base64 string."
            )
        seen[record_id] = ProcessedRecord(record_id=record_id, result=result, data=decoded)
    missing = expected - seen.keys()
    if missing:
        raise ProcessorError(
            "Lambda.MissingRecordId", f"{len(missing)} record ID(s) were not returned, e.g. {sorted(missing)[0]!r}."
        )
    return seen


def error_line(record: SourceRecord, *, attempts: int, code: str, message: str, now: float,
               lambda_arn: str | None) -> bytes:
    """One line of the error output, as Firehose writes a record it could not process."""
    document = {
        "attemptsMade": attempts,
        "arrivalTimestamp": record.arrival_ms,
        "errorCode": code,
        "errorMessage": message,
        "attemptEndingTimestamp": int(now * 1000),
        "rawData": base64.b64encode(record.data).decode("ascii"),
        "lambdaArn": lambda_arn,
    }
    return (json.dumps(document) + "\n").encode("utf-8")
