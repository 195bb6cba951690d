"""`EtlPipeline`: data lake and scripts buckets, the Glue script, catalog, JDBC connection and the Glue job."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults, packaging, policies
from components.config import GlueConfig
from components.stack_context import StackContext
from components.storage import SecureBucket, SecureBucketArgs

GLUE_SCRIPT = packaging.PROJECT_ROOT / "glue_scripts" / "ratings_etl.py"


@dataclass(frozen=True)
class EtlPipelineArgs:
    config: GlueConfig
    # The JDBC source and where the connection's network interface goes.
    source_host: pulumi.Input[str]
    source_port: pulumi.Input[int]
    source_db_name: pulumi.Input[str]
    source_secret_arn: pulumi.Input[str]
    source_secret_name: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    availability_zone: pulumi.Input[str]
    security_group_id: pulumi.Input[str]


class EtlPipeline(pulumi.ComponentResource):
    data_lake_bucket_id: pulumi.Output[str]
    scripts_bucket_id: pulumi.Output[str]
    job_name: pulumi.Output[str]
    catalog_database: pulumi.Output[str]
    connection_name: pulumi.Output[str]
    script_location: pulumi.Output[str]

    def __init__(self, name: str, context: StackContext, args: EtlPipelineArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:etl:EtlPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.data_lake = SecureBucket(f"{name}-datalake", context, SecureBucketArgs("datalake"), opts=child)
        self.scripts = SecureBucket(f"{name}-scripts", context, SecureBucketArgs("scripts"), opts=child)

        if not GLUE_SCRIPT.is_file():
            raise pulumi.RunError(f"the Glue script {GLUE_SCRIPT} is missing; the Glue job deploys that file")
        script_hash = packaging.file_sha256(GLUE_SCRIPT)
        # The key carries the content hash: a changed script is a new object and a new script_location, so the job
        # updates; the old object goes away with the replacement.
        script = aws.s3.BucketObjectv2(
            f"{name}-script",
            bucket=self.scripts.id,
            key=f"glue/ratings_etl-{script_hash[:16]}.py",
            source=pulumi.FileAsset(str(GLUE_SCRIPT)),
            source_hash=script_hash,
            content_type="text/x-python",
            server_side_encryption=defaults.S3_SSE_ALGORITHM,
            opts=child,
        )
        self.script_location = pulumi.Output.concat("s3://", script.bucket, "/", script.key)

        database = aws.glue.CatalogDatabase(f"{name}-catalog", name=context.name("catalog", "glue-database"),
                                            description="recsys training data (ratings_ml_training)",
                                            tags=context.tags, opts=child)
        connection = aws.glue.Connection(
            f"{name}-source-connection",
            tags=context.tags,
            name=context.name("source-connection", "glue"),
            connection_type="JDBC",
            # Credentials come from Secrets Manager (SECRET_ID), never plaintext connection properties.
            connection_properties={
                "JDBC_CONNECTION_URL": pulumi.Output.concat(
                    "jdbc:mysql://", args.source_host, ":", pulumi.Output.from_input(args.source_port).apply(str), "/",
                    args.source_db_name),
                "SECRET_ID": args.source_secret_name,
                # TLS to the source; Glue trusts the RDS certificate authorities.
                "JDBC_ENFORCE_SSL": "true",
            },
            physical_connection_requirements=aws.glue.ConnectionPhysicalConnectionRequirementsArgs(
                availability_zone=args.availability_zone,
                security_group_id_lists=[args.security_group_id],
                subnet_id=args.subnet_id,
            ),
            opts=child,
        )

        job_name = context.name("etl-job", "glue")
        log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws-glue/jobs/{job_name}",
                                            retention_in_days=context.log_retention_days, tags=context.tags,
                                            opts=child)
        role = aws.iam.Role(
            f"{name}-role",
            tags=context.tags,
            name=context.name("glue-job", "iam-role"),
            assume_role_policy=context.service_trust_policy("glue.amazonaws.com"),
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(context.partition, context.account_id, self.scripts.arn, self.data_lake.arn,
                                     database.name, connection.name, args.source_secret_arn).apply(
                lambda v: policies.to_json(policies.glue_job_policy(
                    partition=v[0], region=context.region, account_id=v[1], scripts_bucket_arn=v[2],
                    datalake_bucket_arn=v[3], catalog_database=v[4], connection_name=v[5], source_secret_arn=v[6]))),
            opts=child,
        )
        self.job = aws.glue.Job(
            name, tags=context.tags,
            name=job_name,
            role_arn=role.arn,
            glue_version=defaults.GLUE_VERSION,
            worker_type=defaults.GLUE_WORKER_TYPE,
            number_of_workers=defaults.GLUE_WORKERS,
            timeout=args.config.timeout_minutes,
            max_retries=0,
            connections=[connection.name],
            command=aws.glue.JobCommandArgs(name="glueetl", python_version="3", script_location=self.script_location),
            default_arguments={
                "--job-language": "python",
                "--enable-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--continuous-log-logGroup": log_group.name,
                "--enable-job-insights": "true",
                "--connection_name": connection.name,
                "--catalog_database": database.name,
                "--catalog_table": defaults.GLUE_TABLE,
                "--target_path": pulumi.Output.concat("s3://", self.data_lake.id, "/",
                                                      defaults.DATALAKE_TRAINING_PREFIX),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        if args.config.schedule is not None:
            aws.glue.Trigger(
                f"{name}-schedule",
                tags=context.tags,
                name=context.name("etl-schedule", "glue"),
                type="SCHEDULED",
                schedule=args.config.schedule,
                actions=[aws.glue.TriggerActionArgs(job_name=self.job.name)],
                start_on_creation=True,
                opts=child,
            )

        self.data_lake_bucket_id = self.data_lake.id
        self.scripts_bucket_id = self.scripts.id
        self.job_name = self.job.name
        self.catalog_database = database.name
        self.connection_name = connection.name
        self.register_outputs({
            "data_lake_bucket_id": self.data_lake_bucket_id,
            "scripts_bucket_id": self.scripts_bucket_id,
            "job_name": self.job_name,
            "catalog_database": self.catalog_database,
            "connection_name": self.connection_name,
            "script_location": self.script_location,
        })
