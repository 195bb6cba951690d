"""Redrive through the stack's own function: the workflow behind `harness redrive` and the soak.

The deployed `redrive` function (lambda_src/redrive.py) is invoked through the stack's Lambda API, as `aws lambda
invoke` would, so the same code decides locally and on AWS.
"""

from __future__ import annotations

from typing import Any

from harness.workflows.functions import invoke
from harness.workflows.handle import StackHandle


class RedriveError(RuntimeError):
    """The stack cannot run a redrive, or the function refused: one message, no traceback."""


def invoke_redrive(handle: StackHandle, payload: dict[str, Any]) -> dict[str, Any]:
    """The deployed redrive function's report for `payload`, or `RedriveError` with its error message."""
    return invoke(handle, "redrive_function_name", payload, what="the redrive function", error=RedriveError)
