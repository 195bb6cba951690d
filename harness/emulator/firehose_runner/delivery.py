"""Buffering for S3 and the objects Firehose writes: delivered records under `Prefix`, failed ones under
`ErrorOutputPrefix`, named after the oldest record's arrival (UTC), GZIP when configured."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness.emulator.firehose_runner.config import DEFAULT_ERROR_PREFIX, ERROR_OUTPUT_TYPE, RunnerConfig
from harness.emulator.firehose_runner.prefixes import evaluate_prefix, object_name
from harness.emulator.firehose_runner.source import SourceRecord


@dataclass
class S3Buffer:
    """Bytes waiting for S3 with the records they came from (so checkpoints advance only once they are written)."""

    error: bool  # the error output's buffer, else the delivered records'
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

    def due(self, config: RunnerConfig, now: float, *, flush: bool) -> bool:
        """`BufferingHints`: the size reached or the interval passed since the first record joined."""
        if not self.sources:
            return False
        return (flush or self.size >= config.destination_buffer_bytes
                or (self.opened_at is not None and now - self.opened_at >= config.destination_interval_s))

    def clear(self) -> None:
        self.lines.clear()
        self.sources.clear()
        self.size = 0
        self.opened_at = None
        self.oldest_arrival_ms = None


@dataclass(frozen=True)
class S3Object:
    key: str
    body: bytes


def s3_object(config: RunnerConfig, buffer: S3Buffer) -> S3Object:
    """The object `buffer` becomes: key under the evaluated prefix, body compressed as configured."""
    assert buffer.oldest_arrival_ms is not None
    oldest = datetime.fromtimestamp(buffer.oldest_arrival_ms / 1000, tz=UTC)
    if buffer.error:
        prefix = evaluate_prefix(config.error_prefix or DEFAULT_ERROR_PREFIX, oldest,
                                 error_output_type=ERROR_OUTPUT_TYPE)
    else:
        prefix = evaluate_prefix(config.prefix, oldest, error_output_type=None)
    key = prefix + object_name(config.stream_name, config.version_id, oldest)
    body = b"".join(buffer.lines)
    if config.compression == "GZIP":
        key += ".gz"
        body = gzip.compress(body, mtime=0)
    return S3Object(key=key, body=body)
