"""Kinesis data streams and Firehose delivery streams (moto stores them; the daemon's FirehoseRunner delivers)."""

from __future__ import annotations

from typing import Any

from harness.emulator.materializers import Context, MaterializeError, Request, Result, materializes, without_none

DEFAULT_RETENTION_HOURS = 24


@materializes("aws:kinesis/stream:Stream")
def stream(context: Context, request: Request) -> Result:
    kinesis = context.client("kinesis")
    name = request.physical_name("name")
    mode = (request.get("streamModeDetails") or {}).get("streamMode", "PROVISIONED")
    try:
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    except kinesis.exceptions.ResourceNotFoundException:
        kinesis.create_stream(**without_none({
            "StreamName": name, "ShardCount": request.get("shardCount") if mode == "PROVISIONED" else None,
            "StreamModeDetails": {"StreamMode": mode}}))
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    else:
        wanted = request.get("shardCount")
        if mode == "PROVISIONED" and wanted and wanted != summary.get("OpenShardCount"):
            kinesis.update_shard_count(StreamName=name, TargetShardCount=int(wanted), ScalingType="UNIFORM_SCALING")
    retention = int(request.get("retentionPeriod", DEFAULT_RETENTION_HOURS))
    current_retention = int(summary.get("RetentionPeriodHours", DEFAULT_RETENTION_HOURS))
    if retention > current_retention:
        kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=retention)
    elif retention < current_retention:
        kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=retention)
    if request.get("encryptionType") == "KMS" and summary.get("EncryptionType") != "KMS":
        kinesis.start_stream_encryption(StreamName=name, EncryptionType="KMS",
                                        KeyId=request.get("kmsKeyId", "alias/aws/kinesis"))
    if request.get("tags"):
        kinesis.add_tags_to_stream(StreamName=name, Tags=dict(request.get("tags")))
    arn = summary["StreamARN"]
    return Result(arn, {"arn": arn, "name": name})


def _buffering(configuration: dict[str, Any]) -> dict[str, Any] | None:
    return without_none({"SizeInMBs": configuration.get("bufferingSize"),
                         "IntervalInSeconds": configuration.get("bufferingInterval")}) or None


def _logging(configuration: dict[str, Any]) -> dict[str, Any] | None:
    options = configuration.get("cloudwatchLoggingOptions")
    if not options:
        return None
    return without_none({"Enabled": bool(options.get("enabled")), "LogGroupName": options.get("logGroupName"),
                         "LogStreamName": options.get("logStreamName")})


def _processing(configuration: dict[str, Any]) -> dict[str, Any] | None:
    processing = configuration.get("processingConfiguration")
    if not processing:
        return None
    return {
        "Enabled": bool(processing.get("enabled")),
        "Processors": [
            {"Type": processor.get("type"),
             "Parameters": [{"ParameterName": parameter.get("parameterName"),
                             "ParameterValue": str(parameter.get("parameterValue"))}
                            for parameter in processor.get("parameters") or []]}
            for processor in processing.get("processors") or []
        ],
    }


def delivery_stream_request(request: Request, name: str) -> dict[str, Any]:
    """The provider's `extended_s3` + Kinesis source arguments as a CreateDeliveryStream request (pure)."""
    destination = request.get("destination")
    if destination not in ("extended_s3", "s3"):
        raise MaterializeError(f"delivery stream {name}: destination {destination!r} is not emulated locally "
                               "(extended_s3 only)")
    s3 = request.get("extendedS3Configuration") or {}
    parameters: dict[str, Any] = {
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": without_none({
            "RoleARN": s3.get("roleArn"), "BucketARN": s3.get("bucketArn"), "Prefix": s3.get("prefix"),
            "ErrorOutputPrefix": s3.get("errorOutputPrefix"), "BufferingHints": _buffering(s3),
            "CompressionFormat": s3.get("compressionFormat"), "CloudWatchLoggingOptions": _logging(s3),
            "ProcessingConfiguration": _processing(s3), "S3BackupMode": s3.get("s3BackupMode"),
            "CustomTimeZone": s3.get("customTimeZone"), "FileExtension": s3.get("fileExtension"),
        }),
    }
    source = request.get("kinesisSourceConfiguration")
    if source:
        parameters["DeliveryStreamType"] = "KinesisStreamAsSource"
        parameters["KinesisStreamSourceConfiguration"] = {"KinesisStreamARN": source.get("kinesisStreamArn"),
                                                          "RoleARN": source.get("roleArn")}
    else:
        parameters["DeliveryStreamType"] = "DirectPut"
    if request.get("tags"):
        parameters["Tags"] = [{"Key": k, "Value": str(v)} for k, v in sorted(request.get("tags").items())]
    return parameters


@materializes("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
def delivery_stream(context: Context, request: Request) -> Result:
    firehose = context.client("firehose")
    name = request.physical_name("name")
    parameters = delivery_stream_request(request, name)
    try:
        firehose.describe_delivery_stream(DeliveryStreamName=name)
        exists = True
    except firehose.exceptions.ResourceNotFoundException:
        exists = False
    if exists:
        # The source cannot change in place on AWS either; re-creating gives the daemon's runner a fresh start.
        firehose.delete_delivery_stream(DeliveryStreamName=name, AllowForceDelete=True)
    arn = firehose.create_delivery_stream(**parameters)["DeliveryStreamARN"]
    description = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    return Result(arn, {"arn": arn, "name": name, "versionId": description.get("VersionId", "1"),
                        "destinationId": (description.get("Destinations") or [{}])[0].get("DestinationId", "")})
