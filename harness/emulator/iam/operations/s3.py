"""S3's REST API (path-style, as the local stack is addressed) -> IAM actions on bucket and object ARNs.

The mapping follows the S3 API Reference's "Permissions" section of each operation: `HeadObject` is `s3:GetObject`,
`CopyObject` is `s3:GetObject` on the source and `s3:PutObject` on the target, every multipart step of an upload is
`s3:PutObject` (listing its parts `s3:ListMultipartUploadParts`), `DeleteObjects` is `s3:DeleteObject` on every key
of its body, `ListObjects(V2)` and `HeadBucket` are `s3:ListBucket` with `s3:prefix`, `s3:delimiter`, `s3:max-keys`
from the query. A version id turns object reads and deletes into their `...Version` actions.
"""

from __future__ import annotations

import urllib.parse
import xml.etree.ElementTree as ET

from harness.emulator.iam.calls import Authorization, Call, Unmapped
from harness.emulator.iam.operations.http import HttpRequest

# Query parameters that are not sub-resources (presigned URLs' signature, botocore's operation hint, listing options).
_NOT_SUBRESOURCES = frozenset({"x-id", "versionId", "partNumber", "prefix", "delimiter", "max-keys", "marker",
                               "continuation-token", "start-after", "fetch-owner", "encoding-type", "list-type",
                               "response-content-type", "response-content-disposition", "response-cache-control",
                               "response-content-encoding", "response-content-language", "response-expires",
                               "key-marker", "upload-id-marker", "max-uploads", "version-id-marker", "max-parts",
                               "part-number-marker"})
# Bucket configuration sub-resources: (GET, PUT, DELETE) as (operation, action); None where S3 has no such call.
_BUCKET_CONFIG: dict[str, tuple[tuple[str, str] | None, ...]] = {
    "policy": (("GetBucketPolicy", "s3:GetBucketPolicy"), ("PutBucketPolicy", "s3:PutBucketPolicy"),
               ("DeleteBucketPolicy", "s3:DeleteBucketPolicy")),
    "tagging": (("GetBucketTagging", "s3:GetBucketTagging"), ("PutBucketTagging", "s3:PutBucketTagging"),
                ("DeleteBucketTagging", "s3:PutBucketTagging")),
    "versioning": (("GetBucketVersioning", "s3:GetBucketVersioning"),
                   ("PutBucketVersioning", "s3:PutBucketVersioning"), None),
    "encryption": (("GetBucketEncryption", "s3:GetEncryptionConfiguration"),
                   ("PutBucketEncryption", "s3:PutEncryptionConfiguration"),
                   ("DeleteBucketEncryption", "s3:PutEncryptionConfiguration")),
    "publicAccessBlock": (("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
                          ("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
                          ("DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock")),
    "ownershipControls": (("GetBucketOwnershipControls", "s3:GetBucketOwnershipControls"),
                          ("PutBucketOwnershipControls", "s3:PutBucketOwnershipControls"),
                          ("DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls")),
    "acl": (("GetBucketAcl", "s3:GetBucketAcl"), ("PutBucketAcl", "s3:PutBucketAcl"), None),
    "location": (("GetBucketLocation", "s3:GetBucketLocation"), None, None),
    "uploads": (("ListMultipartUploads", "s3:ListBucketMultipartUploads"), None, None),
    "versions": (("ListObjectVersions", "s3:ListBucketVersions"), None, None),
}
_OBJECT_KEYS = {"x-amz-acl": "s3:x-amz-acl", "x-amz-server-side-encryption": "s3:x-amz-server-side-encryption",
                "x-amz-storage-class": "s3:x-amz-storage-class", "x-amz-copy-source": "s3:x-amz-copy-source",
                "x-amz-metadata-directive": "s3:x-amz-metadata-directive", "if-none-match": "s3:if-none-match",
                "if-match": "s3:if-match", "x-amz-content-sha256": "s3:x-amz-content-sha256"}


def bucket_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def object_arn(partition: str, bucket: str, key: str) -> str:
    return f"arn:{partition}:s3:::{bucket}/{key}"


def _common_keys(request: HttpRequest) -> dict[str, tuple[str, ...]]:
    presigned = "X-Amz-Credential" in request.params()
    keys: dict[str, tuple[str, ...]] = {"s3:authtype": ("REST-QUERY-STRING" if presigned else "REST-HEADER",),
            "s3:signatureversion": ("AWS4-HMAC-SHA256",)}
    for header, key in _OBJECT_KEYS.items():
        value = request.header(header)
        if value is not None:
            keys[key.lower()] = (value,)
    return keys


def _call(operation: str, *authorizations: Authorization) -> Call:
    return Call("s3", operation, tuple(authorizations), "rest-xml")


def _copy_source(header: str, partition: str) -> tuple[str, str] | None:
    """`x-amz-copy-source: bucket/key?versionId=v` (URL-encoded, optional leading `/`) -> (action, source ARN)."""
    source, _, query = header.partition("?")
    bucket, slash, key = urllib.parse.unquote(source).lstrip("/").partition("/")
    if not bucket or not slash or not key or bucket.startswith("arn:"):
        return None
    version = dict(urllib.parse.parse_qsl(query)).get("versionId")
    return ("s3:GetObjectVersion" if version else "s3:GetObject"), object_arn(partition, bucket, key)


def _deleted_keys(body: bytes) -> list[tuple[str, bool]]:
    """(key, has a version id) for every `<Object>` of a DeleteObjects body."""
    root = ET.fromstring(body)
    out = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Object":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in element}
        if "Key" in fields:
            out.append((fields["Key"], bool(fields.get("VersionId"))))
    return out


def _object_call(request: HttpRequest, partition: str, bucket: str, key: str, sub: set[str],
                 params: dict[str, str]) -> Call | Unmapped:
    method = request.method.upper()
    arn = object_arn(partition, bucket, key)
    keys = _common_keys(request)
    versioned = bool(params.get("versionId"))
    if versioned:
        keys["s3:versionid"] = (params["versionId"],)

    def on_object(operation: str, action: str) -> Call:
        return _call(operation, Authorization(action, arn, keys))

    copy = request.header("x-amz-copy-source")
    if method in ("GET", "HEAD") and not sub - {"uploadId"}:
        if "uploadId" in params and method == "GET":
            return on_object("ListParts", "s3:ListMultipartUploadParts")
        operation = "HeadObject" if method == "HEAD" else "GetObject"
        return on_object(operation, "s3:GetObjectVersion" if versioned else "s3:GetObject")
    if method == "GET" and sub in ({"tagging"}, {"acl"}):
        name = "Tagging" if "tagging" in sub else "Acl"
        return on_object(f"GetObject{name}", f"s3:GetObject{'Version' if versioned else ''}{name}")
    if method == "PUT" and sub in ({"tagging"}, {"acl"}):
        name = "Tagging" if "tagging" in sub else "Acl"
        return on_object(f"PutObject{name}", f"s3:PutObject{'Version' if versioned else ''}{name}")
    if method == "PUT" and sub <= {"uploadId"}:
        multipart = "uploadId" in params and "partNumber" in params
        if copy is not None:
            source = _copy_source(copy, partition)
            if source is None:
                return Unmapped("s3", "CopyObject", f"x-amz-copy-source {copy!r} is not bucket/key")
            return _call("UploadPartCopy" if multipart else "CopyObject", Authorization(source[0], source[1], keys),
                         Authorization("s3:PutObject", arn, keys))
        return on_object("UploadPart" if multipart else "PutObject", "s3:PutObject")
    if method == "POST" and sub == {"uploads"}:
        return on_object("CreateMultipartUpload", "s3:PutObject")
    if method == "POST" and sub == {"uploadId"}:
        return on_object("CompleteMultipartUpload", "s3:PutObject")
    if method == "DELETE" and sub == {"uploadId"}:
        return on_object("AbortMultipartUpload", "s3:AbortMultipartUpload")
    if method == "DELETE" and sub == {"tagging"}:
        return on_object("DeleteObjectTagging", f"s3:DeleteObject{'Version' if versioned else ''}Tagging")
    if method == "DELETE" and not sub:
        return on_object("DeleteObject", "s3:DeleteObjectVersion" if versioned else "s3:DeleteObject")
    return Unmapped("s3", None, f"{method} on an object with {sorted(sub) or 'no sub-resource'} is not an S3 "
                                f"operation the IAM mapping knows", "rest-xml")


def _bucket_call(request: HttpRequest, partition: str, bucket: str, sub: set[str],
                 params: dict[str, str]) -> Call | Unmapped:
    method = request.method.upper()
    arn = bucket_arn(partition, bucket)
    keys = _common_keys(request)
    if method in ("GET", "HEAD") and not sub:
        for name in ("prefix", "delimiter", "max-keys"):
            if name in params:
                keys[f"s3:{name}"] = (params[name],)
        operation = "HeadBucket" if method == "HEAD" else "ListObjectsV2" if params.get("list-type") == "2" \
            else "ListObjects"
        return _call(operation, Authorization("s3:ListBucket", arn, keys))
    if method == "POST" and sub == {"delete"}:
        if request.body is None:
            return Unmapped("s3", "DeleteObjects", "the body (the keys to delete) was not read", "rest-xml")
        try:
            deleted = _deleted_keys(request.body)
        except ET.ParseError as exc:
            return Unmapped("s3", "DeleteObjects", f"the body is not a Delete document ({exc})", "rest-xml")
        return _call("DeleteObjects", *(Authorization("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject",
                                                      object_arn(partition, bucket, key), keys)
                                        for key, versioned in deleted))
    if method in ("PUT", "DELETE") and not sub:
        operation = "CreateBucket" if method == "PUT" else "DeleteBucket"
        return _call(operation, Authorization(f"s3:{operation}", arn, keys))
    if len(sub) == 1 and (entry := _BUCKET_CONFIG.get(next(iter(sub)))):
        chosen = {"GET": entry[0], "PUT": entry[1], "DELETE": entry[2]}.get(method)
        if chosen is not None:
            return _call(chosen[0], Authorization(chosen[1], arn, keys))
    return Unmapped("s3", None, f"{method} on a bucket with {sorted(sub) or 'no sub-resource'} is not an S3 "
                                f"operation the IAM mapping knows", "rest-xml")


def needs_body(request: HttpRequest) -> bool:
    """Only DeleteObjects names its resources in the body; every other S3 body streams past unread."""
    return request.method.upper() == "POST" and "delete" in request.params()


def s3_call(request: HttpRequest, partition: str = "aws") -> Call | Unmapped:
    if not request.path.startswith("/"):
        return Unmapped("s3", None, f"path {request.path!r} does not start with /", "rest-xml")
    bucket_part, _, key_part = request.path[1:].partition("/")
    params = request.params()
    sub = {name for name in params if name not in _NOT_SUBRESOURCES and not name.startswith("X-Amz-")}
    if not bucket_part:
        if request.method.upper() == "GET" and not sub:
            return _call("ListBuckets", Authorization("s3:ListAllMyBuckets", "*", _common_keys(request)))
        return Unmapped("s3", None, f"{request.method} / is not an S3 operation the IAM mapping knows", "rest-xml")
    bucket = urllib.parse.unquote(bucket_part)
    if key_part:
        return _object_call(request, partition, bucket, urllib.parse.unquote(key_part), sub, params)
    return _bucket_call(request, partition, bucket, sub, params)
