"""S3: buckets and the resources that configure them, and objects (FileAsset / StringAsset / content)."""

from __future__ import annotations

import base64
import json
from typing import Any

from harness.emulator.materializers import (
    Context,
    MaterializeError,
    Request,
    Result,
    asset_bytes,
    materializes,
    tags_list,
    without_none,
)


def _bucket_outputs(context: Context, bucket: str) -> dict[str, Any]:
    return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "bucketDomainName": f"{bucket}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{bucket}.s3.{context.region}.amazonaws.com", "region": context.region,
            "hostedZoneId": "Z3AQBSTGFYJSTF"}


@materializes("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
def bucket(context: Context, request: Request) -> Result:
    s3 = context.client("s3")
    name = request.physical_name("bucket", lowercase=True, max_length=63)
    try:
        if context.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": context.region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if request.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags_list(request.get("tags"))})
    return Result(name, _bucket_outputs(context, name))


@materializes("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def public_access_block(context: Context, request: Request) -> Result:
    name = request.get("bucket")
    context.client("s3").put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": bool(request.get("blockPublicAcls", False)),
        "IgnorePublicAcls": bool(request.get("ignorePublicAcls", False)),
        "BlockPublicPolicy": bool(request.get("blockPublicPolicy", False)),
        "RestrictPublicBuckets": bool(request.get("restrictPublicBuckets", False)),
    })
    return Result(name)


@materializes("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
def encryption(context: Context, request: Request) -> Result:
    name = request.get("bucket")
    rules = []
    for rule in request.get("rules", []):
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        rules.append(without_none({
            "ApplyServerSideEncryptionByDefault": without_none({
                "SSEAlgorithm": default.get("sseAlgorithm"), "KMSMasterKeyID": default.get("kmsMasterKeyId")}),
            "BucketKeyEnabled": rule.get("bucketKeyEnabled"),
        }))
    context.client("s3").put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    return Result(name)


def moto_compatible_policy(policy: str | dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The bucket policy as stored in moto, and the statements left out (pure).

    moto evaluates a bucket policy on object requests but supplies no condition context (aws:SecureTransport,
    aws:SourceVpce, ...), and a condition without a value counts as met: a conditional Deny such as the TLS-only
    statement would deny every local request (the local endpoint is plain HTTP on 127.0.0.1 anyway). So conditional
    Deny statements are left out of moto; the program's full policy stays in the resource's inputs and state.json.
    """
    document = json.loads(policy) if isinstance(policy, str) else dict(policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if not (s.get("Effect") == "Deny" and s.get("Condition"))]
    dropped = [s for s in statements if s not in kept]
    return json.dumps({**document, "Statement": kept}), dropped


@materializes("aws:s3/bucketPolicy:BucketPolicy")
def bucket_policy(context: Context, request: Request) -> Result:
    name = request.get("bucket")
    document, dropped = moto_compatible_policy(request.get("policy"))
    s3 = context.client("s3")
    if json.loads(document)["Statement"]:
        s3.put_bucket_policy(Bucket=name, Policy=document)
    else:
        # S3 refuses a policy without statements: what moto gets is "no policy"; the program's policy is in state.
        s3.delete_bucket_policy(Bucket=name)
    return Result(name, {"localPolicyOmittedStatements": [s.get("Sid", "") for s in dropped]})


@materializes("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
def versioning(context: Context, request: Request) -> Result:
    name = request.get("bucket")
    configuration = request.get("versioningConfiguration", {})
    context.client("s3").put_bucket_versioning(Bucket=name, VersioningConfiguration=without_none({
        "Status": configuration.get("status"), "MFADelete": configuration.get("mfaDelete")}))
    return Result(name)


@materializes("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def ownership(context: Context, request: Request) -> Result:
    name = request.get("bucket")
    rule = request.get("rule", {})
    context.client("s3").put_bucket_ownership_controls(Bucket=name, OwnershipControls={
        "Rules": [{"ObjectOwnership": rule.get("objectOwnership")}]})
    return Result(name)


@materializes("aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketObject:BucketObject")
def bucket_object(context: Context, request: Request) -> Result:
    bucket_name, key = request.get("bucket"), request.get("key")
    if request.get("source") is not None:
        body = asset_bytes(request.get("source"))
    elif request.get("contentBase64") is not None:
        body = base64.b64decode(request.get("contentBase64"))
    elif request.get("content") is not None:
        body = str(request.get("content")).encode("utf-8")
    else:
        raise MaterializeError(f"object s3://{bucket_name}/{key}: set source, content or content_base64")
    response = context.client("s3").put_object(**without_none({
        "Bucket": bucket_name, "Key": key, "Body": body, "ContentType": request.get("contentType"),
        "CacheControl": request.get("cacheControl"), "ContentEncoding": request.get("contentEncoding"),
        "Metadata": request.get("metadata"), "ServerSideEncryption": request.get("serverSideEncryption"),
        "SSEKMSKeyId": request.get("kmsKeyId"),
        "Tagging": "&".join(f"{k}={v}" for k, v in sorted((request.get("tags") or {}).items())) or None,
    }))
    return Result(str(key), {"etag": str(response.get("ETag", "")).strip('"'),
                             "versionId": response.get("VersionId") or "",
                             "arn": f"arn:aws:s3:::{bucket_name}/{key}"})


def get_object(context: Context, args: dict[str, Any]) -> dict[str, Any]:
    """`aws.s3.get_object`: metadata (and the body when it is text), as the data source returns it."""
    s3 = context.client("s3")
    bucket_name, key = args.get("bucket"), args.get("key")
    try:
        head = s3.head_object(**without_none({"Bucket": bucket_name, "Key": key, "VersionId": args.get("versionId")}))
    except s3.exceptions.ClientError as exc:
        raise MaterializeError(f"aws.s3.get_object: s3://{bucket_name}/{key} could not be read "
                               f"({exc.response.get('Error', {}).get('Code')}): upload it first") from exc
    result: dict[str, Any] = {
        "bucket": bucket_name, "key": key, "id": f"{bucket_name}/{key}", "etag": str(head.get("ETag", "")).strip('"'),
        "contentLength": head.get("ContentLength"), "contentType": head.get("ContentType"),
        "lastModified": str(head.get("LastModified")), "metadata": head.get("Metadata", {}),
        "versionId": head.get("VersionId") or "", "arn": f"arn:aws:s3:::{bucket_name}/{key}",
    }
    content_type = str(head.get("ContentType") or "")
    if content_type.startswith("text/") or content_type in ("application/json", "application/x-yaml"):
        result["body"] = s3.get_object(Bucket=bucket_name, Key=key)["Body"].read().decode("utf-8", errors="replace")
    return result
