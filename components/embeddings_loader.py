"""`EmbeddingsLoader`: the function that loads `embeddings/*.csv` into pgvector, and the post-deploy hook that runs it.

The hook is an `aws.lambda_.Invocation`, re-run whenever the embeddings change (its triggers carry their hash or ETags)
or the loader's code changes; without embeddings (`embeddings_version` None) there is nothing to load and no hook.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults, packaging, policies
from components.credentials import DatabaseClient
from components.lambda_function import PythonFunction, PythonFunctionArgs, VpcPlacement
from components.stack_context import StackContext


@dataclass(frozen=True)
class EmbeddingsLoaderArgs:
    vector_db: DatabaseClient
    vpc: VpcPlacement
    artifacts_bucket_id: pulumi.Input[str]
    artifacts_bucket_arn: pulumi.Input[str]
    embeddings_version: pulumi.Input[str] | None
    # The uploaded artifacts (when the program uploads them): the invocation runs after them.
    artifact_objects: Sequence[pulumi.Resource]
    # The component the function and the invocation were children of in stacks deployed before they moved here
    # (their aliases name it, so `pulumi up` moves them instead of replacing them). Their names are unchanged.
    moved_from: pulumi.Resource | None = None


class EmbeddingsLoader(pulumi.ComponentResource):
    function_name: pulumi.Output[str]

    def __init__(self, name: str, context: StackContext, args: EmbeddingsLoaderArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:database:EmbeddingsLoader", name, None, opts)
        aliases = [pulumi.Alias(parent=args.moved_from)] if args.moved_from is not None else []

        loader = PythonFunction(
            f"{name}-embeddings-loader",
            context,
            PythonFunctionArgs(
                purpose="embeddings-loader", handler_module="loader",
                description="Loads embeddings/*.csv into pgvector (atomic swap)", memory_mb=1024, timeout_seconds=300,
                environment={
                    **args.vector_db.environment,
                    "ARTIFACTS_BUCKET": args.artifacts_bucket_id,
                    "EMBEDDINGS_PREFIX": defaults.EMBEDDINGS_PREFIX,
                },
                vpc=args.vpc,
                secret_arns=[args.vector_db.secret_arn],
                statements=pulumi.Output.from_input(args.artifacts_bucket_arn).apply(
                    lambda arn: policies.s3_read_prefix(arn, defaults.EMBEDDINGS_PREFIX, "ReadEmbeddings")),
            ),
            # Its children (log group, role, policy, function) follow the alias: the engine derives theirs from it.
            opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
        )
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
                opts=pulumi.ResourceOptions(parent=self, aliases=aliases,
                                            depends_on=[*args.artifact_objects, *args.vector_db.ready, loader]),
            )

        self.function_name = loader.name
        self.register_outputs({"function_name": self.function_name})
