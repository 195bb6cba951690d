"""IAM's evaluation logic (`harness.emulator.iam.evaluation`), on examples from the IAM User Guide: explicit deny over
allow, NotAction, NotResource, wildcards, condition operators (IfExists on a missing key, set operators, Null,
dates, addresses, ARNs), policy variables, resource policies and trust policies; properties checked with hypothesis.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components import policies
from harness.emulator.iam import Principal, Request, evaluate, global_keys, parse_policy
from harness.emulator.iam.context import lowered
from harness.emulator.iam.documents import Policy, PolicyError

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
CALLER = Principal.role_session(ROLE, "run-1")
BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def identity(*statements: dict[str, Any], version: str = "2012-10-17") -> Policy:
    return parse_policy({"Version": version, "Statement": list(statements)}, "role/app/inline/test", "identity")


def resource(*statements: dict[str, Any], name: str = "bucket/amzn-s3-demo-bucket") -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, name, "resource")


def ask(action: str, arn: str, principal: Principal = CALLER, secure: bool = True, **keys: Any) -> Request:
    context = global_keys(principal, region="us-east-1", secure_transport=secure, now=NOW)
    context.update(lowered({name.replace("__", ":"): value for name, value in keys.items()}))
    return Request(action, arn, principal, context)


def outcome(request: Request, *identity_policies: Policy, resource_policies: tuple[Policy, ...] = ()) -> str:
    return evaluate(request, identity_policies, resource_policies).outcome


ALLOW_S3 = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}


# ---- the decision ---------------------------------------------------------------------------------------------------

def test_no_policy_is_an_implicit_deny_and_its_reason_is_awss() -> None:
    decision = evaluate(ask("s3:GetObject", f"{BUCKET}/a"))
    assert decision.outcome == "implicit_deny" and decision.decided_by is None
    assert decision.reason == "because no identity-based policy allows the s3:GetObject action"


def test_an_explicit_deny_overrides_an_allow_and_names_its_statement() -> None:
    policy = identity(ALLOW_S3, {"Sid": "NoDeletes", "Effect": "Deny", "Action": "s3:DeleteObject",
                                 "Resource": f"{BUCKET}/*"})
    deleted = evaluate(ask("s3:DeleteObject", f"{BUCKET}/a"), [policy])
    assert deleted.outcome == "explicit_deny"
    assert deleted.decided_by is not None and deleted.decided_by.statement.sid == "NoDeletes"
    assert deleted.reason == "with an explicit deny in an identity-based policy"
    assert deleted.explain().endswith("(role/app/inline/test statement 1 (NoDeletes))")
    read = evaluate(ask("s3:GetObject", f"{BUCKET}/a"), [policy])
    assert read.outcome == "allowed" and read.decided_by is not None and read.decided_by.statement.index == 0


def test_a_deny_in_one_policy_overrides_an_allow_in_another() -> None:
    deny = parse_policy({"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}}, "other", "identity")
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), identity(ALLOW_S3), deny) == "explicit_deny"


def test_not_action_with_allow_allows_everything_but_the_listed_actions() -> None:
    # IAM User Guide, NotAction: "allow access to all actions except IAM".
    policy = identity({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), policy) == "allowed"
    assert outcome(ask("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x"), policy) == "implicit_deny"


def test_not_action_with_deny_and_bool_if_exists_denies_without_mfa() -> None:
    # IAM User Guide: deny every action but IAM's unless signed in with MFA (BoolIfExists: a missing key is a match).
    policy = identity({"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
                       "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}})
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), policy) == "explicit_deny"
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a", aws__MultiFactorAuthPresent="true"), policy) == "allowed"
    assert outcome(ask("iam:ListUsers", "*"), policy) == "allowed"


def test_not_resource_denies_everything_outside_the_listed_resources() -> None:
    # IAM User Guide, NotResource: deny every S3 resource except the HR payroll folder.
    policy = identity(ALLOW_S3, {"Effect": "Deny", "Action": "s3:*",
                                 "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]})
    assert outcome(ask("s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/june.csv"), policy) == "allowed"
    assert outcome(ask("s3:GetObject", "arn:aws:s3:::HRBucket/Other/june.csv"), policy) == "explicit_deny"


@pytest.mark.parametrize(("pattern", "arn", "expected"), [
    (f"{BUCKET}/*", f"{BUCKET}/a/b/c.txt", "allowed"),
    (f"{BUCKET}/file-?.txt", f"{BUCKET}/file-1.txt", "allowed"),
    (f"{BUCKET}/file-?.txt", f"{BUCKET}/file-12.txt", "implicit_deny"),
    (f"{BUCKET}/serving/*", f"{BUCKET}/embeddings/x", "implicit_deny"),
    # Resources are case-sensitive.
    (f"{BUCKET}/Serving/*", f"{BUCKET}/serving/x", "implicit_deny"),
    # Wildcards stay within a `:` segment, but a `*` ending a segment "can expand to match beyond the colon
    # boundaries" (IAM User Guide, "Using wildcards in resource ARNs").
    ("arn:aws:kinesis:us-*-1:*:stream/s", f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s", "allowed"),
    ("arn:aws:kinesis:us-*1:stream/s", f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s", "implicit_deny"),
    ("arn:aws:kinesis:*:stream/s", f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s", "allowed"),
    ("arn:aws:kinesis:us-east-?:*:stream/s", f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s", "allowed"),
    (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws-glue/*",
     f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws-glue/jobs/output:log-stream:jr_1", "allowed"),
    (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws-glue/*/output",
     f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws-glue/x:y/output", "implicit_deny"),
    # The guide's own example: `*/test/*` spans slashes.
    (f"{BUCKET}/*/test/*", f"{BUCKET}/1/2/test/3/object.jpg", "allowed"),
    (f"{BUCKET}/*/test/*", f"{BUCKET}//test/object.jpg", "allowed"),
    (f"{BUCKET}/*/test/*", f"{BUCKET}/1-test/object.jpg", "implicit_deny"),
])
def test_resource_wildcards(pattern: str, arn: str, expected: str) -> None:
    policy = identity({"Effect": "Allow", "Action": "*", "Resource": pattern})
    assert outcome(ask("s3:GetObject", arn), policy) == expected


def test_actions_match_case_insensitively() -> None:
    policy = identity({"Effect": "Allow", "Action": "S3:getobject", "Resource": "*"})
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), policy) == "allowed"
    assert outcome(ask("s3:GetObjectVersion", f"{BUCKET}/a"), policy) == "implicit_deny"
    assert outcome(ask("s3:GetObjectVersion", f"{BUCKET}/a"),
                   identity({"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"})) == "allowed"


# ---- conditions -----------------------------------------------------------------------------------------------------

def test_string_like_if_exists_holds_when_the_key_is_missing() -> None:
    # IAM User Guide, ...IfExists: the instance type is checked only when the request has one.
    policy = identity({"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
                       "Condition": {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}})
    assert outcome(ask("ec2:RunInstances", "*"), policy) == "allowed"
    assert outcome(ask("ec2:RunInstances", "*", ec2__InstanceType="t2.micro"), policy) == "allowed"
    assert outcome(ask("ec2:RunInstances", "*", ec2__InstanceType="m5.large"), policy) == "implicit_deny"
    without = identity({"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*",
                        "Condition": {"StringLike": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}})
    assert outcome(ask("ec2:RunInstances", "*"), without) == "implicit_deny"


@pytest.mark.parametrize(("secure", "expected"), [(False, "explicit_deny"), (True, "allowed")])
def test_the_programs_tls_only_bucket_policy_denies_plain_http(secure: bool, expected: str) -> None:
    bucket_policy = parse_policy(policies.tls_only_bucket_policy(BUCKET), "bucket/amzn-s3-demo-bucket", "resource")
    request = ask("s3:GetObject", f"{BUCKET}/a", secure=secure)
    decision = evaluate(request, [identity(ALLOW_S3)], [bucket_policy])
    assert decision.outcome == expected
    if not secure:
        assert decision.decided_by is not None and decision.decided_by.statement.sid == "DenyInsecureTransport"
        assert decision.reason == "with an explicit deny in a resource-based policy"
    # The bucket itself (ListBucket) is covered too.
    assert outcome(ask("s3:ListBucket", BUCKET, secure=secure), identity(ALLOW_S3),
                   resource_policies=(bucket_policy,)) == expected


@pytest.mark.parametrize(("condition", "keys", "holds"), [
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "203.0.113.7"}, True),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "198.51.100.7"}, False),
    ({"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}, {"aws:SourceIp": "198.51.100.7"}, True),
    ({"DateLessThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}}, {}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2025-01-01T00:00:00Z"}}, {}, False),
    ({"DateLessThan": {"aws:EpochTime": "1735689600"}}, {}, True),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "11"}, False),
    ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}, False),
    ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {}, True),
    ({"StringEquals": {"aws:principalaccount": "111122223333"}}, {}, False),  # key names are case-insensitive
    ({"StringEqualsIgnoreCase": {"s3:prefix": "HOME/"}}, {"s3:prefix": "home/"}, True),
    ({"StringEquals": {"s3:prefix": "HOME/"}}, {"s3:prefix": "home/"}, False),
    ({"StringNotEquals": {"s3:prefix": "home/"}}, {}, True),  # a negated operator on a missing key holds
    ({"StringNotLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/x"}, False),
    ({"StringLike": {"s3:prefix": ["serving/*", "embeddings/*"]}}, {"s3:prefix": "embeddings/v1/"}, True),
    ({"StringLike": {"s3:prefix": "serving/*"}}, {}, False),
    ({"Bool": {"aws:SecureTransport": "true"}}, {}, True),
    ({"Bool": {"aws:SecureTransport": False}}, {}, False),  # a JSON boolean reads as its text
    ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
    ({"Null": {"aws:TokenIssueTime": "false"}}, {}, False),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/de-*"}},
     {"aws:SourceArn": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/de-schedule"}, True),
    ({"ArnEquals": {"aws:SourceArn": "arn:aws:events:us-east-1:*:rule/x"}},
     {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:rule/x"}, False),
    ({"ArnNotLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/x"}}, {}, True),
    # ForAllValues: every request value among the policy's (vacuously true without the key); ForAnyValue: one is.
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["env"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["env", "cost"]}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:TagKeys": ["cost", "team"]}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {}, False),
    ({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["env"]}}, {}, True),
    # Two keys: both must hold; two operators: both must hold.
    ({"StringEquals": {"s3:prefix": "a/", "s3:delimiter": "/"}}, {"s3:prefix": "a/"}, False),
    ({"StringEquals": {"s3:prefix": "a/"}, "Bool": {"aws:SecureTransport": "true"}}, {"s3:prefix": "a/"}, True),
    ({"BinaryEquals": {"test:blob": "QmluYXJ5"}}, {"test:blob": "QmluYXJ5"}, True),
])
def test_condition_operators(condition: dict[str, Any], keys: dict[str, Any], holds: bool) -> None:
    policy = identity({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*", "Condition": condition})
    request = ask("s3:ListBucket", BUCKET)
    request = Request(request.action, request.resource, request.principal, {**request.keys, **lowered(keys)})
    assert outcome(request, policy) == ("allowed" if holds else "implicit_deny")


def test_policy_variables_are_read_only_in_version_2012_10_17() -> None:
    # IAM User Guide, policy variables: each user lists and reads only their own home folder.
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/home/${{aws:username}}/*"}
    request = ask("s3:GetObject", f"{BUCKET}/home/alice/notes.txt", aws__username="alice")
    assert outcome(request, identity(statement)) == "allowed"
    assert outcome(ask("s3:GetObject", f"{BUCKET}/home/bob/x", aws__username="alice"), identity(statement)) \
        == "implicit_deny"
    assert outcome(ask("s3:GetObject", f"{BUCKET}/home/alice/x"), identity(statement)) == "implicit_deny"
    assert outcome(request, identity(statement, version="2008-10-17")) == "implicit_deny"
    literal = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/${{*}}"}
    assert outcome(ask("s3:GetObject", f"{BUCKET}/*"), identity(literal)) == "allowed"
    assert outcome(ask("s3:GetObject", f"{BUCKET}/x"), identity(literal)) == "implicit_deny"


# ---- resource and trust policies ------------------------------------------------------------------------------------

def test_a_bucket_policy_naming_the_role_allows_without_an_identity_policy() -> None:
    grant = resource({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject",
                      "Resource": f"{BUCKET}/*"})
    decision = evaluate(ask("s3:GetObject", f"{BUCKET}/a"), [], [grant])
    assert decision.outcome == "allowed" and decision.decided_by is not None
    assert decision.decided_by.policy == "bucket/amzn-s3-demo-bucket"


def test_a_bucket_policy_naming_the_account_delegates_to_identity_policies() -> None:
    for account in (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"):
        grant = resource({"Effect": "Allow", "Principal": {"AWS": account}, "Action": "s3:*", "Resource": "*"})
        assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), resource_policies=(grant,)) == "implicit_deny"
        deny = resource({"Effect": "Deny", "Principal": {"AWS": account}, "Action": "s3:*", "Resource": "*"})
        assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), identity(ALLOW_S3), resource_policies=(deny,)) \
            == "explicit_deny"


def test_a_bucket_policy_for_another_principal_does_not_apply() -> None:
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    grant = resource({"Effect": "Allow", "Principal": {"AWS": other}, "Action": "s3:*", "Resource": "*"})
    deny = resource({"Effect": "Deny", "Principal": {"AWS": other}, "Action": "s3:*", "Resource": "*"})
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), resource_policies=(grant,)) == "implicit_deny"
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), identity(ALLOW_S3), resource_policies=(deny,)) == "allowed"


def test_not_principal_deny_exempts_only_the_listed_session() -> None:
    session_policy = resource({"Effect": "Deny", "NotPrincipal": {"AWS": [CALLER.arn, f"arn:aws:iam::{ACCOUNT}:root"]},
                               "Action": "s3:*", "Resource": "*"})
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), identity(ALLOW_S3), resource_policies=(session_policy,)) \
        == "allowed"
    role_only = resource({"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "s3:*", "Resource": "*"})
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), identity(ALLOW_S3), resource_policies=(role_only,)) \
        == "explicit_deny"


def test_the_programs_trust_policy_admits_its_service_for_its_account_only() -> None:
    trust = parse_policy(policies.assume_role_policy("firehose.amazonaws.com", ACCOUNT), "role/delivery/trust",
                         "resource")
    role = f"arn:aws:iam::{ACCOUNT}:role/delivery"

    def assume(service: str, source_account: str) -> str:
        principal = Principal.aws_service(service, ACCOUNT)
        keys = global_keys(principal, region="us-east-1", secure_transport=True,
                           extra={"aws:SourceAccount": source_account})
        return evaluate(Request("sts:AssumeRole", role, principal, keys), [], [trust]).outcome

    assert assume("firehose.amazonaws.com", ACCOUNT) == "allowed"
    assert assume("firehose.amazonaws.com", "111122223333") == "implicit_deny"
    assert assume("lambda.amazonaws.com", ACCOUNT) == "implicit_deny"
    # A role session is not the service.
    assert evaluate(ask("sts:AssumeRole", role), [], [trust]).outcome == "implicit_deny"


# ---- documents IAM refuses ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "kind", "message"), [
    ({"Statement": [{"Effect": "allow", "Action": "s3:*", "Resource": "*"}]}, "identity",
     'policy p: statement 0 Effect must be "Allow" or "Deny", got "allow"'),
    ({"Statement": [{"Sid": "Both", "Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"}]},
     "identity", "policy p: statement 0 (Both) has both Action and NotAction"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}, "identity",
     "policy p: statement 0 has neither Resource nor NotResource"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                     "Condition": {"StringMaybe": {"a:b": "c"}}}]}, "identity",
     "policy p: statement 0 unknown condition operator 'StringMaybe'"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                     "Condition": {"NullIfExists": {"a:b": "true"}}}]}, "identity",
     "policy p: statement 0 condition operator 'NullIfExists': Null takes neither IfExists nor a set operator"),
    ({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}]}, "identity",
     "policy p: statement 0 has a Principal, which identity policies cannot have"),
    ({"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}, "resource",
     "policy p: statement 0 has no Principal, which resource policies require"),
    ({"Version": "2020-01-01", "Statement": []}, "identity",
     'policy p: Version must be "2012-10-17" or "2008-10-17", got "2020-01-01"'),
    ("not json", "identity", "policy p: not a JSON policy document (Expecting value: line 1 column 1 (char 0))"),
])
def test_documents_iam_refuses_fail_with_a_message_naming_the_statement(document: Any, kind: Any,
                                                                        message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(document, "p", kind)
    assert str(refused.value) == message


def test_url_encoded_documents_as_iams_query_api_returns_them_are_read() -> None:
    encoded = "%7B%22Statement%22%3A%20%7B%22Effect%22%3A%20%22Allow%22%2C%20%22Action%22%3A%20%22s3%3A%2A%22%2C" \
              "%20%22Resource%22%3A%20%22%2A%22%7D%7D"
    assert outcome(ask("s3:GetObject", f"{BUCKET}/a"), parse_policy(encoded, "p", "identity")) == "allowed"


# ---- properties -----------------------------------------------------------------------------------------------------

ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "kinesis:PutRecords", "glue:GetTable", "logs:PutLogEvents"]
ARNS = [f"{BUCKET}/serving/m.bin", f"{BUCKET}/embeddings/e.csv", BUCKET,
        f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s", f"arn:aws:glue:us-east-1:{ACCOUNT}:table/d/t"]
action_patterns = st.sampled_from([*ACTIONS, "s3:*", "*", "s3:Get*", "kinesis:Put*", "glue:?etTable"])
resource_patterns = st.sampled_from([*ARNS, "*", f"{BUCKET}/*", f"{BUCKET}/serving/*", "arn:aws:kinesis:*:*:*"])
conditions = st.sampled_from([None, {"Bool": {"aws:SecureTransport": "true"}},
                              {"StringLike": {"s3:prefix": "serving/*"}},
                              {"StringNotEqualsIfExists": {"s3:prefix": "x/"}},
                              {"ForAnyValue:StringEquals": {"aws:TagKeys": "env"}}])


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        draw(st.sampled_from(["Action", "NotAction"])): draw(st.lists(action_patterns, min_size=1, max_size=3)),
        draw(st.sampled_from(["Resource", "NotResource"])): draw(st.lists(resource_patterns, min_size=1, max_size=3)),
    }
    condition = draw(conditions)
    if condition:
        statement["Condition"] = condition
    return statement


requests = st.builds(lambda action, arn, prefix, secure: ask(action, arn, secure=secure,
                                                             **({"s3__prefix": prefix} if prefix else {})),
                     st.sampled_from(ACTIONS), st.sampled_from(ARNS),
                     st.sampled_from([None, "serving/", "x/"]), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(statements(), max_size=4), statements(effect="Deny"), requests)
def test_adding_a_deny_statement_never_turns_a_deny_into_an_allow(existing: list[dict[str, Any]],
                                                                  deny: dict[str, Any], request: Request) -> None:
    before = evaluate(request, [identity(*existing)] if existing else [])
    after = evaluate(request, [identity(*existing, deny)])
    if not before.allowed:
        assert not after.allowed
    else:
        assert after.allowed == (evaluate(request, [identity(deny)]).outcome != "explicit_deny")


@settings(max_examples=300, deadline=None)
@given(st.lists(statements(effect="Deny"), max_size=3), requests)
def test_allow_star_on_star_allows_everything_not_explicitly_denied(denies: list[dict[str, Any]],
                                                                    request: Request) -> None:
    everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    decision = evaluate(request, [identity(everything, *denies)])
    denied_alone = bool(denies) and evaluate(request, [identity(*denies)]).outcome == "explicit_deny"
    assert decision.outcome == ("explicit_deny" if denied_alone else "allowed")
