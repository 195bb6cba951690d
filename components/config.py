"""The stack's configuration: every `recsys:` key read once, validated, typed.

`parse_config` is pure (a mapping of full keys such as `recsys:prefix` to their string values, plus the stack name) so
every rule is unit-tested word for word; `load_config` is the thin edge that reads what Pulumi hands the program.
Components receive a `StackConfig` and never call `pulumi.Config` themselves.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import pulumi

from components import defaults

NAMESPACE = "recsys"

Architecture = Literal["x86_64", "arm64"]
FunctionUrlAuth = Literal["AWS_IAM", "NONE"]

T = TypeVar("T")


class ConfigError(pulumi.RunError):
    """A bad config value. A `RunError` so `pulumi up` prints the message alone, without a stack trace."""


@dataclass(frozen=True)
class NetworkConfig:
    """Attach to an existing VPC (lab mode) when `vpc_id` is set, otherwise create a small private one."""

    vpc_id: str | None
    subnet_ids: tuple[str, ...]
    vpc_cidr: str

    @property
    def create(self) -> bool:
        return self.vpc_id is None


@dataclass(frozen=True)
class SourceDbConfig:
    """Attach to the lab's MySQL when `host` is set, otherwise create a small RDS MySQL and seed it."""

    host: str | None
    port: int
    name: str
    username: str
    password: str | None = field(repr=False)
    instance_class: str

    @property
    def create(self) -> bool:
        return self.host is None


@dataclass(frozen=True)
class VectorDbConfig:
    instance_class: str
    allocated_storage_gb: int
    # Non-empty opens the database to these CIDRs on 5432 and makes it publicly accessible (the lab's setup).
    allowed_cidrs: tuple[str, ...]

    @property
    def public(self) -> bool:
        return bool(self.allowed_cidrs)


@dataclass(frozen=True)
class ArtifactsConfig:
    """Either the data scientist's existing bucket (lab mode) or a bucket the program creates and fills from a dir."""

    existing_bucket: str | None
    local_dir: str | None


@dataclass(frozen=True)
class FirehoseConfig:
    buffer_size_mb: int
    buffer_interval_seconds: int
    processor_buffer_size_mb: float
    processor_buffer_interval_seconds: int
    processor_retries: int
    prefix: str
    error_prefix: str


@dataclass(frozen=True)
class StreamingConfig:
    kinesis_stream_arn: str | None
    kinesis_shard_count: int
    inference_auth: FunctionUrlAuth
    top_k: int
    firehose: FirehoseConfig


@dataclass(frozen=True)
class ProducerConfig:
    """The optional scheduled producer of user-activity events; `schedule` None means no producer."""

    schedule: str | None
    events_per_invocation: int


@dataclass(frozen=True)
class GlueConfig:
    schedule: str | None
    timeout_minutes: int


@dataclass(frozen=True)
class StackConfig:
    stack: str
    prefix: str
    region: str
    # Ephemeral stacks destroy cleanly: buckets force-destroyed, no final snapshot, no deletion protection.
    ephemeral: bool
    log_retention_days: int
    lambda_architecture: Architecture
    plaintext_password_env: bool
    network: NetworkConfig
    source_db: SourceDbConfig
    vector_db: VectorDbConfig
    artifacts: ArtifactsConfig
    streaming: StreamingConfig
    producer: ProducerConfig
    glue: GlueConfig


# Every key the program reads, with a one-line description (the docs table and the "did you mean" hint use it).
KNOWN_KEYS: dict[str, str] = {
    "prefix": "prefix of every physical name",
    "ephemeral": "destroy cleanly (force-destroy buckets, no final snapshot, no deletion protection)",
    "logRetentionDays": "retention of the log groups the program creates",
    "lambdaArchitecture": "x86_64 or arm64 for every Lambda function and its dependency layer",
    "plaintextPasswordEnv": "also put VECTOR_DB_PASSWORD in the Lambdas' environment (lab compatibility)",
    "topK": "TOP_K for the inference and transformation functions",
    "vpcId": "existing VPC to attach to (lab mode); unset creates a VPC",
    "subnetIds": "subnets in vpcId for the databases, Lambdas and Glue (at least two AZs)",
    "vpcCidr": "CIDR of the VPC the program creates",
    "sourceDbHost": "existing source MySQL host (lab mode); unset creates an RDS MySQL and seeds it",
    "sourceDbPort": "source MySQL port",
    "sourceDbName": "source MySQL database",
    "sourceDbUser": "source MySQL user",
    "sourceDbPassword": "source MySQL password (secret; required with sourceDbHost)",
    "sourceDbInstanceClass": "instance class of the source MySQL the program creates",
    "vectorDbInstanceClass": "instance class of the pgvector database",
    "vectorDbAllocatedStorageGb": "storage of the pgvector database",
    "vectorDbAllowedCidrs": "CIDRs allowed to reach the vector DB on 5432; non-empty makes it publicly accessible",
    "artifactsBucket": "existing ML artifacts bucket (lab mode)",
    "artifactsDir": "local directory uploaded into the artifacts bucket the program creates",
    "kinesisStreamArn": "existing Kinesis stream to read (lab mode); unset creates one",
    "kinesisShardCount": "shards of the stream the program creates",
    "inferenceAuth": "Function URL auth of the inference function",
    "firehoseBufferSizeMb": "Firehose S3 buffering size",
    "firehoseBufferIntervalSeconds": "Firehose S3 buffering interval",
    "processorBufferSizeMb": "Firehose Lambda processor BufferSizeInMBs",
    "processorBufferIntervalSeconds": "Firehose Lambda processor BufferIntervalInSeconds",
    "processorRetries": "Firehose Lambda processor NumberOfRetries",
    "recommendationsPrefix": "S3 prefix of delivered recommendations",
    "recommendationsErrorPrefix": "S3 prefix of records Firehose could not process",
    "producerSchedule": "EventBridge schedule of the producer function; unset means no producer",
    "producerEventsPerInvocation": "events the producer writes per invocation",
    "glueSchedule": "cron schedule for the Glue job; unset means run on demand",
    "glueTimeoutMinutes": "Glue job timeout",
}

# CloudWatch Logs accepts only these retention values.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)

_PREFIX_RE = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){0,18}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_VPC_RE = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_INSTANCE_CLASS_RE = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KINESIS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/[A-Za-z0-9_.-]{1,128}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,63}$")
_SCHEDULE_RATE_RE = re.compile(r"^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$")
_SCHEDULE_CRON_RE = re.compile(r"^cron\(\S+( \S+){5}\)$")
_S3_PREFIX_RE = re.compile(r"^[^/\s][^\s]{0,1023}$")
_EPHEMERAL_STACK_RE = re.compile(r"^(dev|local|test|ci|tmp)([-_.].*)?$", re.IGNORECASE)
_ERROR_TYPE_EXPRESSION = "!{firehose:error-output-type}"


# ---- the transformation's response must fit Lambda's 6 MB ----------------------------------------------------------
# The same arithmetic as `recsys.firehose.max_response_bytes` (lambda_src/recsys/firehose.py explains each term), with
# the same constants: the program does not import the Lambda package, so tests/unit/program/test_config.py proves the
# two give the same numbers.
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
MIB = 1024 * 1024
MIN_SESSION_BYTES = 157  # the smallest session that can come back Ok (firehose.MIN_SESSION)
MAX_ITEM_ID_CHARS = 15  # a catalogue id (classicmodels productCode is VARCHAR(15))
MAX_NUMBER_CHARS = 16  # a score or a distance, 9 significant digits
RECORD_ID_CHARS = 64  # Firehose's recordIds are 56 digits
MAX_RECORD_BYTES = 1_024_000  # Firehose's largest record, which comes alone when larger than the buffer
_ENTRY_ENVELOPE_BYTES = len('{"recordId": "", "result": "Ok", "data": ""}, ')  # 46
_RESPONSE_ENVELOPE_BYTES = len('{"records": []}')  # 15


def max_enrichment_bytes(top_k: int) -> int:
    """What a delivered line adds to its record at most: `,"recommended_items":[...]`, `,"similar_items":{...}`, and
    a newline; top_k items each, ids and numbers at their longest (607 bytes for topK 5)."""
    recommended = 2 + top_k * (len('{"id":"","score":}') + MAX_ITEM_ID_CHARS + MAX_NUMBER_CHARS) + (top_k - 1)
    similar = (len('{"product_code":"","similar_items":[]}') + MAX_ITEM_ID_CHARS
               + top_k * (len('{"id":"","distance":}') + MAX_ITEM_ID_CHARS + MAX_NUMBER_CHARS) + (top_k - 1))
    return len(',"recommended_items":') + recommended + len(',"similar_items":') + similar + 1


def max_processor_response_bytes(processor_buffer_mb: float, top_k: int) -> int:
    """The largest response the transformation can return for a batch of `processor_buffer_mb` MB of sessions: n
    records of the smallest size, each in a 110-byte envelope around base64 (4/3) of itself plus its enrichment."""
    buffer_bytes = int(processor_buffer_mb * MIB)
    entry = _ENTRY_ENVELOPE_BYTES + RECORD_ID_CHARS
    enrichment = max_enrichment_bytes(top_k)
    records = buffer_bytes // MIN_SESSION_BYTES
    many_small = _RESPONSE_ENVELOPE_BYTES + records * entry + -(-4 * (buffer_bytes + records * (enrichment + 2)) // 3)
    one_large = _RESPONSE_ENVELOPE_BYTES + entry + 4 * ((MAX_RECORD_BYTES + enrichment + 2) // 3)
    return max(many_small, one_large)


PROCESSOR_BUFFER_RANGE_MB = (0.2, 3.0)  # what Firehose accepts for a Lambda processor's BufferSizeInMBs
TOP_K_RANGE = (1, 100)


def largest_fitting_buffer_mb(top_k: int) -> float | None:
    """The largest processorBufferSizeMb, in hundredths, whose response fits with `top_k`; None below 0.2."""
    low, high = PROCESSOR_BUFFER_RANGE_MB
    fitting = [c / 100 for c in range(round(low * 100), round(high * 100) + 1)
               if max_processor_response_bytes(c / 100, top_k) <= LAMBDA_RESPONSE_LIMIT_BYTES]
    return fitting[-1] if fitting else None


def largest_fitting_top_k(processor_buffer_mb: float) -> int | None:
    fitting = [k for k in range(TOP_K_RANGE[0], TOP_K_RANGE[1] + 1)
               if max_processor_response_bytes(processor_buffer_mb, k) <= LAMBDA_RESPONSE_LIMIT_BYTES]
    return fitting[-1] if fitting else None


def check_processor_response(processor_buffer_mb: float, top_k: int) -> None:
    """ConfigError, with the arithmetic, when a batch of this size could make a response Lambda refuses."""
    bound = max_processor_response_bytes(processor_buffer_mb, top_k)
    if bound <= LAMBDA_RESPONSE_LIMIT_BYTES:
        return
    records = int(processor_buffer_mb * MIB) // MIN_SESSION_BYTES
    buffer_fix = largest_fitting_buffer_mb(top_k)
    top_k_fix = largest_fitting_top_k(processor_buffer_mb)
    options = ([f"processorBufferSizeMb <= {buffer_fix:g}"] if buffer_fix is not None else []) + (
        [f"topK <= {top_k_fix}"] if top_k_fix is not None else [])
    fix = " or ".join(options)
    if buffer_fix is None:
        fix += f" (no processorBufferSizeMb from {PROCESSOR_BUFFER_RANGE_MB[0]:g} fits topK {top_k})"
    if top_k_fix is None:
        fix += f" (no topK fits {processor_buffer_mb:g} MB)"
    raise ConfigError(
        f"{NAMESPACE}:processorBufferSizeMb {processor_buffer_mb:g} with {NAMESPACE}:topK {top_k} could produce a "
        f"processor response of {bound / MIB:.1f} MB ({bound:,} bytes), over Lambda's 6 MB limit "
        f"({LAMBDA_RESPONSE_LIMIT_BYTES:,} bytes): {processor_buffer_mb:g} MB of sessions of at least "
        f"{MIN_SESSION_BYTES} bytes each is up to {records:,} records, each answered with itself plus up to "
        f"{max_enrichment_bytes(top_k):,} bytes of recommendations, base64-encoded (x 4/3), in "
        f"{_ENTRY_ENVELOPE_BYTES + RECORD_ID_CHARS} bytes of envelope. Use {fix}; docs/streaming.md explains the "
        f"bound. Change it with: pulumi config set {NAMESPACE}:processorBufferSizeMb <value> "
        f"or pulumi config set {NAMESPACE}:topK <value>"
    )


def _bad(key: str, value: str, allowed: str) -> ConfigError:
    return ConfigError(
        f"{NAMESPACE}:{key} is {json.dumps(value)}, but it must be {allowed}. "
        f"Change it with: pulumi config set {NAMESPACE}:{key} <value>"
    )


class _Reader:
    """Reads one key at a time from the raw mapping, remembering which keys were consumed."""

    def __init__(self, raw: Mapping[str, str]) -> None:
        self._raw = raw

    def raw(self, key: str) -> str | None:
        value = self._raw.get(f"{NAMESPACE}:{key}")
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, key: str, default: T, pattern: re.Pattern[str], allowed: str) -> str | T:
        value = self.raw(key)
        if value is None:
            return default
        if not pattern.fullmatch(value):
            raise _bad(key, value, allowed)
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(key)
        if value is None:
            return default
        allowed = f"a whole number from {low} to {high}"
        if not re.fullmatch(r"-?\d+", value):
            raise _bad(key, value, allowed)
        number = int(value)
        if not low <= number <= high:
            raise _bad(key, value, allowed)
        return number

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        allowed = f"a number from {low:g} to {high:g}"
        try:
            number = float(value)
        except ValueError:
            raise _bad(key, value, allowed) from None
        if not low <= number <= high:
            raise _bad(key, value, allowed)
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise _bad(key, value, "true or false")
        return lowered == "true"

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(key)
        if value is None:
            return default
        if value not in choices:
            raise _bad(key, value, "one of " + ", ".join(choices))
        return value

    def items(self, key: str, check: Callable[[str], bool], allowed: str) -> tuple[str, ...]:
        """A list given as a JSON array (`pulumi config set --path` style) or comma-separated."""
        value = self.raw(key)
        if value is None:
            return ()
        parsed: object
        if value.startswith("["):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                raise _bad(key, value, f"a JSON list or comma-separated list of {allowed}") from None
            if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
                raise _bad(key, value, f"a JSON list or comma-separated list of {allowed}")
            entries = [item.strip() for item in parsed]
        else:
            entries = [item.strip() for item in value.split(",")]
        for entry in entries:
            if not entry or not check(entry):
                raise _bad(key, value, f"a comma-separated list of {allowed} ({json.dumps(entry)} is not one)")
        if len(set(entries)) != len(entries):
            raise _bad(key, value, f"a comma-separated list of {allowed} without duplicates")
        return tuple(entries)


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return "/" in value


def _check_unknown_keys(raw: Mapping[str, str]) -> None:
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE or key in KNOWN_KEYS:
            continue
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
        hint = f" Did you mean {NAMESPACE}:{close[0]}?" if close else ""
        raise ConfigError(
            f"{full_key} is not a setting of this program.{hint} "
            f"Remove it with: pulumi config rm {full_key} (all settings: docs/program.md)"
        )


def default_ephemeral(stack: str) -> bool:
    """Developer stacks (`dev`, `dev-alice`, `local`, `test-*`, `ci-*`, `tmp-*`) are ephemeral unless config says."""
    return bool(_EPHEMERAL_STACK_RE.match(stack))


def parse_config(raw: Mapping[str, str], stack: str) -> StackConfig:
    """Validates every key; the first problem raises `ConfigError` naming the key, the value and what is allowed."""
    _check_unknown_keys(raw)
    read = _Reader(raw)

    region = raw.get("aws:region", "").strip() or defaults.REGION
    if not _REGION_RE.fullmatch(region):
        raise ConfigError(
            f"aws:region is {json.dumps(region)}, but it must be an AWS region name such as us-east-1. "
            "Change it with: pulumi config set aws:region <region>"
        )

    prefix = read.text(
        "prefix", defaults.PREFIX, _PREFIX_RE,
        "2 to 20 characters: lowercase letters, digits and single hyphens, starting with a letter, "
        "not ending with a hyphen",
    )

    vpc_id = read.text("vpcId", None, _VPC_RE, "a VPC id such as vpc-0123456789abcdef0")
    subnet_ids = read.items("subnetIds", lambda s: bool(_SUBNET_RE.fullmatch(s)), "subnet ids such as subnet-0123abcd")
    if vpc_id is not None and len(subnet_ids) < 2:
        raise ConfigError(
            f"{NAMESPACE}:subnetIds must list at least two subnets of {vpc_id} in different availability zones when "
            f"{NAMESPACE}:vpcId is set (RDS needs two AZs). "
            f"Set it with: pulumi config set {NAMESPACE}:subnetIds subnet-aaa,subnet-bbb"
        )
    if vpc_id is None and subnet_ids:
        raise ConfigError(
            f"{NAMESPACE}:subnetIds is set but {NAMESPACE}:vpcId is not: subnets only make sense in an existing VPC. "
            f"Set {NAMESPACE}:vpcId too, or remove them with: pulumi config rm {NAMESPACE}:subnetIds"
        )
    vpc_cidr = read.text("vpcCidr", defaults.VPC_CIDR, re.compile(r".*"), "")
    if not _is_cidr(vpc_cidr) or not 16 <= ipaddress.ip_network(vpc_cidr).prefixlen <= 24:
        raise _bad("vpcCidr", vpc_cidr, "an IPv4 CIDR block from /16 to /24 such as 10.42.0.0/16")

    source_host = read.text("sourceDbHost", None, _HOST_RE, "a host name or IP address")
    source_password = read.raw("sourceDbPassword")
    if source_host is not None and source_password is None:
        raise ConfigError(
            f"{NAMESPACE}:sourceDbPassword is required when {NAMESPACE}:sourceDbHost is set. "
            f"Set it with: pulumi config set --secret {NAMESPACE}:sourceDbPassword <password>"
        )
    if source_host is None and source_password is not None:
        raise ConfigError(
            f"{NAMESPACE}:sourceDbPassword is set but {NAMESPACE}:sourceDbHost is not: the program creates the source "
            f"database and generates its password. Set {NAMESPACE}:sourceDbHost, or remove the password with: "
            f"pulumi config rm {NAMESPACE}:sourceDbPassword"
        )
    source_db = SourceDbConfig(
        host=source_host,
        port=read.integer("sourceDbPort", defaults.SOURCE_DB_PORT, 1, 65535),
        name=read.text("sourceDbName", defaults.SOURCE_DB_NAME, _IDENT_RE,
                       "a database name: letters, digits, _ and $, starting with a letter or _"),
        username=read.text("sourceDbUser", defaults.SOURCE_DB_USER, _IDENT_RE,
                           "a user name: letters, digits, _ and $, starting with a letter or _"),
        password=source_password,
        instance_class=read.text("sourceDbInstanceClass", defaults.DB_INSTANCE_CLASS, _INSTANCE_CLASS_RE,
                                 "an RDS instance class such as db.t3.micro"),
    )

    vector_db = VectorDbConfig(
        instance_class=read.text("vectorDbInstanceClass", defaults.DB_INSTANCE_CLASS, _INSTANCE_CLASS_RE,
                                 "an RDS instance class such as db.t3.micro"),
        allocated_storage_gb=read.integer("vectorDbAllocatedStorageGb", defaults.DB_ALLOCATED_STORAGE_GB, 20, 1000),
        allowed_cidrs=read.items("vectorDbAllowedCidrs", _is_cidr, "CIDR blocks such as 203.0.113.0/24"),
    )

    artifacts_bucket = read.text("artifactsBucket", None, _BUCKET_RE, "an S3 bucket name (3-63 lowercase characters)")
    artifacts_dir = read.raw("artifactsDir")
    if artifacts_bucket is not None and artifacts_dir is not None:
        raise ConfigError(
            f"{NAMESPACE}:artifactsBucket and {NAMESPACE}:artifactsDir are both set: use the existing bucket "
            f"(artifactsBucket) or let the program create one and upload a directory into it (artifactsDir), not both. "
            f"Remove one with: pulumi config rm {NAMESPACE}:artifactsDir"
        )

    prefix_value = read.text("recommendationsPrefix", defaults.RECOMMENDATIONS_PREFIX, _S3_PREFIX_RE,
                             "an S3 prefix without a leading slash or spaces")
    error_prefix = read.text("recommendationsErrorPrefix", defaults.RECOMMENDATIONS_ERROR_PREFIX, _S3_PREFIX_RE,
                             "an S3 prefix without a leading slash or spaces")
    # Firehose rejects a prefix with !{...} expressions unless the error prefix names the error type.
    if "!{" in prefix_value and _ERROR_TYPE_EXPRESSION not in error_prefix:
        raise _bad("recommendationsErrorPrefix", error_prefix,
                   f"a prefix containing {_ERROR_TYPE_EXPRESSION} when recommendationsPrefix uses !{{...}} expressions")
    firehose = FirehoseConfig(
        buffer_size_mb=read.integer("firehoseBufferSizeMb", defaults.FIREHOSE_BUFFER_SIZE_MB, 1, 128),
        buffer_interval_seconds=read.integer("firehoseBufferIntervalSeconds",
                                             defaults.FIREHOSE_BUFFER_INTERVAL_SECONDS, 0, 900),
        processor_buffer_size_mb=read.number("processorBufferSizeMb", defaults.PROCESSOR_BUFFER_SIZE_MB,
                                             *PROCESSOR_BUFFER_RANGE_MB),
        processor_buffer_interval_seconds=read.integer("processorBufferIntervalSeconds",
                                                       defaults.PROCESSOR_BUFFER_INTERVAL_SECONDS, 0, 900),
        processor_retries=read.integer("processorRetries", defaults.PROCESSOR_RETRIES, 0, 300),
        prefix=prefix_value,
        error_prefix=error_prefix,
    )
    streaming = StreamingConfig(
        kinesis_stream_arn=read.text("kinesisStreamArn", None, _KINESIS_ARN_RE,
                                     "a Kinesis stream ARN such as arn:aws:kinesis:us-east-1:123456789012:stream/name"),
        kinesis_shard_count=read.integer("kinesisShardCount", defaults.KINESIS_SHARD_COUNT, 1, 64),
        inference_auth=_auth(read.choice("inferenceAuth", defaults.INFERENCE_AUTH, ("AWS_IAM", "NONE"))),
        top_k=read.integer("topK", defaults.TOP_K, *TOP_K_RANGE),
        firehose=firehose,
    )
    check_processor_response(firehose.processor_buffer_size_mb, streaming.top_k)

    producer = ProducerConfig(
        schedule=read.text("producerSchedule", None, _SCHEDULE_RATE_RE,
                           "an EventBridge rate expression such as rate(1 minute)"),
        events_per_invocation=read.integer("producerEventsPerInvocation", defaults.PRODUCER_EVENTS_PER_INVOCATION,
                                           1, 1000),
    )
    glue = GlueConfig(
        schedule=read.text("glueSchedule", None, _SCHEDULE_CRON_RE,
                           "a Glue cron expression such as cron(0 3 * * ? *)"),
        timeout_minutes=read.integer("glueTimeoutMinutes", defaults.GLUE_TIMEOUT_MINUTES, 1, 2880),
    )

    retention = read.integer("logRetentionDays", defaults.LOG_RETENTION_DAYS, 1, 3653)
    if retention not in LOG_RETENTION_DAYS:
        raise _bad("logRetentionDays", str(retention),
                   "one of the CloudWatch Logs retention values " + ", ".join(map(str, LOG_RETENTION_DAYS)))

    return StackConfig(
        stack=stack,
        prefix=prefix,
        region=region,
        ephemeral=read.boolean("ephemeral", default_ephemeral(stack)),
        log_retention_days=retention,
        lambda_architecture=_architecture(read.choice("lambdaArchitecture", defaults.LAMBDA_ARCHITECTURE,
                                                      ("x86_64", "arm64"))),
        plaintext_password_env=read.boolean("plaintextPasswordEnv", False),
        network=NetworkConfig(vpc_id=vpc_id, subnet_ids=subnet_ids, vpc_cidr=vpc_cidr),
        source_db=source_db,
        vector_db=vector_db,
        artifacts=ArtifactsConfig(existing_bucket=artifacts_bucket, local_dir=artifacts_dir),
        streaming=streaming,
        producer=producer,
        glue=glue,
    )


def _auth(value: str) -> FunctionUrlAuth:
    return "NONE" if value == "NONE" else "AWS_IAM"


def _architecture(value: str) -> Architecture:
    return "arm64" if value == "arm64" else "x86_64"


def _normalise_key(key: str) -> str:
    # The engine hands keys as `project:config:key` in some paths and `project:key` in others.
    namespace, _, rest = key.partition(":")
    if rest.startswith("config:"):
        rest = rest[len("config:"):]
    return f"{namespace}:{rest}"


def raw_config() -> dict[str, str]:
    """Every `recsys:` key plus `aws:region`, as strings, from what the Pulumi engine (or the mocks) provided."""
    from pulumi.runtime import config as runtime_config

    merged: dict[str, object] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw: dict[str, str] = {}
    for key, value in merged.items():
        full_key = _normalise_key(key)
        if full_key.startswith(f"{NAMESPACE}:") or full_key == "aws:region":
            raw[full_key] = value if isinstance(value, str) else json.dumps(value)
    return raw


def load_config() -> StackConfig:
    return parse_config(raw_config(), pulumi.get_stack())
