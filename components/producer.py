"""`ActivityProducer`: a function that writes user-activity events to the Kinesis stream on a schedule (optional).

The program declares it only with `recsys:producerSchedule`; locally the harness drives the stream itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import policies
from components.credentials import DatabaseClient
from components.lambda_function import PythonFunction, PythonFunctionArgs, VpcPlacement
from components.stack_context import StackContext


@dataclass(frozen=True)
class ActivityProducerArgs:
    # An EventBridge schedule expression (recsys:producerSchedule).
    schedule: str
    events_per_invocation: int
    kinesis_stream_name: pulumi.Input[str]
    kinesis_stream_arn: pulumi.Input[str]
    # The events name customers and products of the source database.
    source_db: DatabaseClient
    vpc: VpcPlacement
    # The component the producer's resources were children of in stacks deployed before they moved here (their
    # aliases name it, so `pulumi up` moves them instead of replacing them). Their names are unchanged.
    moved_from: pulumi.Resource | None = None


class ActivityProducer(pulumi.ComponentResource):
    function_name: pulumi.Output[str]

    def __init__(self, name: str, context: StackContext, args: ActivityProducerArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:streaming:ActivityProducer", name, None, opts)
        aliases = [pulumi.Alias(parent=args.moved_from)] if args.moved_from is not None else []
        child = pulumi.ResourceOptions(parent=self, aliases=aliases)
        producer = PythonFunction(
            f"{name}-producer",
            context,
            PythonFunctionArgs(
                purpose="producer", handler_module="producer",
                description="Writes user-activity events to the Kinesis stream on a schedule",
                memory_mb=256, timeout_seconds=60,
                environment={
                    **args.source_db.environment,
                    "KINESIS_STREAM_NAME": args.kinesis_stream_name,
                    "EVENTS_PER_INVOCATION": str(args.events_per_invocation),
                },
                vpc=args.vpc,
                secret_arns=[args.source_db.secret_arn],
                statements=pulumi.Output.from_input(args.kinesis_stream_arn).apply(
                    lambda arn: [policies.kinesis_write(arn)]),
            ),
            opts=child,
        )
        rule = aws.cloudwatch.EventRule(f"{name}-producer-schedule", name=context.name("producer", "event-rule"),
                                        schedule_expression=args.schedule, tags=context.tags, opts=child)
        aws.lambda_.Permission(f"{name}-producer-invoke", action="lambda:InvokeFunction", function=producer.name,
                               principal="events.amazonaws.com", source_arn=rule.arn, opts=child)
        aws.cloudwatch.EventTarget(f"{name}-producer-target", rule=rule.name, arn=producer.arn, opts=child)

        self.function_name = producer.name
        self.register_outputs({"function_name": self.function_name})
