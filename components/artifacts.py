"""`MlArtifacts`: the data scientist's existing bucket (lab mode), or a bucket the program creates and fills from a dir.

`embeddings_version` is what the post-deploy loader invocation triggers on: the content hash of the two embeddings
files (created bucket) or their ETags (existing bucket). None means there is nothing to load yet, and the program
creates no loader invocation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import defaults, packaging
from components.config import ArtifactsConfig
from components.naming import short_hash
from components.stack_context import StackContext
from components.storage import SecureBucket, SecureBucketArgs

_CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json"}


def artifact_files(directory: Path) -> dict[str, Path]:
    """Object key -> file for every regular file under `directory` (hidden files and dirs skipped)."""
    if not directory.is_dir():
        return {}
    files = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            files[relative.as_posix()] = path
    return files


def embeddings_version(files: dict[str, Path]) -> str | None:
    """One hash over both embeddings files, or None unless both are present."""
    if not all(key in files for key in defaults.EMBEDDING_OBJECTS):
        return None
    digest = hashlib.sha256()
    for key in defaults.EMBEDDING_OBJECTS:
        digest.update(key.encode() + b"\0" + packaging.file_sha256(files[key]).encode() + b"\0")
    return digest.hexdigest()


def object_resource_name(prefix: str, key: str) -> str:
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9._-]+', '-', key)}-{short_hash(key)}"


@dataclass(frozen=True)
class MlArtifactsArgs:
    config: ArtifactsConfig


class MlArtifacts(pulumi.ComponentResource):
    bucket_id: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    embeddings_version: pulumi.Output[str] | None
    objects: list[pulumi.Resource]

    def __init__(self, name: str, context: StackContext, args: MlArtifactsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("recsys:artifacts:MlArtifacts", name, None, opts)
        config = args.config
        self.objects = []
        self.embeddings_version = None

        if config.existing_bucket is not None:
            bucket = config.existing_bucket
            self.bucket_id = pulumi.Output.from_input(bucket)
            self.bucket_arn = pulumi.Output.concat("arn:", context.partition, ":s3:::", bucket)
            etags = [aws.s3.get_object_output(bucket=bucket, key=key, opts=pulumi.InvokeOutputOptions(parent=self)).etag
                     for key in defaults.EMBEDDING_OBJECTS]
            self.embeddings_version = pulumi.Output.all(*etags).apply(lambda tags: ",".join(str(t) for t in tags))
        else:
            created = SecureBucket(f"{name}-bucket", context, SecureBucketArgs("ml-artifacts"),
                                   opts=pulumi.ResourceOptions(parent=self))
            self.bucket_id = created.id
            self.bucket_arn = created.arn
            self._upload(name, config, created)

        outputs: dict[str, object] = {"bucket_id": self.bucket_id, "bucket_arn": self.bucket_arn}
        if self.embeddings_version is not None:
            outputs["embeddings_version"] = self.embeddings_version
        self.register_outputs(outputs)

    def _upload(self, name: str, config: ArtifactsConfig, bucket: SecureBucket) -> None:
        if config.local_dir is None:
            pulumi.log.warn("recsys:artifactsDir is not set: the artifacts bucket stays empty and the embeddings "
                            "loader is not invoked. Upload embeddings/*.csv and set recsys:artifactsDir, or use "
                            "recsys:artifactsBucket.", self)
            return
        directory = Path(config.local_dir)
        if not directory.is_absolute():
            directory = packaging.PROJECT_ROOT / directory
        files = artifact_files(directory)
        if not files:
            pulumi.log.warn(f"recsys:artifactsDir {directory} is missing or empty: no artifacts are uploaded and the "
                            "embeddings loader is not invoked. Train first (locally: python -m harness train), "
                            "then deploy again.", self)
            return
        for key, path in files.items():
            self.objects.append(aws.s3.BucketObjectv2(
                object_resource_name(name, key),
                bucket=bucket.id,
                key=key,
                source=pulumi.FileAsset(str(path)),
                source_hash=packaging.file_sha256(path),
                content_type=_CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                server_side_encryption=defaults.S3_SSE_ALGORITHM,
                opts=pulumi.ResourceOptions(parent=self),
            ))
        version = embeddings_version(files)
        if version is None:
            pulumi.log.warn(f"{directory} has no {' and '.join(defaults.EMBEDDING_OBJECTS)}: the embeddings loader "
                            "is not invoked.", self)
            return
        self.embeddings_version = pulumi.Output.from_input(version)
