"""Physical names: valid for each AWS service, derived from prefix and stack, and never shared by two stacks."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from components.naming import MAX_LENGTH, bucket_name, physical_name, stack_slug

# Pulumi stack names: letters, digits, hyphens, underscores and periods, up to 100 characters.
stack_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1,
                      max_size=100)
prefixes = st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,18}[a-z0-9]", fullmatch=True)
purposes = st.sampled_from(["etl-job", "kinesis-data-stream", "delivery-stream", "vector-db", "source-db",
                            "transformation-lambda", "model-inference", "embeddings-loader", "source-seeder"])

RDS_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,61}[a-z0-9]$")
S3_BUCKET = re.compile(r"^[a-z0-9](?!.*\.\.)[a-z0-9.-]{1,61}[a-z0-9]$")
LAMBDA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IAM_ROLE = re.compile(r"^[\w+=,.@-]{1,64}$")
FIREHOSE = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")


def test_the_lab_names_keep_their_shape_with_the_stack_inserted() -> None:
    assert physical_name("de-c1w4", "dev", "etl-job", "glue") == "de-c1w4-dev-etl-job"
    assert physical_name("de-c1w4", "dev", "vector-db", "rds") == "de-c1w4-dev-vector-db"
    assert bucket_name("de-c1w4", "dev", "123456789012", "us-east-1", "datalake") == \
        "de-c1w4-dev-123456789012-us-east-1-datalake"
    assert physical_name("de-c1w4", "dev", "catalog", "glue-database") == "de_c1w4_dev_catalog"


def test_a_stack_name_that_needs_rewriting_gets_a_hash_so_it_cannot_collide() -> None:
    assert stack_slug("dev-alice") == "dev-alice"
    assert stack_slug("Dev-Alice") != stack_slug("dev-alice")
    assert stack_slug("dev_alice") != stack_slug("dev-alice")
    assert stack_slug("dev_alice").startswith("dev-alice-")


@settings(max_examples=100, deadline=None)
@given(prefix=prefixes, stack=stack_names, purpose=purposes)
def test_every_name_is_valid_for_its_service(prefix: str, stack: str, purpose: str) -> None:
    rds = physical_name(prefix, stack, purpose, "rds")
    assert RDS_IDENTIFIER.match(rds), rds
    assert LAMBDA_NAME.match(physical_name(prefix, stack, purpose, "lambda"))
    assert IAM_ROLE.match(physical_name(prefix, stack, purpose, "iam-role"))
    assert FIREHOSE.match(physical_name(prefix, stack, purpose, "firehose"))
    for kind, limit in MAX_LENGTH.items():
        assert len(physical_name(prefix, stack, purpose, kind)) <= limit
    bucket = bucket_name(prefix, stack, "123456789012", "ap-southeast-2", "recommendations")
    assert S3_BUCKET.match(bucket) and 3 <= len(bucket) <= 63, bucket


@settings(max_examples=100, deadline=None)
@given(prefix=prefixes, stacks=st.lists(stack_names, min_size=2, max_size=2, unique=True), purpose=purposes)
def test_two_stacks_never_share_a_physical_name(prefix: str, stacks: list[str], purpose: str) -> None:
    first, second = stacks
    for kind in MAX_LENGTH:
        assert physical_name(prefix, first, purpose, kind) != physical_name(prefix, second, purpose, kind)
    assert bucket_name(prefix, first, "123456789012", "us-east-1", "ml-artifacts") != \
        bucket_name(prefix, second, "123456789012", "us-east-1", "ml-artifacts")


def test_created_subnets_are_disjoint_slices_of_the_vpc() -> None:
    import ipaddress

    from components.network import subnet_cidrs

    assert subnet_cidrs("10.42.0.0/16", 4) == ["10.42.0.0/20", "10.42.16.0/20", "10.42.32.0/20", "10.42.48.0/20"]
    small = [ipaddress.ip_network(c) for c in subnet_cidrs("192.168.7.0/24", 4)]
    assert all(net.prefixlen == 28 and net.subnet_of(ipaddress.ip_network("192.168.7.0/24")) for net in small)
    assert not any(a.overlaps(b) for i, a in enumerate(small) for b in small[i + 1:])
