"""Secure, cheap defaults in one place: what the program does when config says nothing (docs/program.md tabulates them).

Settings that security depends on are not config at all (encryption, public access blocks, TLS-only policies); they
live here as constants so components and tests read the same values.
"""

from __future__ import annotations

from typing import Final, TypedDict

# Names users know from the lab.
PREFIX: Final = "de-c1w4"
REGION: Final = "us-east-1"
SOURCE_DB_NAME: Final = "classicmodels"
SOURCE_DB_PORT: Final = 3306
SOURCE_DB_USER: Final = "admin"
VECTOR_DB_NAME: Final = "postgres"
VECTOR_DB_USER: Final = "postgres"
VECTOR_DB_PORT: Final = 5432
GLUE_CATALOG_DATABASE_SUFFIX: Final = "catalog"
GLUE_TABLE: Final = "ratings_ml_training"
DATALAKE_TRAINING_PREFIX: Final = "ratings-ml-training/"
EMBEDDINGS_PREFIX: Final = "embeddings/"
SERVING_PREFIX: Final = "serving/"
EMBEDDING_OBJECTS: Final = ("embeddings/item_embeddings.csv", "embeddings/user_embeddings.csv")

# Network.
VPC_CIDR: Final = "10.42.0.0/16"
AVAILABILITY_ZONE_COUNT: Final = 2

# Databases: small, encrypted, private.
DB_INSTANCE_CLASS: Final = "db.t3.micro"
DB_ALLOCATED_STORAGE_GB: Final = 20
VECTOR_DB_ENGINE_VERSION: Final = "17"
SOURCE_DB_ENGINE_VERSION: Final = "8.0"
DB_STORAGE_ENCRYPTED: Final = True
DB_BACKUP_RETENTION_DAYS_RETAINED: Final = 7
# Secrets of kept stacks can be restored for a week after deletion; ephemeral stacks delete them at once.
SECRET_RECOVERY_WINDOW_DAYS_RETAINED: Final = 7


class RdsLifecycle(TypedDict):
    """The `aws.rds.Instance` arguments that follow from whether the stack is ephemeral (typed, so mypy checks them)."""

    skip_final_snapshot: bool
    final_snapshot_identifier: str | None
    deletion_protection: bool
    backup_retention_period: int
    apply_immediately: bool


def rds_lifecycle(identifier: str, *, ephemeral: bool) -> RdsLifecycle:
    """An ephemeral stack destroys cleanly and applies changes now; any other keeps backups, a final snapshot and
    deletion protection, and waits for the maintenance window."""
    return RdsLifecycle(
        skip_final_snapshot=ephemeral,
        final_snapshot_identifier=None if ephemeral else f"{identifier}-final",
        deletion_protection=not ephemeral,
        backup_retention_period=1 if ephemeral else DB_BACKUP_RETENTION_DAYS_RETAINED,
        apply_immediately=ephemeral,
    )
PASSWORD_LENGTH: Final = 32
# RDS forbids / @ " and space in master passwords; the rest of the punctuation is fine.
PASSWORD_OVERRIDE_SPECIAL: Final = "!#$%&*()-_=+[]{}<>:?"

# Streaming: AWS's own Firehose defaults, made explicit (the lab relied on them implicitly).
KINESIS_SHARD_COUNT: Final = 1
KINESIS_RETENTION_HOURS: Final = 24
# Server-side encryption of the created stream with the AWS-managed key (no key to pay for or manage).
KINESIS_ENCRYPTION_TYPE: Final = "KMS"
KINESIS_KMS_KEY_ID: Final = "alias/aws/kinesis"
FIREHOSE_BUFFER_SIZE_MB: Final = 5
FIREHOSE_BUFFER_INTERVAL_SECONDS: Final = 300
# Not AWS's 1 MB: with topK 5, 1 MB of the smallest sessions could make a 7.2 MB response, and Lambda refuses more than
# 6 MB (config.check_processor_response; docs/streaming.md). 0.8 MB is the largest tenth that fits topK 5.
PROCESSOR_BUFFER_SIZE_MB: Final = 0.8
PROCESSOR_BUFFER_INTERVAL_SECONDS: Final = 60
PROCESSOR_RETRIES: Final = 3
RECOMMENDATIONS_PREFIX: Final = "!{timestamp:yyyy/MM/dd/HH}/"
RECOMMENDATIONS_ERROR_PREFIX: Final = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
INFERENCE_AUTH: Final = "AWS_IAM"
TOP_K: Final = 5
PRODUCER_EVENTS_PER_INVOCATION: Final = 6

# Lambda.
LAMBDA_RUNTIME: Final = "python3.12"
LAMBDA_PYTHON_VERSION: Final = "3.12"
LAMBDA_ARCHITECTURE: Final = "x86_64"
LOG_RETENTION_DAYS: Final = 14
LOG_LEVEL: Final = "INFO"

# Glue: the lab's job on the current Glue version.
GLUE_VERSION: Final = "5.0"
GLUE_WORKER_TYPE: Final = "G.1X"
GLUE_WORKERS: Final = 2
GLUE_TIMEOUT_MINUTES: Final = 60

# S3: every bucket the program creates.
S3_SSE_ALGORITHM: Final = "AES256"
S3_OBJECT_OWNERSHIP: Final = "BucketOwnerEnforced"
