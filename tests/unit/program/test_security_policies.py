"""Policy tests over the whole program under mocks: for many stack names and config variants, the stack is secure.

Each assertion names the URN of the resource that breaks the rule.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from components import policies
from harness.emulator.program import ProgramRun, RecordedResource, is_secret_value, reveal
from tests.unit.program.conftest import OPTIONAL_FEATURES, config_of, program_run

LAB_VARIANT = {
    "vpcId": "vpc-0123456789abcdef0",
    "subnetIds": "subnet-0123456789abcdef0,subnet-0fedcba987654321f",
    "sourceDbHost": "de-c1w4-rds.abcdefghijkl.us-east-1.rds.amazonaws.com",
    "sourceDbPassword": "lab-password",
    "artifactsBucket": "de-c1w4-123456789012-us-east-1-ml-artifacts",
    "kinesisStreamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/de-c1w4-kinesis-data-stream",
}

stack_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}", fullmatch=True)
variants = st.fixed_dictionaries({}, optional={
    "lab": st.just(LAB_VARIANT),
    "vectorDbAllowedCidrs": st.sampled_from(["203.0.113.0/24", "0.0.0.0/0,198.51.100.7/32"]),
    "plaintextPasswordEnv": st.sampled_from(["true", "false"]),
    "ephemeral": st.sampled_from(["true", "false"]),
    "producerSchedule": st.just("rate(1 minute)"),
    "glueSchedule": st.just("cron(0 3 * * ? *)"),
    "lambdaArchitecture": st.just("arm64"),
    "inferenceAuth": st.sampled_from(["AWS_IAM", "NONE"]),
    "processorBufferSizeMb": st.sampled_from(["0.2", "0.5", "0.8"]),  # with topK 5, at most 0.83 (test_config.py)
    "processorRetries": st.integers(min_value=0, max_value=300).map(str),
    "firehoseBufferIntervalSeconds": st.integers(min_value=0, max_value=900).map(str),
}).map(lambda chosen: {**chosen.pop("lab", {}), **chosen})

FUNCTION = "aws:lambda/function:Function"
# Each example runs the whole program (about a second): few examples, and no shrinking (it would take minutes).
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def program(stack: str, settings_: dict[str, str]) -> ProgramRun:
    return program_run(stack, settings_)


def inputs(resource: RecordedResource) -> dict[str, Any]:
    return resource.plain_inputs


def resource_with(run: ProgramRun, type_token: str, key: str, value: Any) -> list[RecordedResource]:
    return [r for r in run.of_type(type_token) if inputs(r).get(key) == value]


# ---- storage ---------------------------------------------------------------------------------------------------------

def check_buckets_are_private_encrypted_and_tls_only(stack: str, chosen: dict[str, str]
                                                                                ) -> None:
    run = program(stack, chosen)
    buckets = run.of_type("aws:s3/bucket:Bucket")
    assert len(buckets) == (3 if "artifactsBucket" in chosen else 4)
    for bucket in buckets:
        name = bucket.outputs["bucket"]
        blocks = resource_with(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "bucket", name)
        assert len(blocks) == 1, bucket.urn
        assert all(inputs(blocks[0])[flag] is True for flag in (
            "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")), bucket.urn
        encryption = resource_with(run, "aws:s3/bucketServerSideEncryptionConfiguration:"
                                        "BucketServerSideEncryptionConfiguration", "bucket", name)
        assert len(encryption) == 1, bucket.urn
        algorithm = inputs(encryption[0])["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        assert algorithm in ("AES256", "aws:kms"), bucket.urn
        (policy,) = resource_with(run, "aws:s3/bucketPolicy:BucketPolicy", "bucket", name)
        document = json.loads(inputs(policy)["policy"])
        assert document == policies.tls_only_bucket_policy(bucket.outputs["arn"]), bucket.urn
        ownership = resource_with(run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "bucket", name)
        assert inputs(ownership[0])["rule"]["objectOwnership"] == "BucketOwnerEnforced", bucket.urn


@pytest.mark.parametrize("ephemeral", [True, False])
def test_only_ephemeral_stacks_force_destroy_buckets_and_skip_database_snapshots(ephemeral: bool) -> None:
    run = program("dev", {} if ephemeral else OPTIONAL_FEATURES)
    assert ("ephemeral" in OPTIONAL_FEATURES) and OPTIONAL_FEATURES["ephemeral"] == "false"
    for bucket in run.of_type("aws:s3/bucket:Bucket"):
        assert inputs(bucket)["forceDestroy"] is ephemeral, bucket.urn
    for database in run.of_type("aws:rds/instance:Instance"):
        assert inputs(database)["skipFinalSnapshot"] is ephemeral, database.urn
        assert inputs(database)["deletionProtection"] is (not ephemeral), database.urn
        assert ("finalSnapshotIdentifier" in inputs(database)) is (not ephemeral), database.urn


# ---- IAM -------------------------------------------------------------------------------------------------------------

def check_iam_has_no_wildcards(
        stack: str, chosen: dict[str, str]) -> None:
    run = program(stack, chosen)
    role_policies = run.of_type("aws:iam/rolePolicy:RolePolicy")
    assert role_policies
    for role_policy in role_policies:
        document = json.loads(inputs(role_policy)["policy"])
        assert policies.wildcard_violations(document) == [], role_policy.urn
    for role in run.of_type("aws:iam/role:Role"):
        trust = json.loads(inputs(role)["assumeRolePolicy"])
        for statement in trust["Statement"]:
            assert statement["Principal"] != "*" and "Service" in statement["Principal"], role.urn
    assert not run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"), "managed policies are too broad"


def test_the_s3_import_role_is_associated_and_can_read_the_embeddings() -> None:
    run = program("dev", {})
    (association,) = run.of_type("aws:rds/roleAssociation:RoleAssociation")
    assert inputs(association)["featureName"] == "s3Import"
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.outputs["arn"] == inputs(association)["roleArn"]]
    (role_policy,) = resource_with(run, "aws:iam/rolePolicy:RolePolicy", "role", role.outputs["id"])
    artifacts = run.outputs["artifacts_bucket_id"].value
    document = json.loads(inputs(role_policy)["policy"])
    assert document == policies.rds_s3_import_policy(f"arn:aws:s3:::{artifacts}", "embeddings/"), role_policy.urn


# ---- databases -------------------------------------------------------------------------------------------------------

def check_databases_are_encrypted_and_private(stack: str, chosen: dict[str, str]
                                                                                ) -> None:
    run = program(stack, chosen)
    opened = [c.strip() for c in chosen.get("vectorDbAllowedCidrs", "").split(",") if c.strip()]
    instances = run.of_type("aws:rds/instance:Instance")
    assert len(instances) == (1 if "sourceDbHost" in chosen else 2)
    for instance in instances:
        assert inputs(instance)["storageEncrypted"] is True, instance.urn
        expected_public = bool(opened) and inputs(instance)["engine"] == "postgres"
        assert inputs(instance)["publiclyAccessible"] is expected_public, instance.urn
    for group in run.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in inputs(group).get("ingress", []):
            cidrs = rule.get("cidrBlocks", [])
            if group.name == "vector-db-sg":
                assert rule["fromPort"] == rule["toPort"] == 5432, group.urn
                assert set(cidrs) <= set(opened), group.urn
            else:
                assert "0.0.0.0/0" not in cidrs, group.urn
    (vector_sg,) = [g for g in run.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "vector-db-sg"]
    lambda_sg = run.named("network-lambda-sg", "aws:ec2/securityGroup:SecurityGroup").outputs["id"]
    assert any(lambda_sg in rule.get("securityGroups", []) for rule in inputs(vector_sg)["ingress"]), vector_sg.urn


def check_passwords_are_secret(
        stack: str, chosen: dict[str, str]) -> None:
    run = program(stack, chosen)
    assert run.outputs["vector_db_master_password"].secret
    assert run.outputs["source_db_password"].secret
    for instance in run.of_type("aws:rds/instance:Instance"):
        assert is_secret_value(instance.inputs["password"]), instance.urn
    for version in run.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert is_secret_value(version.inputs["secretString"]), version.urn
        secret = json.loads(reveal(version.inputs["secretString"]))
        assert set(secret) == {"engine", "host", "port", "dbname", "username", "password"}, version.urn
    for function in run.of_type("aws:lambda/function:Function"):
        variables = function.inputs.get("environment", {}).get("variables", {})
        if "VECTOR_DB_PASSWORD" in reveal(variables):
            assert is_secret_value(variables) or is_secret_value(variables["VECTOR_DB_PASSWORD"]), function.urn
    glue = run.of_type("aws:glue/connection:Connection")[0]
    properties = inputs(glue)["connectionProperties"]
    assert "PASSWORD" not in properties and "SECRET_ID" in properties, glue.urn


# ---- streaming -------------------------------------------------------------------------------------------------------

def check_firehose_processor_is_explicit(
        stack: str, chosen: dict[str, str]) -> None:
    from components.config import parse_config

    run = program(stack, chosen)
    firehose = parse_config(config_of(chosen), stack).streaming.firehose
    (delivery,) = run.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    s3 = inputs(delivery)["extendedS3Configuration"]
    (processor,) = s3["processingConfiguration"]["processors"]
    parameters = {p["parameterName"]: p["parameterValue"] for p in processor["parameters"]}
    transformation = run.named("streaming-transformation-lambda", FUNCTION)
    assert processor["type"] == "Lambda", delivery.urn
    assert parameters == {
        "LambdaArn": f"{transformation.outputs['arn']}:$LATEST",
        "BufferSizeInMBs": f"{firehose.processor_buffer_size_mb:g}",
        "BufferIntervalInSeconds": str(firehose.processor_buffer_interval_seconds),
        "NumberOfRetries": str(firehose.processor_retries),
    }, delivery.urn
    assert s3["processingConfiguration"]["enabled"] is True, delivery.urn
    assert (s3["bufferingSize"], s3["bufferingInterval"]) == (firehose.buffer_size_mb,
                                                              firehose.buffer_interval_seconds), delivery.urn
    assert s3["prefix"] == firehose.prefix and s3["errorOutputPrefix"] == firehose.error_prefix, delivery.urn
    assert s3["cloudwatchLoggingOptions"]["enabled"] is True, delivery.urn
    assert inputs(delivery)["kinesisSourceConfiguration"]["kinesisStreamArn"] == run.outputs["kinesis_stream_arn"].value
    assert s3["bucketArn"] == f"arn:aws:s3:::{run.outputs['recommendations_bucket_id'].value}", delivery.urn


def check_lambdas_carry_database_wiring(stack: str, chosen: dict[str, str]) -> None:
    run = program(stack, chosen)
    (vector_db,) = [i for i in run.of_type("aws:rds/instance:Instance") if inputs(i)["engine"] == "postgres"]
    expected = {
        "VECTOR_DB_HOST": vector_db.outputs["address"],
        "VECTOR_DB_PORT": str(int(vector_db.outputs["port"])),
        "VECTOR_DB_NAME": "postgres",
        "VECTOR_DB_USER": "postgres",
        "VECTOR_DB_SECRET_ARN": run.outputs["vector_db_secret_arn"].value,
    }
    plaintext = chosen.get("plaintextPasswordEnv") == "true"
    for name in ("streaming-model-inference", "streaming-transformation-lambda", "streaming-embeddings-loader"):
        function = run.named(name, FUNCTION)
        variables = inputs(function)["environment"]["variables"]
        assert {key: variables.get(key) for key in expected} == expected, function.urn
        assert ("VECTOR_DB_PASSWORD" in variables) is plaintext, function.urn
        if plaintext:
            assert variables["VECTOR_DB_PASSWORD"] == run.outputs["vector_db_master_password"].value, function.urn
        assert variables["ARTIFACTS_BUCKET"] == run.outputs["artifacts_bucket_id"].value, function.urn
        assert inputs(function)["vpcConfig"]["subnetIds"], function.urn


def check_redrive_role_reaches_only_its_inputs(
        stack: str, chosen: dict[str, str]) -> None:
    """The redrive's role: read the error and delivered output, write its markers, delete its lease, PutRecords on the
    stream; no database, no secret, no VPC, nothing else in any bucket."""
    run = program(stack, chosen)
    redrive = run.named("streaming-redrive", FUNCTION)
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.outputs["arn"] == inputs(redrive)["role"]]
    (role_policy,) = resource_with(run, "aws:iam/rolePolicy:RolePolicy", "role", role.outputs["id"])
    statements = json.loads(inputs(role_policy)["policy"])["Statement"]
    bucket = f"arn:aws:s3:::{run.outputs['recommendations_bucket_id'].value}"
    marker_prefix = inputs(redrive)["environment"]["variables"]["REDRIVEN_PREFIX"]
    granted: dict[str, set[str]] = {}
    for statement in statements:
        for action in statement["Action"]:
            granted.setdefault(action, set()).update(statement["Resource"])
    assert set(granted) == {"logs:CreateLogStream", "logs:PutLogEvents", "s3:ListBucket", "s3:GetObject",
                            "s3:PutObject", "s3:DeleteObject", "kinesis:PutRecords"}, role_policy.urn
    assert granted["kinesis:PutRecords"] == {run.outputs["kinesis_stream_arn"].value}, role_policy.urn
    assert granted["s3:ListBucket"] == {bucket}, role_policy.urn
    assert all(r.startswith(f"{bucket}/") for r in granted["s3:GetObject"]), role_policy.urn
    assert f"{bucket}/*" not in granted["s3:GetObject"], "reads are limited to the output prefixes"
    assert granted["s3:PutObject"] == {f"{bucket}/{marker_prefix}*"}, role_policy.urn
    assert granted["s3:DeleteObject"] == {f"{bucket}/{marker_prefix}.lease"}, role_policy.urn
    assert policies.wildcard_violations({"Statement": statements}) == [], role_policy.urn


# ---- structure -------------------------------------------------------------------------------------------------------

def check_children_have_component_parents(stack: str, chosen: dict[str, str]) -> None:
    run = program(stack, chosen)
    by_urn = {r.urn: r for r in run.resources}
    for resource in run.resources:
        if resource.is_component:
            assert resource.type.startswith("recsys:"), resource.urn
            continue
        assert resource.parent in by_urn, f"{resource.urn} is not parented to a component"
        parent = by_urn[resource.parent]
        assert parent.type.startswith("recsys:"), resource.urn
        assert f"{parent.type}${resource.type}::" in resource.urn, resource.urn


@settings(max_examples=2, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow])
@given(stacks=st.lists(stack_names, min_size=2, max_size=2, unique_by=str.lower))
def test_two_stacks_never_share_a_physical_name(stacks: list[str]) -> None:
    def physical_names(run: ProgramRun) -> set[str]:
        names = set()
        for resource in run.resources:
            plain = inputs(resource)
            for key in ("bucket", "name", "identifier", "layerName"):
                value = plain.get(key)
                if resource.custom and isinstance(value, str) and key in plain and resource.type not in (
                        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                        "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "aws:s3/bucketPolicy:BucketPolicy",
                        "aws:s3/bucketObjectv2:BucketObjectv2", "aws:cloudwatch/logStream:LogStream"):
                    names.add(value)
        return names

    first, second = (physical_names(program(stack, {})) for stack in stacks)
    assert len(first) > 20
    assert first.isdisjoint(second), first & second

# ---- the same policies, per behaviour on fixed variants, and as one property over stacks and variants ---------------

FIXED_VARIANTS = {
    "created": {},
    "lab-attached": {**LAB_VARIANT, "vectorDbAllowedCidrs": "0.0.0.0/0", "plaintextPasswordEnv": "true"},
    "everything-optional": OPTIONAL_FEATURES,
}
POLICIES = {
    "buckets_are_private_encrypted_and_tls_only": check_buckets_are_private_encrypted_and_tls_only,
    "iam_has_no_wildcards": check_iam_has_no_wildcards,
    "databases_are_encrypted_and_private": check_databases_are_encrypted_and_private,
    "passwords_are_secret": check_passwords_are_secret,
    "firehose_processor_is_explicit": check_firehose_processor_is_explicit,
    "lambdas_carry_database_wiring": check_lambdas_carry_database_wiring,
    "redrive_role_reaches_only_its_inputs": check_redrive_role_reaches_only_its_inputs,
    "children_have_component_parents": check_children_have_component_parents,
}


@pytest.mark.parametrize("variant", FIXED_VARIANTS)
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_holds_for_each_config_variant(policy: str, variant: str) -> None:
    POLICIES[policy]("dev", FIXED_VARIANTS[variant])


@settings(max_examples=4, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow])
@given(stack=stack_names, chosen=variants)
def test_every_policy_holds_for_any_stack_name_and_config_variant(stack: str, chosen: dict[str, str]) -> None:
    for check in POLICIES.values():
        check(stack, chosen)
