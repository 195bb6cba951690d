"""`VectorDatabase`: RDS PostgreSQL 17 + pgvector, private and encrypted by default, credentials in Secrets Manager.

`client` is what every function that uses the database gets (serving functions, the embeddings loader).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults, policies
from components.config import VectorDbConfig
from components.credentials import DatabaseClient, credentials_secret, generated_password
from components.stack_context import StackContext


@dataclass(frozen=True)
class VectorDatabaseArgs:
    config: VectorDbConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    client_security_group_ids: list[pulumi.Input[str]]
    artifacts_bucket_arn: pulumi.Input[str]
    # Lab compatibility only (recsys:plaintextPasswordEnv): clients also get VECTOR_DB_PASSWORD.
    plaintext_password_env: bool


class VectorDatabase(pulumi.ComponentResource):
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    db_name: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    client: DatabaseClient

    def __init__(self, name: str, context: StackContext, args: VectorDatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:database:VectorDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        port = defaults.VECTOR_DB_PORT

        ingress = [aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=port, to_port=port,
                                                    security_groups=args.client_security_group_ids,
                                                    description="recsys Lambda functions")]
        if config.allowed_cidrs:
            ingress.append(aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=port, to_port=port,
                                                            cidr_blocks=list(config.allowed_cidrs),
                                                            description="CIDRs from recsys:vectorDbAllowedCidrs"))
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            tags=context.tags,
            name=context.name("vector-db", "security-group"),
            description="recsys vector DB: PostgreSQL from the Lambdas (and configured CIDRs only)",
            vpc_id=args.vpc_id,
            ingress=ingress,
            opts=child,
        )
        subnet_group = aws.rds.SubnetGroup(f"{name}-subnets", name=context.name("vector-db", "rds-subnet-group"),
                                           subnet_ids=args.subnet_ids, tags=context.tags, opts=child)
        self.password = generated_password(f"{name}-password", self)
        identifier = context.name("vector-db", "rds")
        self.instance = aws.rds.Instance(
            name, tags=context.tags,
            identifier=identifier,
            engine="postgres",
            engine_version=defaults.VECTOR_DB_ENGINE_VERSION,
            instance_class=config.instance_class,
            allocated_storage=config.allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=defaults.DB_STORAGE_ENCRYPTED,
            db_name=defaults.VECTOR_DB_NAME,
            username=defaults.VECTOR_DB_USER,
            password=self.password,
            port=port,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            publicly_accessible=config.public,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            **defaults.rds_lifecycle(identifier, ephemeral=context.ephemeral),
            opts=child,
        )

        # The lab associated an s3Import role with no policy, so `aws_s3.table_import_from_s3` could not read.
        import_role = aws.iam.Role(
            f"{name}-s3-import-role",
            tags=context.tags,
            name=context.name("vector-db-s3-import", "iam-role"),
            assume_role_policy=policies.to_json(policies.assume_role_policy("rds.amazonaws.com")),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-s3-import-policy",
            role=import_role.id,
            policy=pulumi.Output.from_input(args.artifacts_bucket_arn).apply(
                lambda arn: policies.to_json(policies.rds_s3_import_policy(arn, defaults.EMBEDDINGS_PREFIX))),
            opts=child,
        )
        aws.rds.RoleAssociation(f"{name}-s3-import", db_instance_identifier=self.instance.identifier,
                                feature_name="s3Import", role_arn=import_role.arn, opts=child)

        self.secret, self.secret_value = credentials_secret(
            f"{name}-secret", context, purpose="vector-db", engine="postgres",
            host=self.instance.address, port=self.instance.port, dbname=defaults.VECTOR_DB_NAME,
            username=defaults.VECTOR_DB_USER, password=self.password, parent=self)

        self.host = self.instance.address
        self.port = self.instance.port
        self.db_name = pulumi.Output.from_input(defaults.VECTOR_DB_NAME)
        self.username = self.instance.username
        self.secret_arn = self.secret.arn
        self.security_group_id = security_group.id
        environment: dict[str, pulumi.Input[str]] = {
            "VECTOR_DB_HOST": self.host,
            "VECTOR_DB_PORT": self.port.apply(str),
            "VECTOR_DB_NAME": self.db_name,
            "VECTOR_DB_USER": self.username,
            "VECTOR_DB_SECRET_ARN": self.secret_arn,
        }
        if args.plaintext_password_env:
            # The value stays a secret in Pulumi state.
            environment["VECTOR_DB_PASSWORD"] = pulumi.Output.secret(self.password)
        self.client = DatabaseClient(environment=environment, secret_arn=self.secret_arn,
                                     ready=[self.instance, self.secret_value])
        self.register_outputs({
            "host": self.host, "port": self.port, "db_name": self.db_name, "username": self.username,
            "password": self.password, "secret_arn": self.secret_arn, "security_group_id": self.security_group_id,
        })
