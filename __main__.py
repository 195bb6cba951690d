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
from components.etl_pipeline import EtlPipeline, EtlPipelineArgs
from components.lambda_function import DependencyLayer, DependencyLayerArgs, VpcPlacement
from components.naming import Namer
from components.network import Network, NetworkArgs
from components.source_database import SourceDatabase, SourceDatabaseArgs
from components.streaming_inference import StreamingInference, StreamingInferenceArgs, VectorDbWiring
from components.vector_database import VectorDatabase, VectorDatabaseArgs


def build(config: StackConfig) -> dict[str, pulumi.Output[Any]]:
    namer = Namer(config.prefix, config.stack)
    account_id = aws.get_caller_identity_output().account_id
    partition = aws.get_partition_output().partition

    network = Network("network", NetworkArgs(
        config=config.network, namer=namer, region=config.region,
        public_subnets=config.vector_db.public and config.network.create))
    lambda_vpc = VpcPlacement(subnet_ids=network.private_subnet_ids,
                              security_group_ids=[network.lambda_security_group_id])
    layer = DependencyLayer("lambda-dependencies", DependencyLayerArgs(namer=namer,
                                                                       architecture=config.lambda_architecture))

    source_db = SourceDatabase("source-db", SourceDatabaseArgs(
        config=config.source_db, namer=namer, ephemeral=config.ephemeral, vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_ids=[network.lambda_security_group_id, network.glue_security_group_id],
        lambda_security_group_id=network.lambda_security_group_id, layer_arn=layer.arn,
        architecture=config.lambda_architecture, log_retention_days=config.log_retention_days))

    artifacts = MlArtifacts("ml-artifacts", MlArtifactsArgs(
        config=config.artifacts, namer=namer, ephemeral=config.ephemeral, account_id=account_id,
        region=config.region, partition=partition))

    vector_db = VectorDatabase("vector-db", VectorDatabaseArgs(
        config=config.vector_db, namer=namer, ephemeral=config.ephemeral, vpc_id=network.vpc_id,
        subnet_ids=network.public_subnet_ids if config.vector_db.public else network.private_subnet_ids,
        client_security_group_ids=[network.lambda_security_group_id], artifacts_bucket_arn=artifacts.bucket_arn))

    etl = EtlPipeline("etl", EtlPipelineArgs(
        config=config.glue, namer=namer, ephemeral=config.ephemeral, account_id=account_id, region=config.region,
        partition=partition, log_retention_days=config.log_retention_days,
        source_host=source_db.host, source_port=source_db.port, source_db_name=source_db.db_name,
        source_secret_arn=source_db.secret_arn, source_secret_name=source_db.secret.name,
        subnet_id=network.private_subnet_ids[0], availability_zone=network.availability_zones[0],
        security_group_id=network.glue_security_group_id))

    streaming = StreamingInference("streaming", StreamingInferenceArgs(
        config=config.streaming, producer=config.producer, namer=namer, ephemeral=config.ephemeral,
        account_id=account_id, region=config.region, architecture=config.lambda_architecture, layer_arn=layer.arn,
        log_retention_days=config.log_retention_days, plaintext_password_env=config.plaintext_password_env,
        vpc=lambda_vpc,
        vector_db=VectorDbWiring(host=vector_db.host, port=vector_db.port, db_name=vector_db.db_name,
                                 username=vector_db.username, password=vector_db.password,
                                 secret_arn=vector_db.secret_arn,
                                 ready=[vector_db.instance, vector_db.secret_value]),
        artifacts_bucket_id=artifacts.bucket_id, artifacts_bucket_arn=artifacts.bucket_arn,
        embeddings_version=artifacts.embeddings_version, artifact_objects=artifacts.objects,
        source_environment=source_db.environment, source_secret_arn=source_db.secret_arn))

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
        "embeddings_loader_function_name": streaming.embeddings_loader_function_name,
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
