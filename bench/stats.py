"""The arithmetic of repeated runs: each figure is the median of the measured runs, min/max its spread, and the number
to quote is its ratio to a baseline measured in the same run."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any


def spread(values: Iterable[float], digits: int = 3) -> dict[str, Any]:
    """Median, min, max (rounded to `digits`) and the number of runs; `{"runs": 0}` when nothing was measured."""
    items = sorted(float(v) for v in values)
    if not items:
        return {"runs": 0}
    return {"median": round(statistics.median(items), digits), "min": round(items[0], digits),
            "max": round(items[-1], digits), "runs": len(items)}


def ratio(ours: float | None, baseline: float | None, digits: int = 2) -> float | None:
    """ours / baseline, None when either is missing or the baseline is 0 (no figure rather than a wrong one)."""
    if ours is None or baseline is None or baseline == 0:
        return None
    return round(ours / baseline, digits)
