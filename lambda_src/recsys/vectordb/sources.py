"""What the loader reads: one embeddings CSV per table, from S3 (pinned to its ETag) or a local file (its sha256)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from recsys.vectordb.embeddings_csv import EmbeddingsFileError
from recsys.vectordb.schema import TableName


@dataclass(frozen=True)
class EmbeddingSource:
    """One CSV to load into one table. `version` identifies the content (S3 ETag, or a sha256 for local files)."""

    table: TableName
    uri: str
    version: str
    open_lines: Callable[[], Iterable[bytes]]


def s3_source(s3: Any, table: TableName, bucket: str, key: str) -> EmbeddingSource:
    """A CSV in S3 pinned to the ETag seen now: if the object is replaced mid-load the read fails instead of mixing."""
    uri = f"s3://{bucket}/{key}"
    try:
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    except s3.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise EmbeddingsFileError(f"{uri} does not exist; publish the embeddings first (`python -m harness train`)"
                                      ) from exc
        raise

    def open_lines() -> Iterable[bytes]:
        body = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        return body.iter_lines(chunk_size=1 << 20)

    return EmbeddingSource(table, uri, etag, open_lines)


def file_source(table: TableName, path: str) -> EmbeddingSource:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)

    def open_lines() -> Iterable[bytes]:
        with open(path, "rb") as fh:
            yield from fh

    return EmbeddingSource(table, f"file://{os.path.abspath(path)}", "sha256:" + digest.hexdigest(), open_lines)
