"""`StreamingInference`: Kinesis -> Firehose (+ transformation Lambda) -> S3, the inference Function URL, the redrive.

The embeddings loader (`components/embeddings_loader.py`) and the scheduled producer (`components/producer.py`) are
components of their own; until issue 12 they were children of this one (their aliases name it: `__main__.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults, policies
from components.config import StreamingConfig
from components.credentials import DatabaseClient
from components.lambda_function import PythonFunction, PythonFunctionArgs, VpcPlacement
from components.stack_context import StackContext
from components.storage import SecureBucket, SecureBucketArgs

# The redrive runs every hour with `{}` (infrastructure failures only); by hand it takes options (docs/streaming.md).
# A fixed schedule, not a config key: a run that finds nothing costs a few S3 listings.
REDRIVE_SCHEDULE = "rate(1 hour)"
REDRIVE_MARKER_DIRECTORY = "redriven/"


def stream_name_from_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def redrive_marker_prefix(error_prefix: str) -> str:
    """Markers sit beside the error output (`errors/redriven/` by default): whatever reads the bucket and treats the
    error root as "not delivered records" skips them too (`recsys.redrive.marker_prefix_for` agrees)."""
    return policies.firehose_prefix_root(error_prefix or policies.FIREHOSE_DEFAULT_ERROR_PREFIX) + \
        REDRIVE_MARKER_DIRECTORY


def processor_parameters(function_arn: str, buffer_size_mb: float, buffer_interval_seconds: int, retries: int
                         ) -> dict[str, str]:
    """Every Lambda-processor parameter explicit (the lab left them to AWS defaults)."""
    return {
        # Firehose calls a version; $LATEST follows each deployment.
        "LambdaArn": f"{function_arn}:$LATEST",
        "BufferSizeInMBs": f"{buffer_size_mb:g}",
        "BufferIntervalInSeconds": str(buffer_interval_seconds),
        "NumberOfRetries": str(retries),
    }


@dataclass(frozen=True)
class StreamingInferenceArgs:
    config: StreamingConfig
    # Where the functions that reach the vector database run.
    vpc: VpcPlacement
    vector_db: DatabaseClient
    artifacts_bucket_id: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]


class StreamingInference(pulumi.ComponentResource):
    kinesis_stream_name: pulumi.Output[str]
    kinesis_stream_arn: pulumi.Output[str]
    recommendations_bucket_id: pulumi.Output[str]
    delivery_stream_name: pulumi.Output[str]
    inference_function_url: pulumi.Output[str]
    transformation_function_name: pulumi.Output[str]
    inference_function_name: pulumi.Output[str]
    redrive_function_name: pulumi.Output[str]

    def __init__(self, name: str, context: StackContext, args: StreamingInferenceArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:streaming:StreamingInference", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config

        if config.kinesis_stream_arn is not None:
            self.kinesis_stream_arn = pulumi.Output.from_input(config.kinesis_stream_arn)
            self.kinesis_stream_name = pulumi.Output.from_input(stream_name_from_arn(config.kinesis_stream_arn))
        else:
            stream = aws.kinesis.Stream(
                f"{name}-stream",
                tags=context.tags,
                name=context.name("kinesis-data-stream", "kinesis"),
                shard_count=config.kinesis_shard_count,
                retention_period=defaults.KINESIS_RETENTION_HOURS,
                stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(stream_mode="PROVISIONED"),
                encryption_type=defaults.KINESIS_ENCRYPTION_TYPE,
                kms_key_id=defaults.KINESIS_KMS_KEY_ID,
                opts=child,
            )
            self.kinesis_stream_arn = stream.arn
            self.kinesis_stream_name = stream.name

        recommendations = SecureBucket(f"{name}-recommendations", context, SecureBucketArgs("recommendations"),
                                       opts=child)

        serving_env: dict[str, pulumi.Input[str]] = {
            **args.vector_db.environment,
            "ARTIFACTS_BUCKET": args.artifacts_bucket_id,
            "SERVING_PREFIX": defaults.SERVING_PREFIX,
            "TOP_K": str(config.top_k),
        }
        read_serving = pulumi.Output.from_input(args.artifacts_bucket_arn).apply(
            lambda arn: policies.s3_read_prefix(arn, defaults.SERVING_PREFIX, "ReadServingBundle"))

        def serving_function(purpose: str, handler: str, description: str, timeout: int) -> PythonFunction:
            return PythonFunction(
                f"{name}-{purpose}",
                context,
                PythonFunctionArgs(
                    purpose=purpose, handler_module=handler, description=description, memory_mb=512,
                    timeout_seconds=timeout, environment=serving_env, vpc=args.vpc,
                    secret_arns=[args.vector_db.secret_arn], statements=read_serving,
                ),
                opts=child,
            )

        inference = serving_function("model-inference", "inference", "Recommendations over HTTP (Function URL)", 30)
        url = aws.lambda_.FunctionUrl(f"{name}-inference-url", function_name=inference.name,
                                      authorization_type=config.inference_auth, opts=child)
        if config.inference_auth == "NONE":
            # An unauthenticated URL (explicit opt-in) still needs a resource policy that lets anyone call it.
            aws.lambda_.Permission(f"{name}-inference-url-public", action="lambda:InvokeFunctionUrl",
                                   function=inference.name, principal="*", function_url_auth_type="NONE",
                                   opts=child)

        transformation = serving_function("transformation-lambda", "transformation",
                                          "Firehose processor: adds recommendations to each session record", 60)

        self._delivery_stream(name, context, args, recommendations, transformation)
        redrive = self._redrive(name, context, args, recommendations)

        self.recommendations_bucket_id = recommendations.id
        self.inference_function_url = url.function_url
        self.transformation_function_name = transformation.name
        self.inference_function_name = inference.name
        self.redrive_function_name = redrive.name
        self.register_outputs({
            "kinesis_stream_name": self.kinesis_stream_name,
            "kinesis_stream_arn": self.kinesis_stream_arn,
            "recommendations_bucket_id": self.recommendations_bucket_id,
            "delivery_stream_name": self.delivery_stream_name,
            "inference_function_url": self.inference_function_url,
            "transformation_function_name": self.transformation_function_name,
            "inference_function_name": self.inference_function_name,
            "redrive_function_name": self.redrive_function_name,
        })

    def _delivery_stream(self, name: str, context: StackContext, args: StreamingInferenceArgs, bucket: SecureBucket,
                         processor: PythonFunction) -> None:
        child = pulumi.ResourceOptions(parent=self)
        firehose = args.config.firehose
        stream_name = context.name("delivery-stream", "firehose")
        log_group = aws.cloudwatch.LogGroup(f"{name}-delivery-logs", name=f"/aws/kinesisfirehose/{stream_name}",
                                            retention_in_days=context.log_retention_days, tags=context.tags,
                                            opts=child)
        log_stream = aws.cloudwatch.LogStream(f"{name}-delivery-log-stream", name="DestinationDelivery",
                                              log_group_name=log_group.name, opts=child)
        role = aws.iam.Role(
            f"{name}-delivery-role",
            tags=context.tags,
            name=context.name("delivery-stream", "iam-role"),
            assume_role_policy=context.service_trust_policy("firehose.amazonaws.com"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-delivery-policy",
            role=role.id,
            policy=pulumi.Output.all(bucket.arn, self.kinesis_stream_arn, processor.arn, log_group.arn).apply(
                lambda v: policies.to_json(policies.firehose_policy(v[0], v[1], v[2], v[3]))),
            opts=child,
        )
        parameters = processor.arn.apply(lambda arn: [
            aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorParameterArgs(
                parameter_name=key, parameter_value=value)
            for key, value in processor_parameters(arn, firehose.processor_buffer_size_mb,
                                                   firehose.processor_buffer_interval_seconds,
                                                   firehose.processor_retries).items()
        ])
        delivery = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-delivery-stream",
            tags=context.tags,
            name=stream_name,
            destination="extended_s3",
            kinesis_source_configuration=aws.kinesis.FirehoseDeliveryStreamKinesisSourceConfigurationArgs(
                kinesis_stream_arn=self.kinesis_stream_arn, role_arn=role.arn),
            extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
                bucket_arn=bucket.arn,
                role_arn=role.arn,
                buffering_size=firehose.buffer_size_mb,
                buffering_interval=firehose.buffer_interval_seconds,
                prefix=firehose.prefix,
                error_output_prefix=firehose.error_prefix,
                compression_format="UNCOMPRESSED",
                cloudwatch_logging_options=aws.kinesis.
                FirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptionsArgs(
                    enabled=True, log_group_name=log_group.name, log_stream_name=log_stream.name),
                processing_configuration=aws.kinesis.
                FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationArgs(
                    enabled=True,
                    processors=[aws.kinesis.
                                FirehoseDeliveryStreamExtendedS3ConfigurationProcessingConfigurationProcessorArgs(
                                    type="Lambda", parameters=parameters)],
                ),
            ),
            # Firehose checks its role's permissions when the stream is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        self.delivery_stream_name = delivery.name

    def _redrive(self, name: str, context: StackContext, args: StreamingInferenceArgs,
                 bucket: SecureBucket) -> PythonFunction:
        """The error output back into the stream, each session once (lambda_src/redrive.py): by hand, and hourly."""
        child = pulumi.ResourceOptions(parent=self)
        firehose = args.config.firehose
        marker_prefix = redrive_marker_prefix(firehose.error_prefix)
        redrive = PythonFunction(
            f"{name}-redrive",
            context,
            PythonFunctionArgs(
                purpose="redrive", handler_module="redrive",
                description="Sends records of the Firehose error output back into the Kinesis stream, each once",
                memory_mb=512, timeout_seconds=300,
                environment={
                    "RECOMMENDATIONS_BUCKET": bucket.id,
                    "ERROR_OUTPUT_PREFIX": firehose.error_prefix,
                    "RECOMMENDATIONS_PREFIX": firehose.prefix,
                    "REDRIVEN_PREFIX": marker_prefix,
                    "KINESIS_STREAM_NAME": self.kinesis_stream_name,
                },
                # S3 and Kinesis only, over their public endpoints: no database, so no VPC and no secret.
                vpc=None,
                statements=pulumi.Output.all(bucket.arn, self.kinesis_stream_arn).apply(lambda v: [
                    *policies.s3_redrive(v[0], error_prefix=firehose.error_prefix,
                                         recommendations_prefix=firehose.prefix, marker_prefix=marker_prefix),
                    policies.kinesis_redrive(v[1]),
                ]),
            ),
            opts=child,
        )
        rule = aws.cloudwatch.EventRule(f"{name}-redrive-schedule", name=context.name("redrive", "event-rule"),
                                        schedule_expression=REDRIVE_SCHEDULE, tags=context.tags, opts=child)
        aws.lambda_.Permission(f"{name}-redrive-invoke", action="lambda:InvokeFunction", function=redrive.name,
                               principal="events.amazonaws.com", source_arn=rule.arn, opts=child)
        # A constant `{}`: the function refuses unknown options, and EventBridge's own event would be one.
        aws.cloudwatch.EventTarget(f"{name}-redrive-target", rule=rule.name, arn=redrive.arn, input="{}", opts=child)
        return redrive
