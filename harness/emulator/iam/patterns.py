"""IAM's string patterns: `*` and `?` wildcards, policy variables, and ARNs matched component by component.

- Actions match case-insensitively (`S3:getobject` is `s3:GetObject`); resources, ARNs and `StringLike` values
  case-sensitively.
- `${key}` in a Version 2012-10-17 policy's Resource or condition values is the request's value of that condition key;
  `${*}`, `${?}` and `${$}` are the literal characters. A variable the request has no (single) value for makes the
  element match nothing, as IAM documents. Substituted values are literal: a `*` in a value is not a wildcard.
- In an ARN (the Resource element, `ArnLike`), wildcards match within one `:`-separated segment, except a `*` that
  ends a segment (followed by `:` or the end of the pattern), which "can expand to match beyond the colon boundaries"
  (IAM User Guide, "Using wildcards in resource ARNs"): `log-group:/aws-glue/*` covers the group's log streams,
  `arn:aws:s3:::b/*/test/*` does not match a key with a colon before `/test/`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

# A pattern after substitution: a sequence of pieces, each either literal text or one wildcard ("*" or "?").
Piece = tuple[bool, str]  # (is_wildcard, text)

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def _pieces(text: str) -> list[Piece]:
    return [(char in "*?", char) for char in text]


def substitute(pattern: str, keys: Mapping[str, Sequence[str]] | None) -> tuple[Piece, ...] | None:
    """The pattern's pieces with its policy variables replaced (None: a variable has no single value in `keys`).
    `keys` None: variables are not interpreted (a Version 2008-10-17 policy), the text is taken as written."""
    if keys is None or "${" not in pattern:
        return tuple(_pieces(pattern))
    pieces: list[Piece] = []
    position = 0
    for match in _VARIABLE.finditer(pattern):
        pieces += _pieces(pattern[position:match.start()])
        position = match.end()
        name = match.group(1)
        if name in _LITERAL_ESCAPES:
            pieces.append((False, _LITERAL_ESCAPES[name]))
            continue
        values = keys.get(name.lower())
        if values is None or len(values) != 1:
            return None
        pieces += [(False, char) for char in values[0]]
    pieces += _pieces(pattern[position:])
    return tuple(pieces)


def substituted_text(pattern: str, keys: Mapping[str, Sequence[str]] | None) -> str | None:
    """The text with its policy variables replaced, wildcards taken literally (for StringEquals)."""
    pieces = substitute(pattern, keys)
    return None if pieces is None else "".join(text for _, text in pieces)


@functools.lru_cache(maxsize=4096)
def _compiled(pieces: tuple[Piece, ...], ignore_case: bool, arn: bool) -> re.Pattern[str]:
    parts = []
    for index, (wildcard, text) in enumerate(pieces):
        if not wildcard:
            parts.append(re.escape(text))
        elif text == "?":
            parts.append("[^:]" if arn else ".")
        else:
            ends_segment = index + 1 == len(pieces) or pieces[index + 1] == (False, ":")
            parts.append(".*" if not arn or ends_segment else "[^:]*")
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False,
               keys: Mapping[str, Sequence[str]] | None = None) -> bool:
    """`*` any run of characters (including none), `?` exactly one; everything else literal."""
    pieces = substitute(pattern, keys)
    return pieces is not None and _compiled(pieces, ignore_case, False).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """`s3:Get*` matches `s3:GetObject`; case-insensitive, as IAM compares actions."""
    return pattern == "*" or glob_match(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str, keys: Mapping[str, Sequence[str]] | None = None) -> bool:
    """IAM's Resource and ArnLike matching: case-sensitive, wildcards within a segment (see the module's doc)."""
    if pattern == "*":
        return True
    pieces = substitute(pattern, keys)
    return pieces is not None and _compiled(pieces, False, True).fullmatch(arn) is not None
