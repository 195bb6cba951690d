"""`SourceDatabase`: the MySQL the Glue job reads, attached (lab mode) or created small and seeded by a Lambda.

`client` is what a function that reads the source gets (the seeder, the activity producer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults, packaging, policies
from components.config import SourceDbConfig
from components.credentials import DatabaseClient, credentials_secret, generated_password
from components.lambda_function import PythonFunction, PythonFunctionArgs, VpcPlacement
from components.stack_context import StackContext

# Where the seeder reads a dump it is asked to load (`{"classicmodels_dump": {"bucket", "key"}}`, from
# harness/workflows/seed.py).
SEED_PREFIX = "seed/"


@dataclass(frozen=True)
class SourceDatabaseArgs:
    config: SourceDbConfig
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    # Who may connect on 3306 when the program creates the database (the Glue job, the seeder and producer).
    client_security_group_ids: list[pulumi.Input[str]]
    # Where the seeder runs (the Lambda placement every function that reaches a database uses).
    lambda_vpc: VpcPlacement
    # The artifacts bucket: `harness seed --classicmodels-dump` uploads the lab's dump under `seed/` for the seeder.
    dump_bucket_arn: pulumi.Input[str] | None = None


class SourceDatabase(pulumi.ComponentResource):
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    db_name: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    secret_arn: pulumi.Output[str]
    client: DatabaseClient

    def __init__(self, name: str, context: StackContext, args: SourceDatabaseArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:database:SourceDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        self.db_name = pulumi.Output.from_input(config.name)
        self.username = pulumi.Output.from_input(config.username)

        instance: aws.rds.Instance | None = None
        if config.host is not None:
            assert config.password is not None  # parse_config guarantees it
            self.host = pulumi.Output.from_input(config.host)
            self.port = pulumi.Output.from_input(config.port)
            self.password = pulumi.Output.secret(config.password)
        else:
            security_group = aws.ec2.SecurityGroup(
                f"{name}-sg",
                tags=context.tags,
                name=context.name("source-db", "security-group"),
                description="recsys source MySQL: from the Glue job and the seeding/producer Lambdas only",
                vpc_id=args.vpc_id,
                ingress=[aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=config.port, to_port=config.port,
                                                          security_groups=args.client_security_group_ids,
                                                          description="Glue and Lambdas")],
                opts=child,
            )
            subnet_group = aws.rds.SubnetGroup(f"{name}-subnets", name=context.name("source-db", "rds-subnet-group"),
                                               subnet_ids=args.subnet_ids, tags=context.tags, opts=child)
            self.password = generated_password(f"{name}-password", self)
            identifier = context.name("source-db", "rds")
            instance = aws.rds.Instance(
                name, tags=context.tags,
                identifier=identifier,
                engine="mysql",
                engine_version=defaults.SOURCE_DB_ENGINE_VERSION,
                instance_class=config.instance_class,
                allocated_storage=defaults.DB_ALLOCATED_STORAGE_GB,
                storage_type="gp3",
                storage_encrypted=defaults.DB_STORAGE_ENCRYPTED,
                db_name=config.name,
                username=config.username,
                password=self.password,
                port=config.port,
                db_subnet_group_name=subnet_group.name,
                vpc_security_group_ids=[security_group.id],
                publicly_accessible=False,
                **defaults.rds_lifecycle(identifier, ephemeral=context.ephemeral),
                opts=child,
            )
            self.host = instance.address
            self.port = instance.port

        self.secret, self.secret_value = credentials_secret(
            f"{name}-secret", context, purpose="source-db", engine="mysql", host=self.host, port=self.port,
            dbname=config.name, username=config.username, password=self.password, parent=self)
        self.secret_arn = self.secret.arn
        environment: dict[str, pulumi.Input[str]] = {
            "SOURCE_DB_HOST": self.host,
            "SOURCE_DB_PORT": self.port.apply(str),
            "SOURCE_DB_NAME": config.name,
            "SOURCE_DB_USER": config.username,
            "SOURCE_DB_SECRET_ARN": self.secret_arn,
        }
        self.client = DatabaseClient(environment=environment, secret_arn=self.secret_arn,
                                     ready=[*([instance] if instance is not None else []), self.secret_value])

        self.seeder: PythonFunction | None = None
        if instance is not None:
            self.seeder = PythonFunction(
                f"{name}-seeder",
                context,
                PythonFunctionArgs(
                    purpose="source-seeder", handler_module="seeder",
                    description="Writes the classicmodels-shaped source data into the source MySQL",
                    memory_mb=512, timeout_seconds=300,
                    environment=environment,
                    vpc=args.lambda_vpc,
                    secret_arns=[self.secret_arn],
                    statements=[] if args.dump_bucket_arn is None else pulumi.Output.from_input(
                        args.dump_bucket_arn).apply(
                        lambda arn: policies.s3_read_prefix(arn, SEED_PREFIX, "ReadClassicmodelsDump")),
                ),
                opts=child,
            )
            # Seed once the database and its secret exist; re-seed when the seeding code changes.
            aws.lambda_.Invocation(
                f"{name}-seed",
                function_name=self.seeder.name,
                input=json.dumps({"action": "seed"}),
                triggers={"seeder_code": packaging.function_package("seeder").sha256_base64,
                          "instance": instance.identifier},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[instance, self.secret_value, self.seeder]),
            )

        self.register_outputs({
            "host": self.host, "port": self.port, "db_name": self.db_name, "username": self.username,
            "password": self.password, "secret_arn": self.secret_arn,
        })
