"""`StreamingInference`: Kinesis -> Firehose (+ transformation Lambda) -> S3, the inference Function URL, the loader.

The post-deploy hook lives here: an `aws.lambda_.Invocation` of the embeddings loader, re-run whenever the embeddings
change (its triggers carry their hash) or the loader's code changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults, packaging, policies
from components.config import Architecture, ProducerConfig, StreamingConfig
from components.lambda_function import PythonFunction, PythonFunctionArgs, VpcPlacement
from components.naming import Namer
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
class VectorDbWiring:
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    db_name: pulumi.Input[str]
    username: pulumi.Input[str]
    password: pulumi.Input[str]
    secret_arn: pulumi.Input[str]
    # Resources the database is not usable before (instance, secret value): the loader invocation waits for them.
    ready: Sequence[pulumi.Resource]


@dataclass(frozen=True)
class StreamingInferenceArgs:
    config: StreamingConfig
    producer: ProducerConfig
    namer: Namer
    ephemeral: bool
    account_id: pulumi.Input[str]
    region: str
    architecture: Architecture
    layer_arn: pulumi.Input[str]
    log_retention_days: int
    plaintext_password_env: bool
    vpc: VpcPlacement
    vector_db: VectorDbWiring
    artifacts_bucket_id: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    embeddings_version: pulumi.Input[str] | None
    artifact_objects: Sequence[pulumi.Resource]
    source_environment: Mapping[str, pulumi.Input[str]]
    source_secret_arn: pulumi.Input[str]


class StreamingInference(pulumi.ComponentResource):
    kinesis_stream_name: pulumi.Output[str]
    kinesis_stream_arn: pulumi.Output[str]
    recommendations_bucket_id: pulumi.Output[str]
    delivery_stream_name: pulumi.Output[str]
    inference_function_url: pulumi.Output[str]
    transformation_function_name: pulumi.Output[str]
    inference_function_name: pulumi.Output[str]
    embeddings_loader_function_name: pulumi.Output[str]
    redrive_function_name: pulumi.Output[str]

    def __init__(self, name: str, args: StreamingInferenceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:streaming:StreamingInference", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        namer = args.namer

        if config.kinesis_stream_arn is not None:
            self.kinesis_stream_arn = pulumi.Output.from_input(config.kinesis_stream_arn)
            self.kinesis_stream_name = pulumi.Output.from_input(stream_name_from_arn(config.kinesis_stream_arn))
        else:
            stream = aws.kinesis.Stream(
                f"{name}-stream",
                tags=namer.tags,
                name=namer("kinesis-data-stream", "kinesis"),
                shard_count=config.kinesis_shard_count,
                retention_period=defaults.KINESIS_RETENTION_HOURS,
                stream_mode_details=aws.kinesis.StreamStreamModeDetailsArgs(stream_mode="PROVISIONED"),
                encryption_type="KMS",
                kms_key_id="alias/aws/kinesis",
                opts=child,
            )
            self.kinesis_stream_arn = stream.arn
            self.kinesis_stream_name = stream.name

        recommendations = SecureBucket(
            f"{name}-recommendations",
            SecureBucketArgs(pulumi.Output.from_input(args.account_id).apply(
                lambda account: namer.bucket(account, args.region, "recommendations")), args.ephemeral, namer.tags),
            opts=child,
        )

        vector_env: dict[str, pulumi.Input[str]] = {
            "VECTOR_DB_HOST": args.vector_db.host,
            "VECTOR_DB_PORT": pulumi.Output.from_input(args.vector_db.port).apply(str),
            "VECTOR_DB_NAME": args.vector_db.db_name,
            "VECTOR_DB_USER": args.vector_db.username,
            "VECTOR_DB_SECRET_ARN": args.vector_db.secret_arn,
        }
        if args.plaintext_password_env:
            # Lab compatibility only (recsys:plaintextPasswordEnv): the value stays a secret in Pulumi state.
            vector_env["VECTOR_DB_PASSWORD"] = pulumi.Output.secret(args.vector_db.password)
        serving_env: dict[str, pulumi.Input[str]] = {
            **vector_env,
            "ARTIFACTS_BUCKET": args.artifacts_bucket_id,
            "SERVING_PREFIX": defaults.SERVING_PREFIX,
            "TOP_K": str(config.top_k),
        }
        read_serving = pulumi.Output.from_input(args.artifacts_bucket_arn).apply(
            lambda arn: policies.s3_read_prefix(arn, defaults.SERVING_PREFIX, "ReadServingBundle"))

        def function(purpose: str, handler: str, description: str, memory: int, timeout: int,
                     environment: Mapping[str, pulumi.Input[str]], secret_arns: Sequence[pulumi.Input[str]],
                     statements: pulumi.Input[list[policies.Statement]]) -> PythonFunction:
            return PythonFunction(
                f"{name}-{purpose}",
                PythonFunctionArgs(
                    namer=namer, purpose=purpose, handler_module=handler, description=description,
                    architecture=args.architecture, layer_arn=args.layer_arn,
                    log_retention_days=args.log_retention_days, memory_mb=memory, timeout_seconds=timeout,
                    environment=environment, vpc=args.vpc, secret_arns=secret_arns, statements=statements,
                ),
                opts=child,
            )

        inference = function("model-inference", "inference", "Recommendations over HTTP (Function URL)", 512, 30,
                             serving_env, [args.vector_db.secret_arn], read_serving)
        url = aws.lambda_.FunctionUrl(f"{name}-inference-url", function_name=inference.name,
                                      authorization_type=config.inference_auth, opts=child)
        if config.inference_auth == "NONE":
            # An unauthenticated URL (explicit opt-in) still needs a resource policy that lets anyone call it.
            aws.lambda_.Permission(f"{name}-inference-url-public", action="lambda:InvokeFunctionUrl",
                                   function=inference.name, principal="*", function_url_auth_type="NONE",
                                   opts=child)

        transformation = function("transformation-lambda", "transformation",
                                  "Firehose processor: adds recommendations to each session record", 512, 60,
                                  serving_env, [args.vector_db.secret_arn], read_serving)

        loader_env: dict[str, pulumi.Input[str]] = {
            **vector_env,
            "ARTIFACTS_BUCKET": args.artifacts_bucket_id,
            "EMBEDDINGS_PREFIX": defaults.EMBEDDINGS_PREFIX,
        }
        loader = function("embeddings-loader", "loader", "Loads embeddings/*.csv into pgvector (atomic swap)",
                          1024, 300,
                          loader_env, [args.vector_db.secret_arn],
                          pulumi.Output.from_input(args.artifacts_bucket_arn).apply(
                              lambda arn: policies.s3_read_prefix(arn, defaults.EMBEDDINGS_PREFIX, "ReadEmbeddings")))
        if args.embeddings_version is not None:
            aws.lambda_.Invocation(
                f"{name}-load-embeddings",
                function_name=loader.name,
                input=pulumi.Output.from_input(args.artifacts_bucket_id).apply(lambda bucket: json.dumps({
                    "bucket": bucket,
                    "item_key": defaults.EMBEDDING_OBJECTS[0],
                    "user_key": defaults.EMBEDDING_OBJECTS[1],
                }, sort_keys=True)),
                triggers={
                    "embeddings": args.embeddings_version,
                    "loader_code": packaging.function_package("loader").sha256_base64,
                },
                opts=pulumi.ResourceOptions(parent=self,
                                            depends_on=[*args.artifact_objects, *args.vector_db.ready, loader]),
            )

        self._delivery_stream(name, args, recommendations, transformation)
        redrive = self._redrive(name, args, recommendations)

        if args.producer.enabled:
            self._producer(name, args)

        self.recommendations_bucket_id = recommendations.id
        self.inference_function_url = url.function_url
        self.transformation_function_name = transformation.name
        self.inference_function_name = inference.name
        self.embeddings_loader_function_name = loader.name
        self.redrive_function_name = redrive.name
        self.register_outputs({
            "kinesis_stream_name": self.kinesis_stream_name,
            "kinesis_stream_arn": self.kinesis_stream_arn,
            "recommendations_bucket_id": self.recommendations_bucket_id,
            "delivery_stream_name": self.delivery_stream_name,
            "inference_function_url": self.inference_function_url,
            "transformation_function_name": self.transformation_function_name,
            "inference_function_name": self.inference_function_name,
            "embeddings_loader_function_name": self.embeddings_loader_function_name,
            "redrive_function_name": self.redrive_function_name,
        })

    def _delivery_stream(self, name: str, args: StreamingInferenceArgs, bucket: SecureBucket,
                         processor: PythonFunction) -> None:
        child = pulumi.ResourceOptions(parent=self)
        firehose = args.config.firehose
        stream_name = args.namer("delivery-stream", "firehose")
        log_group = aws.cloudwatch.LogGroup(f"{name}-delivery-logs", name=f"/aws/kinesisfirehose/{stream_name}",
                                            retention_in_days=args.log_retention_days, tags=args.namer.tags, opts=child)
        log_stream = aws.cloudwatch.LogStream(f"{name}-delivery-log-stream", name="DestinationDelivery",
                                              log_group_name=log_group.name, opts=child)
        role = aws.iam.Role(
            f"{name}-delivery-role",
            tags=args.namer.tags,
            name=args.namer("delivery-stream", "iam-role"),
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account: policies.to_json(policies.assume_role_policy("firehose.amazonaws.com", account))),
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
            tags=args.namer.tags,
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

    def _redrive(self, name: str, args: StreamingInferenceArgs, bucket: SecureBucket) -> PythonFunction:
        """The error output back into the stream, each session once (lambda_src/redrive.py): by hand, and hourly."""
        child = pulumi.ResourceOptions(parent=self)
        firehose = args.config.firehose
        marker_prefix = redrive_marker_prefix(firehose.error_prefix)
        redrive = PythonFunction(
            f"{name}-redrive",
            PythonFunctionArgs(
                namer=args.namer, purpose="redrive", handler_module="redrive",
                description="Sends records of the Firehose error output back into the Kinesis stream, each once",
                architecture=args.architecture, layer_arn=args.layer_arn,
                log_retention_days=args.log_retention_days, memory_mb=512, timeout_seconds=300,
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
        rule = aws.cloudwatch.EventRule(f"{name}-redrive-schedule", name=args.namer("redrive", "event-rule"),
                                        schedule_expression=REDRIVE_SCHEDULE, tags=args.namer.tags, opts=child)
        aws.lambda_.Permission(f"{name}-redrive-invoke", action="lambda:InvokeFunction", function=redrive.name,
                               principal="events.amazonaws.com", source_arn=rule.arn, opts=child)
        # A constant `{}`: the function refuses unknown options, and EventBridge's own event would be one.
        aws.cloudwatch.EventTarget(f"{name}-redrive-target", rule=rule.name, arn=redrive.arn, input="{}", opts=child)
        return redrive

    def _producer(self, name: str, args: StreamingInferenceArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        producer = PythonFunction(
            f"{name}-producer",
            PythonFunctionArgs(
                namer=args.namer, purpose="producer", handler_module="producer",
                description="Writes user-activity events to the Kinesis stream on a schedule",
                architecture=args.architecture, layer_arn=args.layer_arn,
                log_retention_days=args.log_retention_days, memory_mb=256, timeout_seconds=60,
                environment={
                    **args.source_environment,
                    "KINESIS_STREAM_NAME": self.kinesis_stream_name,
                    "EVENTS_PER_INVOCATION": str(args.producer.events_per_invocation),
                },
                vpc=args.vpc,
                secret_arns=[args.source_secret_arn],
                statements=self.kinesis_stream_arn.apply(lambda arn: [policies.kinesis_write(arn)]),
            ),
            opts=child,
        )
        assert args.producer.schedule is not None
        rule = aws.cloudwatch.EventRule(f"{name}-producer-schedule", name=args.namer("producer", "event-rule"),
                                        schedule_expression=args.producer.schedule, tags=args.namer.tags, opts=child)
        aws.lambda_.Permission(f"{name}-producer-invoke", action="lambda:InvokeFunction", function=producer.name,
                               principal="events.amazonaws.com", source_arn=rule.arn, opts=child)
        aws.cloudwatch.EventTarget(f"{name}-producer-target", rule=rule.name, arn=producer.arn, opts=child)
