"""Documents and callers read from the emulator (`harness.emulator.iam.sources`), against moto in-process: a role's
inline and attached managed policies, its trust policy, a bucket's policy, who a temporary access key belongs to, and
`MotoPolicies` authorizing requests signed with a role session's own credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components import policies
from harness.emulator.iam import Principal, authorize_request, parse_policy
from harness.emulator.iam.sources import (
    MotoPolicies,
    bucket_policy,
    principal_for_access_key,
    role_policies,
    trust_policy,
)
from tests.unit.test_iam_operations import boto3_request

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "de-c1w4-dev-123456789012-us-east-1-ml-artifacts"
ROLE = "de-c1w4-dev-model-inference"


def client(service: str, key: str = "testing") -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id=key, aws_secret_access_key="testing")


@pytest.fixture
def stack() -> Iterator[dict[str, Any]]:
    with mock_aws():
        iam, s3 = client("iam"), client("s3")
        role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(
            policies.assume_role_policy("lambda.amazonaws.com")))["Role"]["Arn"]
        iam.put_role_policy(RoleName=ROLE, PolicyName="serving", PolicyDocument=json.dumps(policies.document(
            *policies.s3_read_prefix(f"arn:aws:s3:::{BUCKET}", "serving/", "ReadServingBundle"))))
        managed = iam.create_policy(PolicyName="list-artifacts", PolicyDocument=json.dumps(policies.document(
            policies.allow(["s3:ListBucket"], [f"arn:aws:s3:::{BUCKET}"], "ListArtifacts"))))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=ROLE, PolicyArn=managed)
        s3.create_bucket(Bucket=BUCKET)
        s3.create_bucket(Bucket="no-policy")
        s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policies.document({
            "Sid": "NoDeletes", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*"})))
        credentials = client("sts").assume_role(RoleArn=role, RoleSessionName="inference")["Credentials"]
        yield {"iam": iam, "s3": s3, "role": role, "managed": managed, "key": credentials["AccessKeyId"]}


def test_a_roles_inline_and_attached_policies_are_read_in_that_order(stack: dict[str, Any]) -> None:
    found = role_policies(stack["iam"], stack["role"])
    assert [p.name for p in found] == [f"role/{ROLE}/inline/serving", f"role/{ROLE}/attached/{stack['managed']}"]
    assert [s.sid for p in found for s in p.statements] == ["ReadServingBundleObjects", "ReadServingBundleList",
                                                            "ListArtifacts"]
    assert found[0].kind == "identity"
    trust = trust_policy(stack["iam"], ROLE)
    assert trust.kind == "resource" and trust.statements[0].principals is not None
    assert trust.statements[0].principals.services == frozenset({"lambda.amazonaws.com"})


def test_a_buckets_policy_or_none(stack: dict[str, Any]) -> None:
    policy = bucket_policy(stack["s3"], BUCKET)
    assert policy is not None and policy.name == f"bucket/{BUCKET}"
    assert [s.sid for s in policy.statements] == ["NoDeletes"]
    assert bucket_policy(stack["s3"], "no-policy") is None


def test_a_temporary_key_is_its_role_session_and_the_admin_key_is_nobodys(stack: dict[str, Any]) -> None:
    principal = principal_for_access_key(stack["key"], lambda key: client("sts", key), stack["iam"])
    assert principal == Principal.role_session(stack["role"], "inference")
    assert principal is not None and principal.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/inference"
    assert principal_for_access_key("testing", lambda key: client("sts", key), stack["iam"]) is None


def test_requests_signed_by_the_session_are_authorized_from_moto(stack: dict[str, Any]) -> None:
    now = [0.0]
    source = MotoPolicies(stack["iam"], stack["s3"], ttl_s=2.0, clock=lambda: now[0])
    principal = principal_for_access_key(stack["key"], lambda key: client("sts", key), stack["iam"])
    assert principal is not None

    def deciding(operation: str, **params: Any) -> str | None:
        request = boto3_request("s3", operation, key=stack["key"], Bucket=BUCKET, **params)
        decision = authorize_request(request, principal, source, region=REGION).decisions[-1]
        return decision.decided_by.describe() if decision.decided_by else None

    def allowed(operation: str, **params: Any) -> bool:
        request = boto3_request("s3", operation, key=stack["key"], Bucket=BUCKET, **params)
        return authorize_request(request, principal, source, region=REGION).allowed

    assert allowed("get_object", Key="serving/model.safetensors")
    # Listing: the inline statement for its prefix, the attached managed policy for any.
    assert deciding("list_objects_v2", Prefix="serving/") == f"role/{ROLE}/inline/serving statement 1 " \
                                                             "(ReadServingBundleList)"
    assert deciding("list_objects_v2", Prefix="embeddings/") == f"role/{ROLE}/attached/{stack['managed']} " \
                                                                "statement 0 (ListArtifacts)"
    assert not allowed("get_object", Key="embeddings/item_embeddings.csv")
    assert not allowed("delete_object", Key="serving/model.safetensors")  # the bucket policy's explicit deny
    # A Deny added to the running stack is in force once the cache's time is up (or at once after forget()).
    stack["iam"].put_role_policy(RoleName=ROLE, PolicyName="stop", PolicyDocument=json.dumps(policies.document({
        "Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"})))
    assert allowed("get_object", Key="serving/model.safetensors")
    now[0] = 2.5
    assert not allowed("get_object", Key="serving/model.safetensors")
    stack["iam"].delete_role_policy(RoleName=ROLE, PolicyName="stop")
    source.forget()
    assert allowed("get_object", Key="serving/model.safetensors")


def test_resource_policies_moto_does_not_hold_are_added(stack: dict[str, Any]) -> None:
    # The engine keeps the TLS-only statement out of moto; the full policy comes from the stack's state.
    tls = parse_policy(policies.tls_only_bucket_policy(f"arn:aws:s3:::{BUCKET}"), f"bucket/{BUCKET}/state",
                       "resource")
    source = MotoPolicies(stack["iam"], stack["s3"], extra={f"arn:aws:s3:::{BUCKET}": [tls]})
    principal = Principal.role_session(stack["role"], "inference")
    request = boto3_request("s3", "get_object", key=stack["key"], Bucket=BUCKET, Key="serving/model.safetensors")
    assert authorize_request(request, principal, source, region=REGION, secure_transport=True).allowed
    refused = authorize_request(request, principal, source, region=REGION, secure_transport=False)
    assert not refused.allowed and refused.denial is not None and refused.denial.decided_by is not None
    assert refused.denial.decided_by.describe() == f"bucket/{BUCKET}/state statement 0 (DenyInsecureTransport)"
