"""`SecureBucket`: an S3 bucket that is private, encrypted and TLS-only, whatever component asks for it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import defaults, policies
from components.stack_context import StackContext


@dataclass(frozen=True)
class SecureBucketArgs:
    # The last part of the bucket name (`StackContext.bucket_name`): what the bucket holds.
    purpose: str


class SecureBucket(pulumi.ComponentResource):
    """Bucket + public access block + default encryption + owner-enforced ownership + TLS-only bucket policy."""

    bucket: aws.s3.Bucket
    id: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(self, name: str, context: StackContext, args: SecureBucketArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:storage:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Only ephemeral stacks may delete a bucket that still holds objects.
        self.bucket = aws.s3.Bucket(name, bucket=context.bucket_name(args.purpose), force_destroy=context.ephemeral,
                                   tags=context.tags, opts=child)
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm=defaults.S3_SSE_ALGORITHM,
                ),
                bucket_key_enabled=True,
            )],
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership=defaults.S3_OBJECT_OWNERSHIP),
            opts=child,
        )
        # After the public access block: S3 rejects a policy it would consider public while the block is missing.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=self.bucket.id,
            policy=self.bucket.arn.apply(lambda arn: policies.to_json(policies.tls_only_bucket_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )

        self.id = self.bucket.id
        self.arn = self.bucket.arn
        self.register_outputs({"id": self.id, "arn": self.arn})
