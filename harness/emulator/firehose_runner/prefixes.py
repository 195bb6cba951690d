"""Where Firehose writes an object: its custom prefix rules and its object names.

This is the emulator's own reading of Firehose's documented rules, on purpose not shared with the Lambda code
(`recsys.redrive.hour_prefix` lists the hour prefixes the redrive reads): tests/unit/test_redrive.py checks the
redrive's prefixes against the keys evaluated here, which only proves something while the two are written
independently.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from harness.emulator.firehose_runner.errors import FirehoseConfigError

_EXPRESSION = re.compile(r"!\{([^}]*)\}")
_JAVA_FIELDS = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
RANDOM_ALPHABET = string.ascii_lowercase + string.digits


def java_datetime_format(pattern: str, when: datetime) -> str:
    """Format `when` with the subset of Java's DateTimeFormatter that Firehose prefixes use (yyyy yy MM dd HH mm ss,
    'quoted text'); any other pattern letter is an error, as it would be a surprise in an S3 key."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise FirehoseConfigError(f"unterminated quote in timestamp pattern {pattern!r}")
            out.append(pattern[i + 1 : end] or "'")
            i = end + 1
            continue
        if char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            token = pattern[i:j]
            if token not in _JAVA_FIELDS:
                raise FirehoseConfigError(
                    f"timestamp pattern {pattern!r}: {token!r} is not supported (use yyyy, yy, MM, dd, HH, mm, ss)"
                )
            out.append(when.strftime(_JAVA_FIELDS[token]))
            i = j
            continue
        out.append(char)
        i += 1
    return "".join(out)


def evaluate_prefix(
    template: str,
    when: datetime,
    *,
    error_output_type: str | None,
    random_string: Callable[[], str] | None = None,
) -> str:
    """Firehose's custom prefix rules: `!{timestamp:<pattern>}` (UTC), `!{firehose:random-string}`,
    `!{firehose:error-output-type}` (error prefix only); when the template has no timestamp expression,
    `YYYY/MM/DD/HH/` is appended, which makes an empty template the default prefix."""
    when = when.astimezone(UTC)
    draw = random_string or (lambda: "".join(secrets.choice(RANDOM_ALPHABET) for _ in range(11)))
    has_timestamp = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal has_timestamp
        namespace, _, value = match.group(1).partition(":")
        if namespace == "timestamp":
            has_timestamp = True
            return java_datetime_format(value, when)
        if namespace == "firehose" and value == "random-string":
            return draw()
        if namespace == "firehose" and value == "error-output-type":
            if error_output_type is None:
                raise FirehoseConfigError("!{firehose:error-output-type} is only allowed in ErrorOutputPrefix")
            return error_output_type
        raise FirehoseConfigError(f"prefix expression !{{{match.group(1)}}} is not supported locally")

    evaluated = _EXPRESSION.sub(substitute, template)
    if not has_timestamp:
        evaluated += when.strftime("%Y/%m/%d/%H/")
    return evaluated


def object_name(stream_name: str, version_id: str, when: datetime, unique: str | None = None) -> str:
    """`<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>`, as Firehose names the objects it writes."""
    return f"{stream_name}-{version_id}-{when.astimezone(UTC):%Y-%m-%d-%H-%M-%S}-{unique or uuid.uuid4()}"
