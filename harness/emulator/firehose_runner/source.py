"""Reading the source Kinesis stream: every shard, a read position and a checkpoint per shard.

The read position says what was read into the runner's buffers (never read twice while it runs); the checkpoint is the
last sequence number whose record, and every one before it, is written to S3 (delivered or error output). Only the
checkpoint is saved, so a restarted runner reads again what was buffered but not written: nothing is skipped.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.emulator import runner_state


@dataclass
class SourceRecord:
    """A Kinesis record in flight through the runner, with the recordId Firehose gives it."""

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
class ShardState:
    read_after: str | None = None  # last sequence number read into a buffer
    checkpoint: str | None = None  # last sequence number whose record (and all before it) is written to S3
    iterator: str | None = None
    closed: bool = False
    pending: deque[str] = field(default_factory=deque)  # read, not yet written, in read order
    done: set[str] = field(default_factory=set)  # written (or dropped) out of order, ahead of the checkpoint


class KinesisSource:
    """The shards of one source stream, read by name (moto's shard iterators minted from an ARN do not resolve their
    stream)."""

    def __init__(self, kinesis: Any, stream_name: str, clock: Callable[[], float], get_records_limit: int) -> None:
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.clock = clock
        self.get_records_limit = get_records_limit
        self.shards: dict[str, ShardState] = {}

    def identity(self) -> runner_state.StreamIdentity:
        return runner_state.stream_identity(self.kinesis, self.stream_name)

    def resume(self, checkpoints: Mapping[str, str]) -> list[str]:
        """Start over from `checkpoints` (shard id -> sequence number) where they apply; answers a line for each one
        that does not (that shard is read from TRIM_HORIZON)."""
        resume, problems = runner_state.resume_points(
            checkpoints, self.list_shards() if checkpoints else {},
            lambda shard_id, sequence: runner_state.first_sequence_at(self.kinesis, self.stream_name, shard_id,
                                                                      sequence),
        )
        # Reading resumes after the last *written* record: what was buffered but unwritten is read again.
        self.shards = {shard_id: ShardState(read_after=seq, checkpoint=seq) for shard_id, seq in resume.items()}
        return problems

    def checkpoints(self) -> dict[str, str | None]:
        return {shard: s.checkpoint for shard, s in list(self.shards.items())}

    def list_shards(self) -> dict[str, dict[str, Any]]:
        shards: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            page = self.kinesis.list_shards(**kwargs)
            shards.update((s["ShardId"], s) for s in page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    def _iterator_for(self, shard_id: str, state: ShardState) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id}
        if state.read_after:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=state.read_after)
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        result: str = self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"]
        return result

    def read(self) -> list[SourceRecord]:
        """One GetRecords per open shard (listed again each time, so resharding is followed)."""
        records: list[SourceRecord] = []
        for shard_id in self.list_shards():
            state = self.shards.setdefault(shard_id, ShardState())
            if state.closed:
                continue
            if state.iterator is None:
                state.iterator = self._iterator_for(shard_id, state)
            try:
                page = self.kinesis.get_records(ShardIterator=state.iterator, Limit=self.get_records_limit)
            except self.kinesis.exceptions.ExpiredIteratorException:
                state.iterator = self._iterator_for(shard_id, state)
                page = self.kinesis.get_records(ShardIterator=state.iterator, Limit=self.get_records_limit)
            records.extend(self.accept(shard_id, state, record) for record in page.get("Records", []))
            state.iterator = page.get("NextShardIterator")
            if state.iterator is None:
                state.closed = True
        return records

    def accept(self, shard_id: str, state: ShardState, record: Mapping[str, Any]) -> SourceRecord:
        """A record read: the read position moves past it; the checkpoint waits until it is written."""
        arrival = record.get("ApproximateArrivalTimestamp")
        arrival_ms = int(arrival.timestamp() * 1000) if isinstance(arrival, datetime) else int(self.clock() * 1000)
        sequence = record["SequenceNumber"]
        state.read_after = sequence
        state.pending.append(sequence)
        return SourceRecord(
            record_id=f"{sequence}{int(shard_id.rsplit('-', 1)[-1] or 0):012d}",
            shard_id=shard_id,
            sequence_number=sequence,
            partition_key=record.get("PartitionKey", ""),
            arrival_ms=arrival_ms,
            data=bytes(record["Data"]),
        )

    def mark_done(self, record: SourceRecord) -> None:
        """`record` is written to S3 (or dropped): the checkpoint advances over every record done before it."""
        state = self.shards[record.shard_id]
        state.done.add(record.sequence_number)
        while state.pending and state.pending[0] in state.done:
            sequence = state.pending.popleft()
            state.done.discard(sequence)
            state.checkpoint = sequence
