"""IAM and bucket policy builders, checked as plain documents (no Pulumi)."""

from __future__ import annotations

from components import policies

BUCKET = "arn:aws:s3:::de-c1w4-dev-123456789012-us-east-1-ml-artifacts"


def test_the_tls_only_policy_denies_every_request_without_tls_to_the_bucket_and_its_objects() -> None:
    (statement,) = policies.tls_only_bucket_policy(BUCKET)["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Resource"] == [BUCKET, f"{BUCKET}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_s3_import_role_may_read_the_embeddings_prefix_and_nothing_else() -> None:
    statements = policies.rds_s3_import_policy(BUCKET, "embeddings/")["Statement"]
    actions = {action for statement in statements for action in statement["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket"}
    get, listing = statements
    assert get["Resource"] == [f"{BUCKET}/embeddings/*"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["embeddings/*"]}}


def test_wildcard_actions_are_reported() -> None:
    document = policies.document(
        policies.allow(["s3:*"], [BUCKET], "TooBroad"),
        policies.allow(["*"], [BUCKET], "Everything"),
        policies.allow(["s3:Get*"], [BUCKET], "Prefix"),
    )
    assert policies.wildcard_violations(document) == [
        "TooBroad: wildcard action s3:*", "Everything: wildcard action *", "Prefix: wildcard action s3:Get*"]


def test_resource_star_is_allowed_only_for_the_listed_actions() -> None:
    assert policies.wildcard_violations(policies.document(policies.vpc_access())) == []
    assert policies.wildcard_violations(policies.document(policies.allow(["s3:GetObject"], ["*"], "AnyObject"))) == [
        "AnyObject: s3:GetObject on Resource *"]


def test_deny_statements_may_use_wildcards() -> None:
    assert policies.wildcard_violations(policies.tls_only_bucket_policy(BUCKET)) == []


def test_every_composed_policy_is_least_privilege() -> None:
    composed = [
        policies.lambda_policy("arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f", in_vpc=True,
                               secret_arns=["arn:aws:secretsmanager:us-east-1:1:secret:s"],
                               extra=policies.s3_read_prefix(BUCKET, "serving/", "Serving")),
        policies.firehose_policy(BUCKET, "arn:aws:kinesis:us-east-1:1:stream/s",
                                 "arn:aws:lambda:us-east-1:1:function:f",
                                 "arn:aws:logs:us-east-1:1:log-group:/aws/kinesisfirehose/d"),
        policies.glue_job_policy(partition="aws", region="us-east-1", account_id="1", scripts_bucket_arn=BUCKET,
                                 datalake_bucket_arn=BUCKET, catalog_database="db", connection_name="c",
                                 source_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:s"),
        policies.scheduler_invoke_policy("arn:aws:lambda:us-east-1:1:function:f"),
    ]
    for document in composed:
        assert policies.wildcard_violations(document) == [], document


def test_services_assume_roles_only_from_this_account_when_asked() -> None:
    (statement,) = policies.assume_role_policy("firehose.amazonaws.com", "123456789012")["Statement"]
    assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


# ---- the redrive function ------------------------------------------------------------------------------------------

RECOMMENDATIONS = "arn:aws:s3:::de-c1w4-dev-123456789012-us-east-1-recommendations"
DEFAULT_ERRORS = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
DEFAULT_OUTPUT = "!{timestamp:yyyy/MM/dd/HH}/"


def test_firehose_prefix_templates_become_iam_patterns_that_stop_where_the_hour_stops() -> None:
    pattern = policies.firehose_prefix_pattern
    assert pattern(DEFAULT_ERRORS, error_output_type="processing-failed") == "errors/processing-failed/????/??/??/??/*"
    assert pattern(DEFAULT_OUTPUT, error_output_type=None) == "????/??/??/??/*"
    assert pattern("", error_output_type=None) == "????/??/??/??/*", "no prefix: Firehose's YYYY/MM/DD/HH/"
    assert pattern("", error_output_type="processing-failed") == "processing-failed/????/??/??/??/*"
    assert pattern("recs/", error_output_type=None) == "recs/????/??/??/??/*"
    assert pattern("recs/!{timestamp:'year='yyyy/'month='MM}/", error_output_type=None) == "recs/year=????/month=??/*"
    assert pattern("r/!{timestamp:yyyy/MM/dd/HH/mm}/", error_output_type=None) == "r/????/??/??/??/*"
    assert pattern("r/!{firehose:random-string}/!{timestamp:yyyy}/", error_output_type=None) == "r/*"


def test_the_redrive_may_read_the_error_and_delivered_output_write_only_its_markers_and_put_only_records() -> None:
    statements = policies.s3_redrive(RECOMMENDATIONS, error_prefix=DEFAULT_ERRORS,
                                     recommendations_prefix=DEFAULT_OUTPUT, marker_prefix="errors/redriven/")
    by_sid = {s["Sid"]: s for s in statements}
    patterns = ["????/??/??/??/*", "errors/processing-failed/????/??/??/??/*", "errors/redriven/*"]
    assert by_sid["ListRedriveInputs"]["Action"] == ["s3:ListBucket"]
    assert by_sid["ListRedriveInputs"]["Resource"] == [RECOMMENDATIONS]
    assert by_sid["ListRedriveInputs"]["Condition"] == {"StringLike": {"s3:prefix": patterns}}
    assert by_sid["ReadRedriveInputs"] == policies.allow(["s3:GetObject"], [f"{RECOMMENDATIONS}/{p}" for p in patterns],
                                                         "ReadRedriveInputs")
    assert by_sid["WriteRedriveMarkers"]["Resource"] == [f"{RECOMMENDATIONS}/errors/redriven/*"]
    assert by_sid["ReleaseRedriveLease"]["Action"] == ["s3:DeleteObject"]
    assert by_sid["ReleaseRedriveLease"]["Resource"] == [f"{RECOMMENDATIONS}/errors/redriven/.lease"]
    assert set(by_sid) == {"ListRedriveInputs", "ReadRedriveInputs", "WriteRedriveMarkers", "ReleaseRedriveLease"}
    stream = "arn:aws:kinesis:us-east-1:1:stream/s"
    assert policies.kinesis_redrive(stream) == policies.allow(["kinesis:PutRecords"], [stream], "RedriveToStream")
    assert policies.wildcard_violations(policies.document(*statements, policies.kinesis_redrive(stream))) == []
