"""The Firehose runner: what Amazon Data Firehose does with a Kinesis source, a Lambda processor and S3.

moto stores a delivery stream's configuration but never reads its Kinesis source or calls its processor, so the local
control plane runs one `FirehoseRunner` per delivery stream. It follows the service's documented behaviour:

- reads every shard of the source stream (`source.py`), keeping a read position and a delivered checkpoint per shard
  (persisted to `state_path` when given): a restart resumes after the last record written to S3, nothing skipped. The
  state belongs to one incarnation of the stream (ARN and creation time, `harness.emulator.runner_state`): another's is
  discarded (counters restart), a checkpoint beyond its shard's end makes that shard be read from TRIM_HORIZON, both
  reported; a stream re-created while the runner runs is noticed at the next poll, what was read from the old one
  delivered first;
- buffers records for the processor (`BufferSizeInMBs`, default 1 MiB; `BufferIntervalInSeconds`, default 60 s) and
  invokes it with the Firehose event (`processing.py`: invocationId, deliveryStreamArn, sourceKinesisStreamArn, region,
  records with recordId, approximateArrivalTimestamp, data, kinesisRecordMetadata);
- checks the response as Firehose does: a missing, unknown or duplicated recordId, an unknown result or data that is
  not base64 fails the whole invocation; retries `NumberOfRetries` times (default 3), then sends the batch to the error
  output;
- buffers transformed records for S3 (`delivery.py`, `BufferingHints`, default 5 MiB / 300 s) and writes objects named
  `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>` under the evaluated `Prefix` (`prefixes.py`; default
  `YYYY/MM/DD/HH/`, UTC, from the oldest record's arrival time); failed records go under `ErrorOutputPrefix` (default
  `processing-failed/`) as Firehose's JSON (attemptsMade, arrivalTimestamp, errorCode, errorMessage,
  attemptEndingTimestamp, rawData, lambdaArn);
- publishes the delivery stream's CloudWatch metrics where Firehose does (`metrics.py`: namespace `AWS/Firehose`,
  dimension `DeliveryStreamName`) when given a CloudWatch client, from its own thread: a CloudWatch failure never holds
  up or loses a record.

It never drops a record (`counters.py`): `events_read == records_delivered + records_dropped + records_failed +
records_buffered`, where delivered and failed count records written to S3; after a restart `events_read` restarts from
the saved sum, as what was buffered is read again. Delivery is at-least-once, as Firehose's: a runner that dies after
writing an object, before a checkpoint covering its records is saved, reads and writes those records again (a clean
stop flushes first).

Not implemented (fails loudly at construction when configured, `config.py`): dynamic partitioning, format conversion,
compression other than UNCOMPRESSED and GZIP, processors other than Lambda, S3 backup. Differences on purpose: a new
runner starts at the stream's oldest record (TRIM_HORIZON) rather than LATEST, so events sent before the runner started
are delivered.
"""

from __future__ import annotations

from harness.emulator.firehose_runner.config import (
    DEFAULT_ERROR_PREFIX,
    ERROR_OUTPUT_TYPE,
    MIB,
    RunnerConfig,
    config_from_description,
)
from harness.emulator.firehose_runner.counters import Counters
from harness.emulator.firehose_runner.errors import FirehoseConfigError, ProcessorError, RunnerCrashed
from harness.emulator.firehose_runner.prefixes import evaluate_prefix, java_datetime_format, object_name
from harness.emulator.firehose_runner.processing import ProcessedRecord, check_response
from harness.emulator.firehose_runner.runner import FirehoseRunner
from harness.emulator.firehose_runner.source import SourceRecord

__all__ = [
    "DEFAULT_ERROR_PREFIX",
    "ERROR_OUTPUT_TYPE",
    "MIB",
    "Counters",
    "FirehoseConfigError",
    "FirehoseRunner",
    "ProcessedRecord",
    "ProcessorError",
    "RunnerConfig",
    "RunnerCrashed",
    "SourceRecord",
    "check_response",
    "config_from_description",
    "evaluate_prefix",
    "java_datetime_format",
    "object_name",
]
