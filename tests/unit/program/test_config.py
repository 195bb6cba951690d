"""Config policy: every key is validated, and a bad value fails with a message naming key, value and what is allowed."""

from __future__ import annotations

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import defaults
from components.config import ConfigError, default_ephemeral, parse_config
from tests.unit.program.conftest import ProgramRunner, config_of


def error_for(settings_: dict[str, str], stack: str = "dev") -> str:
    with pytest.raises(ConfigError) as raised:
        parse_config(config_of(settings_), stack)
    return str(raised.value)


def test_config_errors_are_run_errors_so_pulumi_prints_no_stack_trace() -> None:
    assert issubclass(ConfigError, pulumi.RunError)


def test_an_empty_config_gives_the_secure_lab_compatible_defaults() -> None:
    config = parse_config({}, "dev")
    assert config.prefix == "de-c1w4"
    assert config.region == "us-east-1"
    assert config.network.create and config.source_db.create
    assert not config.vector_db.public
    assert config.streaming.inference_auth == "AWS_IAM"
    assert not config.plaintext_password_env
    assert config.streaming.firehose.prefix == defaults.RECOMMENDATIONS_PREFIX
    assert config.producer.schedule is None and config.glue.schedule is None


@pytest.mark.parametrize(("settings_", "message"), [
    ({"firehoseBufferSizeMb": "200"},
     'recsys:firehoseBufferSizeMb is "200", but it must be a whole number from 1 to 128. '
     "Change it with: pulumi config set recsys:firehoseBufferSizeMb <value>"),
    ({"processorBufferSizeMb": "0.1"},
     'recsys:processorBufferSizeMb is "0.1", but it must be a number from 0.2 to 3. '
     "Change it with: pulumi config set recsys:processorBufferSizeMb <value>"),
    ({"processorRetries": "three"},
     'recsys:processorRetries is "three", but it must be a whole number from 0 to 300. '
     "Change it with: pulumi config set recsys:processorRetries <value>"),
    ({"ephemeral": "yes"},
     'recsys:ephemeral is "yes", but it must be true or false. '
     "Change it with: pulumi config set recsys:ephemeral <value>"),
    ({"inferenceAuth": "IAM"},
     'recsys:inferenceAuth is "IAM", but it must be one of AWS_IAM, NONE. '
     "Change it with: pulumi config set recsys:inferenceAuth <value>"),
    ({"lambdaArchitecture": "amd64"},
     'recsys:lambdaArchitecture is "amd64", but it must be one of x86_64, arm64. '
     "Change it with: pulumi config set recsys:lambdaArchitecture <value>"),
    ({"prefix": "De_C1W4"},
     'recsys:prefix is "De_C1W4", but it must be 2 to 20 characters: lowercase letters, digits and single hyphens, '
     "starting with a letter, not ending with a hyphen. Change it with: pulumi config set recsys:prefix <value>"),
    ({"logRetentionDays": "10"},
     'recsys:logRetentionDays is "10", but it must be one of the CloudWatch Logs retention values 1, 3, 5, 7, 14, 30, '
     "60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653. "
     "Change it with: pulumi config set recsys:logRetentionDays <value>"),
    ({"vectorDbAllowedCidrs": "10.0.0.0/8,everyone"},
     'recsys:vectorDbAllowedCidrs is "10.0.0.0/8,everyone", but it must be a comma-separated list of CIDR blocks such '
     'as 203.0.113.0/24 ("everyone" is not one). '
     "Change it with: pulumi config set recsys:vectorDbAllowedCidrs <value>"),
    ({"vpcCidr": "10.0.0.0/8"},
     'recsys:vpcCidr is "10.0.0.0/8", but it must be an IPv4 CIDR block from /16 to /24 such as 10.42.0.0/16. '
     "Change it with: pulumi config set recsys:vpcCidr <value>"),
    ({"producerSchedule": "every minute"},
     'recsys:producerSchedule is "every minute", but it must be an EventBridge rate expression such as '
     "rate(1 minute). Change it with: pulumi config set recsys:producerSchedule <value>"),
    ({"kinesisStreamArn": "de-c1w4-kinesis-data-stream"},
     'recsys:kinesisStreamArn is "de-c1w4-kinesis-data-stream", but it must be a Kinesis stream ARN such as '
     "arn:aws:kinesis:us-east-1:123456789012:stream/name. "
     "Change it with: pulumi config set recsys:kinesisStreamArn <value>"),
    ({"recommendationsErrorPrefix": "errors/"},
     'recsys:recommendationsErrorPrefix is "errors/", but it must be a prefix containing '
     "!{firehose:error-output-type} when recommendationsPrefix uses !{...} expressions. "
     "Change it with: pulumi config set recsys:recommendationsErrorPrefix <value>"),
    ({"aws:region": "US East"},
     'aws:region is "US East", but it must be an AWS region name such as us-east-1. '
     "Change it with: pulumi config set aws:region <region>"),
    ({"prefx": "abc"},
     "recsys:prefx is not a setting of this program. Did you mean recsys:prefix? "
     "Remove it with: pulumi config rm recsys:prefx (all settings: docs/program.md)"),
    ({"vpcId": "vpc-0123456789abcdef0"},
     "recsys:subnetIds must list at least two subnets of vpc-0123456789abcdef0 in different availability zones when "
     "recsys:vpcId is set (RDS needs two AZs). Set it with: pulumi config set recsys:subnetIds subnet-aaa,subnet-bbb"),
    ({"subnetIds": "subnet-0123abcd,subnet-4567abcd"},
     "recsys:subnetIds is set but recsys:vpcId is not: subnets only make sense in an existing VPC. Set recsys:vpcId "
     "too, or remove them with: pulumi config rm recsys:subnetIds"),
    ({"sourceDbHost": "db.example.com"},
     "recsys:sourceDbPassword is required when recsys:sourceDbHost is set. "
     "Set it with: pulumi config set --secret recsys:sourceDbPassword <password>"),
    ({"sourceDbPassword": "hunter2"},
     "recsys:sourceDbPassword is set but recsys:sourceDbHost is not: the program creates the source database and "
     "generates its password. Set recsys:sourceDbHost, or remove the password with: "
     "pulumi config rm recsys:sourceDbPassword"),
    ({"artifactsBucket": "my-artifacts", "artifactsDir": "artifacts"},
     "recsys:artifactsBucket and recsys:artifactsDir are both set: use the existing bucket (artifactsBucket) or let "
     "the program create one and upload a directory into it (artifactsDir), not both. "
     "Remove one with: pulumi config rm recsys:artifactsDir"),
])
def test_bad_values_fail_with_an_exact_message(settings_: dict[str, str], message: str) -> None:
    assert error_for(settings_) == message


def test_a_password_value_never_appears_in_an_error_message() -> None:
    message = error_for({"sourceDbPassword": "s3cr3t-value"})
    assert "s3cr3t-value" not in message


def test_the_program_stops_on_bad_config_before_creating_anything(run: ProgramRunner) -> None:
    with pytest.raises(ConfigError, match=r"recsys:topK is \"0\""):
        run("dev", {"topK": "0"})


def test_lists_accept_json_arrays_and_comma_separated_values() -> None:
    as_json = parse_config(config_of({"vpcId": "vpc-0123456789abcdef0",
                                      "subnetIds": '["subnet-0123abcd", "subnet-4567abcd"]'}), "dev")
    as_commas = parse_config(config_of({"vpcId": "vpc-0123456789abcdef0",
                                        "subnetIds": "subnet-0123abcd, subnet-4567abcd"}), "dev")
    assert as_json.network.subnet_ids == as_commas.network.subnet_ids == ("subnet-0123abcd", "subnet-4567abcd")


@pytest.mark.parametrize(("stack", "ephemeral"), [
    ("dev", True), ("dev-alice", True), ("local", True), ("test_ci.1", True), ("ci-42", True),
    ("prod", False), ("staging", False), ("developer", False),
])
def test_developer_stacks_are_ephemeral_by_default_and_others_are_kept(stack: str, ephemeral: bool) -> None:
    assert default_ephemeral(stack) is ephemeral
    assert parse_config({}, stack).ephemeral is ephemeral
    assert parse_config(config_of({"ephemeral": str(not ephemeral).lower()}), stack).ephemeral is (not ephemeral)


integers_in_range = st.integers(min_value=1, max_value=128)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=st.integers(min_value=-50, max_value=400), interval=st.integers(min_value=-50, max_value=1200))
def test_firehose_buffering_is_accepted_exactly_within_the_aws_ranges(size: int, interval: int) -> None:
    raw = config_of({"firehoseBufferSizeMb": str(size), "firehoseBufferIntervalSeconds": str(interval)})
    if 1 <= size <= 128 and 0 <= interval <= 900:
        firehose = parse_config(raw, "dev").streaming.firehose
        assert (firehose.buffer_size_mb, firehose.buffer_interval_seconds) == (size, interval)
    else:
        with pytest.raises(ConfigError, match=r"recsys:firehoseBuffer(SizeMb|IntervalSeconds) is "):
            parse_config(raw, "dev")


@settings(max_examples=60, deadline=None)
@given(key=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=30))
def test_every_unknown_key_is_rejected_by_name(key: str) -> None:
    from components.config import KNOWN_KEYS

    if key in KNOWN_KEYS:
        return
    with pytest.raises(ConfigError, match=rf"^recsys:{key} is not a setting of this program\."):
        parse_config({f"recsys:{key}": "x"}, "dev")


# ---- processorBufferSizeMb x topK: the transformation's response must fit Lambda's 6 MB ------------------------------
@pytest.mark.parametrize(("settings_", "message"), [
    ({"processorBufferSizeMb": "1"},
     "recsys:processorBufferSizeMb 1 with recsys:topK 5 could produce a processor response of 7.2 MB (7,555,233 "
     "bytes), over Lambda's 6 MB limit (6,291,456 bytes): 1 MB of sessions of at least 157 bytes each is up to "
     "6,678 records, each answered with itself plus up to 607 bytes of recommendations, base64-encoded (x 4/3), in "
     "110 bytes of envelope. Use processorBufferSizeMb <= 0.83 or topK <= 3; docs/streaming.md explains the bound. "
     "Change it with: pulumi config set recsys:processorBufferSizeMb <value> or pulumi config set recsys:topK <value>"),
    ({"processorBufferSizeMb": "3"},
     "recsys:processorBufferSizeMb 3 with recsys:topK 5 could produce a processor response of 21.6 MB (22,667,511 "
     "bytes), over Lambda's 6 MB limit (6,291,456 bytes): 3 MB of sessions of at least 157 bytes each is up to 20,036 "
     "records, each answered with itself plus up to 607 bytes of recommendations, base64-encoded (x 4/3), in 110 bytes "
     "of envelope. Use processorBufferSizeMb <= 0.83 (no topK fits 3 MB); docs/streaming.md explains the bound. "
     "Change it with: pulumi config set recsys:processorBufferSizeMb <value> or pulumi config set recsys:topK <value>"),
    ({"topK": "100"},
     "recsys:processorBufferSizeMb 0.8 with recsys:topK 100 could produce a processor response of 72.2 MB (75,753,081 "
     "bytes), over Lambda's 6 MB limit (6,291,456 bytes): 0.8 MB of sessions of at least 157 bytes each is up to 5,343 "
     "records, each answered with itself plus up to 10,392 bytes of recommendations, base64-encoded (x 4/3), in 110 "
     "bytes of envelope. Use topK <= 5 (no processorBufferSizeMb from 0.2 fits topK 100); docs/streaming.md explains "
     "the bound. Change it with: pulumi config set recsys:processorBufferSizeMb <value> or pulumi config set "
     "recsys:topK <value>"),
])
def test_a_buffer_and_top_k_that_could_overflow_lambdas_response_fail_with_the_arithmetic(
    settings_: dict[str, str], message: str
) -> None:
    assert error_for(settings_) == message


@pytest.mark.parametrize(("buffer_mb", "top_k", "accepted"), [
    ("0.2", "31", True), ("0.2", "32", False),
    ("0.83", "5", True), ("0.84", "5", False),
    ("1.61", "1", True), ("1.62", "1", False),
    ("0.8", "5", True), ("0.5", "10", True), ("0.5", "11", False),
])
def test_the_largest_accepted_settings_are_the_ones_the_message_suggests(buffer_mb: str, top_k: str,
                                                                         accepted: bool) -> None:
    raw = config_of({"processorBufferSizeMb": buffer_mb, "topK": top_k})
    if accepted:
        config = parse_config(raw, "dev")
        assert (config.streaming.firehose.processor_buffer_size_mb, config.streaming.top_k) == (float(buffer_mb),
                                                                                                int(top_k))
    else:
        assert error_for({"processorBufferSizeMb": buffer_mb, "topK": top_k}).startswith(
            f"recsys:processorBufferSizeMb {buffer_mb} with recsys:topK {top_k} could produce a processor response of ")


def test_the_default_processor_buffer_fits_the_default_top_k_and_aws_s_default_would_not() -> None:
    from components.config import LAMBDA_RESPONSE_LIMIT_BYTES, max_processor_response_bytes

    assert defaults.PROCESSOR_BUFFER_SIZE_MB == 0.8
    default_bound = max_processor_response_bytes(defaults.PROCESSOR_BUFFER_SIZE_MB, defaults.TOP_K)
    assert default_bound <= LAMBDA_RESPONSE_LIMIT_BYTES
    assert max_processor_response_bytes(1.0, defaults.TOP_K) > LAMBDA_RESPONSE_LIMIT_BYTES


def test_the_program_and_the_lambda_use_the_same_constants_for_the_bound() -> None:
    from recsys import firehose  # the Lambda package: only tests import it next to the program

    from components import config

    assert (config.LAMBDA_RESPONSE_LIMIT_BYTES, config.MIN_SESSION_BYTES, config.MAX_ITEM_ID_CHARS,
            config.MAX_NUMBER_CHARS, config.RECORD_ID_CHARS, config.MAX_RECORD_BYTES, config.MIB) == (
        firehose.LAMBDA_RESPONSE_LIMIT_BYTES, firehose.MIN_SESSION_BYTES, firehose.MAX_ITEM_ID_CHARS,
        firehose.MAX_NUMBER_CHARS, firehose.RECORD_ID_CHARS, firehose.MAX_RECORD_BYTES, firehose.MIB)


@settings(max_examples=300, deadline=None)
@given(hundredths=st.integers(min_value=20, max_value=300), top_k=st.integers(min_value=1, max_value=100))
def test_the_program_and_the_lambda_compute_the_same_bound_and_validation_follows_it(hundredths: int,
                                                                                       top_k: int) -> None:
    from recsys import firehose

    from components.config import max_enrichment_bytes, max_processor_response_bytes

    buffer_mb = hundredths / 100
    bound = firehose.max_response_bytes(int(buffer_mb * firehose.MIB), top_k)
    assert max_processor_response_bytes(buffer_mb, top_k) == bound
    assert max_enrichment_bytes(top_k) == firehose.max_enrichment_bytes(top_k)
    raw = config_of({"processorBufferSizeMb": f"{buffer_mb:g}", "topK": str(top_k)})
    if bound <= firehose.LAMBDA_RESPONSE_LIMIT_BYTES:
        parse_config(raw, "dev")
    else:
        with pytest.raises(ConfigError, match=r"over Lambda's 6 MB limit \(6,291,456 bytes\)"):
            parse_config(raw, "dev")
