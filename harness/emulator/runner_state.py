"""What a `FirehoseRunner` saves between runs, and whether a saved state still applies to the stream it reads.

The state (a checkpoint per shard and the counters) belongs to one *incarnation* of the source stream: its ARN plus its
creation time. A stream deleted and created again under the same name keeps its ARN but numbers its records from the
start again (moto numbers each shard 1, 2, 3, ...), so a checkpoint of the old incarnation would make the runner skip
that many records of the new one. A saved state is therefore used only when both match; otherwise it is discarded,
with a one-line reason, and the runner reads the stream from its oldest record with counters at zero.

Within the right incarnation a checkpoint is still checked against its shard, because GetShardIterator
AFTER_SEQUENCE_NUMBER does not say when the number is beyond the shard's end: moto answers with an iterator that
silently skips every record up to that number (Kinesis refuses numbers that did not come from the shard). A checkpoint
for a shard the stream does not have, above a closed shard's `EndingSequenceNumber` (ListShards'
`SequenceNumberRange`) or, for an open shard, with no record at or after it, is reported and that shard is read from
TRIM_HORIZON: records are delivered twice rather than lost.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StreamIdentity:
    """One incarnation of a Kinesis stream."""

    arn: str
    created: str  # StreamCreationTimestamp in UTC, ISO 8601 (moto keeps milliseconds)


def stream_identity(kinesis: Any, stream_name: str) -> StreamIdentity:
    summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    created = summary["StreamCreationTimestamp"]
    if isinstance(created, datetime):
        created = created.astimezone(UTC).isoformat(timespec="microseconds")
    return StreamIdentity(arn=summary["StreamARN"], created=str(created))


@dataclass(frozen=True)
class SavedState:
    identity: StreamIdentity | None  # None: written before identities were saved, so of an unknown incarnation
    checkpoints: dict[str, str]
    counters: dict[str, int]


@dataclass(frozen=True)
class Adopted:
    """The part of a saved state a runner may resume from, and what it had to discard (one line each)."""

    checkpoints: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    discarded: list[str] = field(default_factory=list)


def read_state(path: Path) -> tuple[SavedState | None, str | None]:
    """The saved state and a problem to report: no file is (None, None); a damaged one is (None, reason)."""
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict):
            raise ValueError("not a JSON object")
        created = saved.get("source_stream_created")
        arn = saved.get("source_stream_arn")
        identity = StreamIdentity(arn=str(arn), created=str(created)) if arn and created else None
        checkpoints = {str(k): str(v) for k, v in (saved.get("checkpoints") or {}).items() if v is not None}
        counters = {str(k): int(v) for k, v in (saved.get("counters") or {}).items()}
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        # Written atomically, so this is damage from outside: start from the stream's beginning, say so.
        return None, f"ignored unreadable checkpoint file {path}: {exc}"
    return SavedState(identity=identity, checkpoints=checkpoints, counters=counters), None


def write_state(path: Path, document: Mapping[str, Any]) -> None:
    """Atomically (a reader or a killed runner sees the previous state or this one, never half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True))
    tmp.replace(path)


def state_document(identity: StreamIdentity, stats: Mapping[str, Any], counters: Mapping[str, int]) -> dict[str, Any]:
    return {**stats, "source_stream_arn": identity.arn, "source_stream_created": identity.created,
            "counters": dict(counters)}


def adopt(saved: SavedState | None, identity: StreamIdentity) -> Adopted:
    """What a runner reading `identity` may take from `saved`: all of it when it is that incarnation's, else nothing."""
    if saved is None:
        return Adopted()
    if saved.identity is None:
        # Safer to deliver twice than to trust a checkpoint that may belong to a deleted stream of the same name.
        return Adopted(discarded=[f"checkpoint file has no creation time for {identity.arn} (an older format): "
                                  "ignored, reading the stream from its oldest record, counters restart"])
    if saved.identity != identity:
        what = ("was re-created" if saved.identity.arn == identity.arn else f"is not {saved.identity.arn}")
        return Adopted(discarded=[
            f"checkpoint of {saved.identity.arn} created {saved.identity.created} ignored: the stream {what} "
            f"(now created {identity.created}); reading it from its oldest record, counters restart"])
    return Adopted(checkpoints=dict(saved.checkpoints), counters=dict(saved.counters))


def checkpoint_problem(
    shard_id: str,
    checkpoint: str,
    shard: Mapping[str, Any] | None,
    first_at: Callable[[str], str | None],
) -> str | None:
    """Why reading `shard_id` cannot resume after `checkpoint`, or None when it can.

    `shard` is the shard's ListShards entry (None when the stream has no such shard); `first_at(sequence)` answers the
    sequence number of the shard's first record at or after `sequence`, or None when there is none (it is only asked
    about open shards, whose `SequenceNumberRange` has no end).
    """
    if shard is None:
        return f"checkpoint {checkpoint} for {shard_id} ignored: the stream has no such shard"
    if not checkpoint.isascii() or not checkpoint.isdigit():
        return f"checkpoint {checkpoint!r} for {shard_id} ignored: not a sequence number; reading from TRIM_HORIZON"
    ending = (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
    if ending is not None:
        if int(checkpoint) > int(ending):
            return (f"checkpoint {checkpoint} for {shard_id} ignored: beyond the closed shard's last sequence number "
                    f"{ending}; reading from TRIM_HORIZON")
        return None
    found = first_at(checkpoint)
    if found is None:
        return (f"checkpoint {checkpoint} for {shard_id} ignored: the shard has no record at or after it (beyond its "
                "latest sequence number); reading from TRIM_HORIZON")
    return None


def resume_points(
    checkpoints: Mapping[str, str],
    shards: Mapping[str, Mapping[str, Any]],
    first_at: Callable[[str, str], str | None],
) -> tuple[dict[str, str], list[str]]:
    """The checkpoints reading may resume after (ListShards entries by shard id; `first_at(shard_id, sequence)` as
    `first_sequence_at`), and a line for each one it may not."""
    resume: dict[str, str] = {}
    problems: list[str] = []
    for shard_id, checkpoint in checkpoints.items():
        problem = checkpoint_problem(shard_id, checkpoint, shards.get(shard_id), functools.partial(first_at, shard_id))
        if problem:
            problems.append(problem)
        else:
            resume[shard_id] = checkpoint
    return resume, problems


def first_sequence_at(kinesis: Any, stream_name: str, shard_id: str, sequence: str) -> str | None:
    """The sequence number of the shard's first record at or after `sequence`; None when there is none."""
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=sequence,
        )["ShardIterator"]
    except kinesis.exceptions.InvalidArgumentException:
        return None  # Kinesis: the number did not come from this shard
    records = kinesis.get_records(ShardIterator=iterator, Limit=1).get("Records", [])
    return str(records[0]["SequenceNumber"]) if records else None
