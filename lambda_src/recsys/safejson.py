"""JSON from untrusted clients, parsed so that no input can raise anything but `NotJson`.

Python's `json` module turns some inputs into exceptions other than `JSONDecodeError` (an integer literal over 4,300
digits is a `ValueError`, nesting deeper than the recursion limit a `RecursionError`) and accepts what JSON does not
(`NaN`, `Infinity`, a float literal such as `1e400` that becomes `inf`). The transformation and the inference API
both read client JSON, and one bad record must fail alone with a named reason: both parse through `loads` here.

`float32` says whether a decoded number survives the trip into the model's float32 arrays: `1e300` is a finite
Python float but `inf` in float32, and `10**400` does not even convert to a Python float.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Longer integer literals are refused before Python converts them (conversion is quadratic in the digits). No field of
# ours needs more than 20 digits; 100 leaves room for identifiers a producer might add without inviting the cost.
MAX_INT_DIGITS = 100
FLOAT32_MAX = 3.4028234663852886e38


class NotJson(ValueError):
    """The text is not JSON we accept. The message names the problem, never the content (it is customer data)."""


def _parse_int(literal: str) -> int:
    digits = len(literal) - (literal[0] == "-")
    if digits > MAX_INT_DIGITS:
        raise NotJson(f"an integer literal has {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise NotJson("a number literal is too large for a 64-bit float")
    return value


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; they are not JSON, Athena cannot read them, and we could not write them back.
    raise NotJson(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_reject_constant)


def loads(text: str) -> Any:
    """The value of `text`, or `NotJson` naming why there is none; never any other exception."""
    try:
        return _DECODER.decode(text)
    except NotJson:
        raise
    except json.JSONDecodeError as err:
        raise NotJson(f"not valid JSON ({err.msg} at position {err.pos})") from None
    except RecursionError:
        raise NotJson("JSON nested too deeply") from None
    except (ValueError, TypeError, OverflowError, MemoryError) as err:
        raise NotJson(f"not valid JSON ({type(err).__name__})") from None


def float32(value: Any) -> float | None:
    """`value` as a Python float when it is a JSON number (not a boolean) finite in float32, otherwise None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        return None
    return number
