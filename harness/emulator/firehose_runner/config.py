"""What the Firehose runner needs from `DescribeDeliveryStream`, with Firehose's defaults; refuses what it cannot
emulate (dynamic partitioning, format conversion, compression other than UNCOMPRESSED and GZIP, processors other than
Lambda, destinations other than S3) when the runner is built, naming the feature."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from harness.emulator.firehose_runner.errors import FirehoseConfigError
from harness.emulator.firehose_runner.prefixes import evaluate_prefix
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

Compression = Literal["UNCOMPRESSED", "GZIP"]
COMPRESSIONS: tuple[Compression, ...] = ("UNCOMPRESSED", "GZIP")


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
