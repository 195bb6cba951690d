"""Redrive: the pure logic that sends records of Firehose's error output back into the Kinesis stream, once.

Firehose writes each record it could not process under the error prefix as one JSON document per line (`attemptsMade`,
`arrivalTimestamp`, `errorCode`, `errorMessage`, `attemptEndingTimestamp`, `rawData` = base64 of the original Kinesis
record, `lambdaArn`). This module reads those documents, decides which records to send again, removes the sessions
that were already delivered, and records what it did in a marker per error object. The handler (`redrive.py`) only
lists, reads and writes S3 and calls Kinesis around these functions.

Choices (docs/streaming.md, "Redrive", says why):
- By default only infrastructure failures are redriven (every code but `Lambda.ProcessingFailed`: the records were
  fine, the database was not); `ProcessingFailed` records fail again unless something changed (a catalogue reload),
  so they are sent only when the run says `include_processing_failed`. A record without a readable `session_id`
  (poison) is never sent: it is reported with its object and line.
- Deduplication lives here, in the redrive, by `session_id`: a session found in the delivered output (from an hour
  before the earliest chosen record's arrival until now) is not sent, and one session found in several error records
  is sent once. The transformation stays stateless and the delivered output stays the single source of truth.
- Error objects are never changed. Next to each one a marker object (`<marker prefix><rest of its key>.json`) lists the
  lines already settled (sent, or found delivered); a later run skips them, and skips the object without reading it
  when no line it would choose is left.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from recsys import safejson

ERROR_OUTPUT_TYPE = "processing-failed"
PROCESSING_FAILED = "Lambda.ProcessingFailed"
# Firehose's error prefix when the delivery stream has none.
DEFAULT_ERROR_TEMPLATE = "processing-failed/"
MARKER_DIRECTORY = "redriven/"
MARKER_SUFFIX = ".json"
LEASE_NAME = ".lease"

DEFAULT_LOOKBACK_HOURS = 168
MAX_LOOKBACK_HOURS = 24 * 90
DEFAULT_MAX_RECORDS = 5_000
MAX_RECORDS_LIMIT = 100_000
DEFAULT_MAX_SCAN_BYTES = 2 * 1024**3
# Firehose names a delivered object after the *oldest* record of its buffer, and both buffers (processor and S3) wait
# at most 900 s: a record's delivered copy can sit in an hour prefix before its own arrival hour, never two before.
DELIVERY_LOOKBACK = timedelta(hours=1)
# An error object is named after its oldest record's *arrival*, and a record can fail long after it arrived (Kinesis
# keeps it 24 h, and the processor's retries add hours): error objects written since `since` are looked for in the hour
# prefixes from this much earlier, and kept by their LastModified.
FAILURE_LOOKBACK = timedelta(hours=30)
REPORTED_POISON_LIMIT = 50
MAX_ARRIVAL_MS = 253_402_300_799_999

Category = Literal["infrastructure", "processing_failed", "poison", "unreadable"]
CATEGORIES: tuple[Category, ...] = ("infrastructure", "processing_failed", "poison", "unreadable")
Settlement = Literal["sent", "already_delivered", "duplicate"]
SETTLEMENTS: tuple[Settlement, ...] = ("sent", "already_delivered", "duplicate")

OPTION_NAMES = ("dry_run", "since", "include_processing_failed", "max_records", "max_scan_bytes")


class RedriveError(RuntimeError):
    """A run that cannot go on; the message says what was wrong and what to do, in one line."""


class OptionsError(RedriveError):
    """The invocation's event is wrong."""


class SettingsError(RedriveError):
    """The function's environment is wrong."""


# ---- options and settings -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    since: datetime | None = None  # None: DEFAULT_LOOKBACK_HOURS before now
    include_processing_failed: bool = False
    max_records: int = DEFAULT_MAX_RECORDS
    max_scan_bytes: int = DEFAULT_MAX_SCAN_BYTES

    def window_start(self, now: datetime) -> datetime:
        return self.since if self.since is not None else now - timedelta(hours=DEFAULT_LOOKBACK_HOURS)

    def wanted(self) -> frozenset[Category]:
        return frozenset({"infrastructure", "processing_failed"} if self.include_processing_failed
                         else {"infrastructure"})


def _flag(event: Mapping[str, Any], name: str) -> bool:
    value = event.get(name, False)
    if not isinstance(value, bool):
        raise OptionsError(f"'{name}' must be true or false, got {value!r}")
    return value


def _count(event: Mapping[str, Any], name: str, default: int, limit: int) -> int:
    value = event.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise OptionsError(f"'{name}' must be an integer from 1 to {limit}, got {value!r}")
    return value


def parse_time(text: Any, what: str = "'since'") -> datetime:
    """ISO 8601 (`2026-11-28T13:00:00Z`, an offset, or no zone meaning UTC) -> an aware UTC datetime."""
    if not isinstance(text, str):
        raise OptionsError(f"{what} must be an ISO 8601 time such as 2026-11-28T13:00:00Z, got {text!r}")
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise OptionsError(f"{what} must be an ISO 8601 time such as 2026-11-28T13:00:00Z, got {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def parse_options(event: Any, now: datetime) -> Options:
    """The invocation event -> Options. Unknown keys are refused: a typo such as `dryrun` must not turn a dry run into
    a real one. A scheduled invocation sends `{}`."""
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise OptionsError(f"the event must be a JSON object with any of {', '.join(OPTION_NAMES)}, got "
                           f"{type(event).__name__}")
    unknown = sorted(set(event) - set(OPTION_NAMES))
    if unknown:
        raise OptionsError(f"unknown option(s) {', '.join(unknown)}; the options are {', '.join(OPTION_NAMES)}")
    since = None
    if event.get("since") is not None:
        since = parse_time(event["since"])
        if since > now:
            raise OptionsError(f"'since' ({since:%Y-%m-%dT%H:%M:%SZ}) is in the future")
        if now - since > timedelta(hours=MAX_LOOKBACK_HOURS):
            raise OptionsError(f"'since' may reach back at most {MAX_LOOKBACK_HOURS // 24} days (each hour is one "
                               "listing of the error and delivered prefixes)")
    return Options(
        dry_run=_flag(event, "dry_run"),
        since=since,
        include_processing_failed=_flag(event, "include_processing_failed"),
        max_records=_count(event, "max_records", DEFAULT_MAX_RECORDS, MAX_RECORDS_LIMIT),
        max_scan_bytes=_count(event, "max_scan_bytes", DEFAULT_MAX_SCAN_BYTES, 64 * 1024**3),
    )


@dataclass(frozen=True)
class Settings:
    bucket: str
    error_template: str
    recommendations_template: str
    marker_prefix: str
    stream_name: str

    @property
    def lease_key(self) -> str:
        return self.marker_prefix + LEASE_NAME


def marker_prefix_for(error_template: str) -> str:
    """`<literal start of the error prefix>redriven/`: markers sit beside the error output (`errors/redriven/...` by
    default), so whatever treats that root as "not delivered records" also skips them."""
    return (error_template or DEFAULT_ERROR_TEMPLATE).split("!{", 1)[0] + MARKER_DIRECTORY


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    names = ("RECOMMENDATIONS_BUCKET", "ERROR_OUTPUT_PREFIX", "RECOMMENDATIONS_PREFIX", "KINESIS_STREAM_NAME")
    missing = [name for name in names if name not in environ or (name != "RECOMMENDATIONS_PREFIX"
                                                                 and not environ[name])]
    if missing:
        raise SettingsError(f"the function's environment lacks {', '.join(missing)}: redeploy the stack")
    error_template = environ["ERROR_OUTPUT_PREFIX"]
    marker_prefix = environ.get("REDRIVEN_PREFIX") or marker_prefix_for(error_template)
    # Fail now on a template we cannot read, not after half a run.
    now = datetime(2000, 1, 1, tzinfo=UTC)
    hour_prefix(error_template, now, error_output_type=ERROR_OUTPUT_TYPE)
    hour_prefix(environ["RECOMMENDATIONS_PREFIX"], now, error_output_type=None)
    return Settings(bucket=environ["RECOMMENDATIONS_BUCKET"], error_template=error_template,
                    recommendations_template=environ["RECOMMENDATIONS_PREFIX"], marker_prefix=marker_prefix,
                    stream_name=environ["KINESIS_STREAM_NAME"])


# ---- prefixes: where one hour's objects are ------------------------------------------------------------------------

_EXPRESSION = re.compile(r"!\{([^}]*)\}")
_HOUR_FIELDS = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H"}
_FINER_FIELDS = ("mm", "ss")


class _Truncate(Exception):
    """The template depends on more than the hour from here on: the hour's listing prefix ends before this point."""


def _java_hour(pattern: str, when: datetime, out: list[str]) -> None:
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise SettingsError(f"unterminated quote in timestamp pattern {pattern!r}")
            out.append(pattern[i + 1 : end] or "'")
            i = end + 1
            continue
        if char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            token = pattern[i:j]
            if token in _FINER_FIELDS:
                raise _Truncate
            if token not in _HOUR_FIELDS:
                raise SettingsError(f"timestamp pattern {pattern!r}: {token!r} is not supported "
                                    "(use yyyy, yy, MM, dd, HH, mm, ss)")
            out.append(when.strftime(_HOUR_FIELDS[token]))
            i = j
            continue
        out.append(char)
        i += 1


def hour_prefix(template: str, hour: datetime, *, error_output_type: str | None) -> str:
    """The longest key prefix shared by every object Firehose writes under `template` for records of `hour` (UTC).

    Firehose's rules: `!{timestamp:<pattern>}`, `!{firehose:random-string}`, `!{firehose:error-output-type}`, and
    `YYYY/MM/DD/HH/` appended when there is no timestamp expression. The prefix stops before anything finer than the
    hour (minutes, seconds) or random; a template coarser than the hour gives the same prefix for several hours."""
    if error_output_type is not None and not template:
        template = DEFAULT_ERROR_TEMPLATE
    when = hour.astimezone(UTC)
    out: list[str] = []
    position = 0
    has_timestamp = "!{timestamp:" in template
    try:
        for match in _EXPRESSION.finditer(template):
            out.append(template[position : match.start()])
            position = match.end()
            namespace, _, value = match.group(1).partition(":")
            if namespace == "timestamp":
                _java_hour(value, when, out)
            elif namespace == "firehose" and value == "error-output-type" and error_output_type is not None:
                out.append(error_output_type)
            elif namespace == "firehose" and value == "random-string":
                raise _Truncate
            else:
                raise SettingsError(f"prefix expression !{{{match.group(1)}}} is not supported in {template!r}")
        out.append(template[position:])
        if not has_timestamp:
            out.append(when.strftime("%Y/%m/%d/%H/"))
    except _Truncate:
        pass
    return "".join(out)


def floor_hour(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Every UTC hour from `start`'s to `end`'s, both included."""
    hour, last = floor_hour(start), floor_hour(end)
    hours = []
    while hour <= last:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def listing_prefixes(template: str, start: datetime, end: datetime, *, error_output_type: str | None) -> list[str]:
    """The distinct prefixes to list for the hours from `start` to `end`, in time order; a prefix that another one
    already covers (it starts with it) is left out, so no object is listed twice."""
    prefixes: list[str] = []
    for hour in hours_between(start, end):
        prefix = hour_prefix(template, hour, error_output_type=error_output_type)
        if prefix not in prefixes:
            prefixes.append(prefix)
    return [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]


# ---- error documents ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FailedRecord:
    """One line of an error object. `data` is the original Kinesis record (None when `rawData` is unreadable)."""

    line: int
    category: Category
    error_code: str | None
    arrival_ms: int | None
    data: bytes | None
    session_id: str | None
    reason: str | None = None


def decompress(key: str, body: bytes) -> bytes:
    """Error and delivered objects are GZIP when the delivery stream compresses (`.gz`), plain otherwise."""
    if key.endswith(".gz") or body[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(body)
        except (OSError, EOFError):
            return body
    return body


def session_id_of(data: bytes) -> tuple[str | None, str | None]:
    """(session_id, None), or (None, why there is none): the record must be a UTF-8 JSON object with a non-empty
    string `session_id`, parsed with the same guards as the transformation's."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "the record is not UTF-8 text"
    try:
        payload = safejson.loads(text)
    except safejson.NotJson as err:
        return None, f"the record is {err}"
    if not isinstance(payload, dict):
        return None, f"the record is a JSON {type(payload).__name__}, not an object"
    session_id = payload.get("session_id")
    if not isinstance(session_id, str) or not session_id.strip():
        return None, "the record has no string 'session_id'"
    return session_id, None


def parse_error_line(line_number: int, text: str) -> FailedRecord:
    try:
        document = safejson.loads(text)
    except safejson.NotJson as err:
        return FailedRecord(line_number, "unreadable", None, None, None, None, f"the error document is {err}")
    if not isinstance(document, dict):
        return FailedRecord(line_number, "unreadable", None, None, None, None, "the error document is not an object")
    code = document.get("errorCode")
    code = code if isinstance(code, str) else None
    arrival = document.get("arrivalTimestamp")
    # Milliseconds since the epoch up to year 9999; anything else is treated as unknown (no datetime can hold it).
    arrival_ms = arrival if (isinstance(arrival, int) and not isinstance(arrival, bool)
                             and 0 <= arrival <= MAX_ARRIVAL_MS) else None
    raw = document.get("rawData")
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
    except (binascii.Error, ValueError):
        data = None
    if data is None:
        return FailedRecord(line_number, "unreadable", code, arrival_ms, None, None, "'rawData' is not base64")
    session_id, reason = session_id_of(data)
    if session_id is None:
        return FailedRecord(line_number, "poison", code, arrival_ms, data, None, reason)
    category: Category = "processing_failed" if code == PROCESSING_FAILED else "infrastructure"
    return FailedRecord(line_number, category, code, arrival_ms, data, session_id)


def parse_error_object(body: bytes) -> list[FailedRecord]:
    """Every non-empty line of an error object, numbered from 1 (the numbers are what markers record)."""
    text = body.decode("utf-8", errors="replace")
    return [parse_error_line(number, line) for number, line in enumerate(text.split("\n"), start=1)
            if line.strip()]


# ---- markers --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Marker:
    """What earlier runs settled in one error object, and how many lines of each category are still open."""

    settled: Mapping[int, Settlement] = field(default_factory=dict)
    open: Mapping[Category, int] = field(default_factory=dict)

    def needs_reading(self, wanted: frozenset[Category]) -> bool:
        return any(self.open.get(category, 0) > 0 for category in wanted)


def marker_key(settings: Settings, error_key: str) -> str:
    root = settings.marker_prefix.removesuffix(MARKER_DIRECTORY)
    return settings.marker_prefix + error_key.removeprefix(root) + MARKER_SUFFIX


def parse_marker(body: bytes) -> Marker | None:
    """None when the marker is unreadable: the object is then read again and its lines decided again (a run never
    sends a line that a readable marker settled; an unreadable one can only cost a re-check against the output)."""
    try:
        data = safejson.loads(body.decode("utf-8"))
        settled: dict[int, Settlement] = {int(line): value for line, value in data["settled"].items()
                                          if value in SETTLEMENTS}
        opened: dict[Category, int] = {name: int(count) for name, count in data["open"].items()
                                       if name in CATEGORIES}
    except (safejson.NotJson, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    return Marker(settled=settled, open=opened)


def marker_body(error_key: str, marker: Marker, *, run_id: str, now: datetime) -> bytes:
    return json.dumps({
        "error_key": error_key,
        "updated_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_id": run_id,
        "settled": {str(line): value for line, value in sorted(marker.settled.items())},
        "open": dict(sorted(marker.open.items())),
    }, separators=(",", ":")).encode("utf-8")


# ---- choosing, deduplicating, planning ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ErrorObject:
    key: str
    records: Sequence[FailedRecord]
    marker: Marker | None = None


def choose(objects: Iterable[ErrorObject], wanted: frozenset[Category]) -> list[tuple[str, FailedRecord]]:
    """(key, record) of every record not settled yet whose category the run wants, in object and line order."""
    chosen = []
    for obj in objects:
        settled = obj.marker.settled if obj.marker else {}
        chosen += [(obj.key, r) for r in obj.records if r.line not in settled and r.category in wanted]
    return chosen


def scan_start(chosen: Sequence[tuple[str, FailedRecord]], now: datetime, window_start: datetime
               ) -> datetime | None:
    """Where the delivered output must be read from to see every copy of the chosen sessions: the hour before the
    earliest arrival (delivered objects are named after their oldest record); `window_start` when a record has no
    arrival time. None when nothing is chosen."""
    if not chosen:
        return None
    earliest = min((datetime.fromtimestamp(r.arrival_ms / 1000, tz=UTC) if r.arrival_ms is not None
                    else window_start) for _, r in chosen)
    return floor_hour(min(earliest, now)) - DELIVERY_LOOKBACK


def _json_lines(text: str) -> Iterator[Any]:
    for line in text.split("\n"):
        if line.strip():
            try:
                yield json.loads(line)
            except (ValueError, RecursionError):
                continue


def delivered_ids_in(body: bytes, wanted_ids: set[str]) -> set[str]:
    """The wanted session ids that appear in one delivered object (JSON Lines; other lines are ignored). Only the
    intersection is kept, so memory stays small however much output is read."""
    found = set()
    for value in _json_lines(body.decode("utf-8", errors="replace")):
        if isinstance(value, dict):
            session_id = value.get("session_id")
            if isinstance(session_id, str) and session_id in wanted_ids:
                found.add(session_id)
    return found


@dataclass(frozen=True)
class Send:
    key: str
    line: int
    session_id: str
    data: bytes

    def entry(self) -> dict[str, Any]:
        # The partition key the producer uses: a session stays on one shard, as when it was first sent.
        return {"Data": self.data, "PartitionKey": self.session_id}


@dataclass
class Plan:
    sends: list[Send] = field(default_factory=list)
    # Lines settled without sending: the session is already delivered, or another line of this run sends it.
    skipped: dict[str, dict[int, Settlement]] = field(default_factory=dict)
    deferred: int = 0  # chosen but over max_records: the next run takes them

    def sends_by_object(self) -> dict[str, list[Send]]:
        grouped: dict[str, list[Send]] = {}
        for send in self.sends:
            grouped.setdefault(send.key, []).append(send)
        return grouped

    def count(self, settlement: Settlement) -> int:
        return sum(1 for lines in self.skipped.values() for value in lines.values() if value == settlement)


def plan(chosen: Iterable[tuple[str, FailedRecord]], delivered: set[str], max_records: int) -> Plan:
    """Each chosen session once: not when it is already delivered, not twice in one run, at most `max_records`."""
    result = Plan()
    sending: set[str] = set()
    for key, record in chosen:
        assert record.session_id is not None and record.data is not None  # only sessions are ever chosen
        if record.session_id in delivered:
            result.skipped.setdefault(key, {})[record.line] = "already_delivered"
        elif record.session_id in sending:
            result.skipped.setdefault(key, {})[record.line] = "duplicate"
        elif len(result.sends) >= max_records:
            result.deferred += 1
        else:
            sending.add(record.session_id)
            result.sends.append(Send(key, record.line, record.session_id, record.data))
    return result


def updated_marker(obj: ErrorObject, newly_settled: Mapping[int, Settlement]) -> Marker:
    """The object's marker after a run settled `newly_settled`: lines are only ever added, and `open` counts what
    is left by category (poison and unreadable lines stay open for ever, and are never chosen)."""
    settled: dict[int, Settlement] = {**(obj.marker.settled if obj.marker else {}), **newly_settled}
    remaining = Counter(r.category for r in obj.records if r.line not in settled)
    return Marker(settled=settled, open={c: remaining[c] for c in CATEGORIES if remaining[c]})


def poison_report(objects: Iterable[ErrorObject], limit: int = REPORTED_POISON_LIMIT) -> list[dict[str, Any]]:
    """Where the records that are never redriven are, and why (no record content: it is customer data)."""
    found = []
    for obj in objects:
        settled = obj.marker.settled if obj.marker else {}
        for record in obj.records:
            if record.category in ("poison", "unreadable") and record.line not in settled:
                found.append({"key": obj.key, "line": record.line, "error_code": record.error_code,
                              "reason": record.reason})
                if len(found) >= limit:
                    return found
    return found
