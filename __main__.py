"""The recommender platform: `pulumi up` builds the whole stack from the `recsys:` config (docs/program.md).

Kept tiny: read config, build the components (`build`, also called by `harness/emulator/program.py`), export the
outputs.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.artifacts import MlArtifacts, MlArtifactsArgs
from components.config import StackConfig, load_config
from components.embeddings_loader import EmbeddingsLoader, EmbeddingsLoaderArgs
from components.etl_pipeline import EtlPipeline, EtlPipelineArgs
from components.lambda_function import DependencyLayer, DependencyLayerArgs, VpcPlacement
from components.naming import Namer
from components.network import Network, NetworkArgs
from components.producer import ActivityProducer, ActivityProducerArgs
from components.source_database import SourceDatabase, SourceDatabaseArgs
from components.stack_context import StackContext
from components.streaming_inference import StreamingInference, StreamingInferenceArgs
from components.vector_database import VectorDatabase, VectorDatabaseArgs


def build(config: StackConfig) -> dict[str, pulumi.Output[Any]]:
    namer = Namer(config.prefix, config.stack)
    # The one component built before the context: every function runs with its layer.
    layer = DependencyLayer("lambda-dependencies", DependencyLayerArgs(namer=namer,
                                                                       architecture=config.lambda_architecture))
    context = StackContext(
        namer=namer, ephemeral=config.ephemeral, account_id=aws.get_caller_identity_output().account_id,
        region=config.region, partition=aws.get_partition_output().partition,
        log_retention_days=config.log_retention_days, architecture=config.lambda_architecture, layer_arn=layer.arn)

    network = Network("network", context, NetworkArgs(
        config=config.network, public_subnets=config.vector_db.public and config.network.create))
    lambda_vpc = VpcPlacement(subnet_ids=network.private_subnet_ids,
                              security_group_ids=[network.lambda_security_group_id])

    artifacts = MlArtifacts("ml-artifacts", context, MlArtifactsArgs(config=config.artifacts))

    source_db = SourceDatabase("source-db", context, SourceDatabaseArgs(
        config=config.source_db, vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
        client_security_group_ids=[network.lambda_security_group_id, network.glue_security_group_id],
        lambda_vpc=lambda_vpc, dump_bucket_arn=artifacts.bucket_arn))

    vector_db = VectorDatabase("vector-db", context, VectorDatabaseArgs(
        config=config.vector_db, vpc_id=network.vpc_id,
        subnet_ids=network.public_subnet_ids if config.vector_db.public else network.private_subnet_ids,
        client_security_group_ids=[network.lambda_security_group_id], artifacts_bucket_arn=artifacts.bucket_arn,
        plaintext_password_env=config.plaintext_password_env))

    etl = EtlPipeline("etl", context, EtlPipelineArgs(
        config=config.glue, source_host=source_db.host, source_port=source_db.port, source_db_name=source_db.db_name,
        source_secret_arn=source_db.secret_arn, source_secret_name=source_db.secret.name,
        subnet_id=network.private_subnet_ids[0], availability_zone=network.availability_zones[0],
        security_group_id=network.glue_security_group_id))

    streaming = StreamingInference("streaming", context, StreamingInferenceArgs(
        config=config.streaming, vpc=lambda_vpc, vector_db=vector_db.client,
        artifacts_bucket_id=artifacts.bucket_id, artifacts_bucket_arn=artifacts.bucket_arn))

    # The loader and the producer were children of `streaming` until issue 12. Named "streaming" as before, their
    # resources keep their names, and `moved_from` gives them aliases to their old parent: `pulumi up` moves them in
    # existing stacks instead of replacing them (and re-running the loader).
    loader = EmbeddingsLoader("streaming", context, EmbeddingsLoaderArgs(
        vector_db=vector_db.client, vpc=lambda_vpc, artifacts_bucket_id=artifacts.bucket_id,
        artifacts_bucket_arn=artifacts.bucket_arn, embeddings_version=artifacts.embeddings_version,
        artifact_objects=artifacts.objects, moved_from=streaming))
    if config.producer.schedule is not None:
        ActivityProducer("streaming", context, ActivityProducerArgs(
            schedule=config.producer.schedule, events_per_invocation=config.producer.events_per_invocation,
            kinesis_stream_name=streaming.kinesis_stream_name, kinesis_stream_arn=streaming.kinesis_stream_arn,
            source_db=source_db.client, vpc=lambda_vpc, moved_from=streaming))

    return {
        # The lab's Terraform output names.
        "data_lake_bucket_id": etl.data_lake_bucket_id,
        "scripts_bucket_id": etl.scripts_bucket_id,
        "vector_db_host": vector_db.host,
        "vector_db_port": vector_db.port,
        "vector_db_master_username": vector_db.username,
        "vector_db_master_password": pulumi.Output.secret(vector_db.password),
        "recommendations_bucket_id": streaming.recommendations_bucket_id,
        # Everything else a user or the local harness needs.
        "artifacts_bucket_id": artifacts.bucket_id,
        "glue_job_name": etl.job_name,
        "glue_catalog_database": etl.catalog_database,
        "glue_connection_name": etl.connection_name,
        "kinesis_stream_name": streaming.kinesis_stream_name,
        "kinesis_stream_arn": streaming.kinesis_stream_arn,
        "delivery_stream_name": streaming.delivery_stream_name,
        "inference_function_url": streaming.inference_function_url,
        "transformation_function_name": streaming.transformation_function_name,
        "inference_function_name": streaming.inference_function_name,
        "embeddings_loader_function_name": loader.function_name,
        "redrive_function_name": streaming.redrive_function_name,
        "vector_db_name": vector_db.db_name,
        "vector_db_secret_arn": vector_db.secret_arn,
        "source_db_host": source_db.host,
        "source_db_port": source_db.port,
        "source_db_name": source_db.db_name,
        "source_db_username": source_db.username,
        "source_db_password": pulumi.Output.secret(source_db.password),
        "source_db_secret_arn": source_db.secret_arn,
        # Only when the program creates the source database: the function that seeds it (workflows invoke it, as the
        # source database is private on AWS).
        **({"source_seeder_function_name": source_db.seeder.name} if source_db.seeder is not None else {}),
    }


if __name__ == "__main__":
    for output_name, value in build(load_config()).items():
        pulumi.export(output_name, value)
