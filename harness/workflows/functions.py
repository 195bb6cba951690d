"""The stack's own functions invoked by name from its outputs, as `aws lambda invoke` would: one place for the
workflows that run a deployed function by hand (the redrive, the embeddings loader) and want its JSON answer."""

from __future__ import annotations

import json
from typing import Any

from harness.workflows.handle import HandleError, StackHandle
from harness.workflows.invoke import InvokeError, invoke_function


def invoke(handle: StackHandle, output_name: str, payload: dict[str, Any], *, what: str,
           error: type[RuntimeError]) -> dict[str, Any]:
    """The answer (a JSON object) of the function the stack output `output_name` names, for `payload`; any failure
    (no such output, the Lambda API refusing, the function's own error) raises `error` in one line."""
    try:
        name = str(handle.output(output_name))
    except HandleError as err:
        raise error(str(err)) from None
    try:
        answer = invoke_function(handle, name, json.dumps(payload).encode("utf-8"))
    except InvokeError as err:
        raise error(f"{what} did not run ({err})") from None
    body = answer.payload.decode("utf-8", errors="replace")
    parsed = answer.payload_json()
    if answer.function_error:
        failure = parsed if isinstance(parsed, dict) else {"errorMessage": body[:500]}
        kind = f"{failure['errorType']}: " if failure.get("errorType") else ""
        raise error(f"{what} failed: {kind}{failure.get('errorMessage') or body[:500]}")
    if not isinstance(parsed, dict):
        raise error(f"{what} answered something other than a JSON object: {body[:200]!r}")
    return parsed
