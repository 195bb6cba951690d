"""`PythonFunction` (one Lambda with its log group, role and least-privilege policy) and `DependencyLayer`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components import defaults, packaging, policies
from components.config import Architecture
from components.naming import Namer
from components.stack_context import StackContext


@dataclass(frozen=True)
class DependencyLayerArgs:
    namer: Namer
    architecture: Architecture


class DependencyLayer(pulumi.ComponentResource):
    """The third-party dependencies of every function (lambda_src/requirements.txt), built for the Lambda platform."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: DependencyLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:lambda:DependencyLayer", name, None, opts)
        package = packaging.dependency_layer(args.architecture)
        self.layer = aws.lambda_.LayerVersion(
            name,
            layer_name=args.namer("dependencies", "layer"),
            code=package.archive(),
            source_code_hash=package.sha256_base64,
            compatible_runtimes=[defaults.LAMBDA_RUNTIME],
            compatible_architectures=[args.architecture],
            description="recsys Lambda dependencies (lambda_src/requirements.txt)",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.layer.arn
        self.register_outputs({"arn": self.arn})


@dataclass(frozen=True)
class VpcPlacement:
    subnet_ids: pulumi.Input[list[str]]
    security_group_ids: list[pulumi.Input[str]]


@dataclass(frozen=True)
class PythonFunctionArgs:
    """What is specific to one function; the platform (architecture, layer, log retention, names) is the context's."""

    purpose: str
    handler_module: str
    description: str
    memory_mb: int = 256
    timeout_seconds: int = 60
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    vpc: VpcPlacement | None = None
    secret_arns: Sequence[pulumi.Input[str]] = ()
    # Statements beyond logs/VPC/secrets, as an Output so they can name ARNs of other resources.
    statements: pulumi.Input[list[policies.Statement]] = field(default_factory=list)


class PythonFunction(pulumi.ComponentResource):
    function: aws.lambda_.Function
    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, context: StackContext, args: PythonFunctionArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:lambda:PythonFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function_name = context.name(args.purpose, "lambda")
        package = packaging.function_package(args.handler_module)

        log_group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/lambda/{function_name}",
                                            retention_in_days=context.log_retention_days, tags=context.tags,
                                            opts=child)
        role = aws.iam.Role(
            f"{name}-role",
            tags=context.tags,
            name=context.name(args.purpose, "iam-role"),
            assume_role_policy=policies.to_json(policies.assume_role_policy("lambda.amazonaws.com")),
            opts=child,
        )
        in_vpc = args.vpc is not None
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.all(log_group.arn, pulumi.Output.all(*args.secret_arns),
                                     pulumi.Output.from_input(args.statements)).apply(
                lambda values: policies.to_json(policies.lambda_policy(
                    values[0], in_vpc=in_vpc, secret_arns=list(values[1]), extra=list(values[2])))),
            opts=child,
        )
        environment = {"POWERTOOLS_SERVICE_NAME": args.purpose, "LOG_LEVEL": defaults.LOG_LEVEL, **args.environment}
        self.function = aws.lambda_.Function(
            name, tags=context.tags,
            name=function_name,
            description=args.description,
            role=role.arn,
            runtime=defaults.LAMBDA_RUNTIME,
            architectures=[context.architecture],
            handler=f"{args.handler_module}.handler",
            code=package.archive(),
            source_code_hash=package.sha256_base64,
            layers=[context.layer_arn],
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.vpc.subnet_ids, security_group_ids=args.vpc.security_group_ids,
            ) if args.vpc is not None else None,
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=log_group.name),
            # The role's policy must exist before the function first runs (a VPC function needs ENI rights at once).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, log_group]),
        )
        self.arn = self.function.arn
        self.name = self.function.name
        self.role_arn = role.arn
        self.register_outputs({"arn": self.arn, "name": self.name, "role_arn": self.role_arn})
