"""Redrive through the stack's own function: the workflow behind `python -m harness redrive` and the soak.

The deployed `redrive` function (lambda_src/redrive.py) is invoked through the local Lambda API, as `aws lambda invoke`
would on AWS, so the same code decides locally and there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import state as st

# The function's own timeout is 300 s; the client waits a little longer so the function's answer, not ours, ends it.
INVOKE_TIMEOUT_S = 330


class RedriveError(RuntimeError):
    """The stack cannot run a redrive, or the function refused: one message, no traceback."""


def invoke_redrive(state_dir: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """The deployed redrive function's report for `payload`, or `RedriveError` with its error message."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from harness.commands.stack import DEFAULT_REGION, output_value
    from harness.daemon import read_daemon_info

    state = st.load_state(state_dir)
    name = output_value(state.get("outputs") or {}, "redrive_function_name")
    if not name:
        raise RedriveError("the stack has no redrive_function_name output: run `python -m harness up` to "
                                  "deploy it")
    info = read_daemon_info(state_dir)
    if info is None:
        raise RedriveError("the local control plane is not running: run `python -m harness up`")
    client = boto3.client("lambda", endpoint_url=info.url, region_name=str(state.get("region") or DEFAULT_REGION),
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(read_timeout=INVOKE_TIMEOUT_S, retries={"max_attempts": 1}))
    try:
        response = client.invoke(FunctionName=str(name), Payload=json.dumps(payload).encode("utf-8"))
    except (BotoCoreError, ClientError) as err:
        raise RedriveError(f"the local Lambda API at {info.url} did not run the redrive ({err}); see "
                                  "`python -m harness status`") from None
    body = response["Payload"].read().decode("utf-8", errors="replace")
    if response.get("FunctionError"):
        try:
            error = json.loads(body)
        except ValueError:
            error = {"errorMessage": body}
        raise RedriveError(f"the redrive function failed: {error.get('errorMessage') or body[:500]}")
    report: dict[str, Any] = json.loads(body)
    return report
