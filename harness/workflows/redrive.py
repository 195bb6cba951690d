"""Redrive through the stack's own function: the workflow behind `python -m harness redrive` and the soak.

The deployed `redrive` function (lambda_src/redrive.py) is invoked through the local Lambda API, as `aws lambda invoke`
would on AWS, so the same code decides locally and there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.workflows.functions import invoke


class RedriveError(RuntimeError):
    """The stack cannot run a redrive, or the function refused: one message, no traceback."""


def invoke_redrive(state_dir: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The deployed redrive function's report for `payload`, or `RedriveError` with its error message."""
    return invoke(state_dir, "redrive_function_name", payload, what="the redrive function", error=RedriveError)
