"""The stack's own functions invoked through the local Lambda API, as `aws lambda invoke` would on AWS: one place for
the workflows that run a deployed function by hand (the redrive, the embeddings loader)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.emulator import state as st

# The functions' longest timeout is 300 s; the client waits a little longer so the function's answer, not ours, ends it.
INVOKE_TIMEOUT_S = 330


def invoke(state_dir: Path, output_name: str, payload: dict[str, Any], *, what: str,
           error: type[RuntimeError]) -> dict[str, Any]:
    """The answer (a JSON object) of the function the stack output `output_name` names, for `payload`; any failure
    (no such output, no control plane, the API refusing, the function's own error) raises `error` in one line."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from harness.cli.stack import DEFAULT_REGION, output_value
    from harness.emulator.daemon import read_daemon_info

    state = st.load_state(state_dir)
    name = output_value(state.get("outputs") or {}, output_name)
    if not name:
        raise error(f"the stack has no {output_name} output: run `python -m harness up` to deploy it")
    info = read_daemon_info(state_dir)
    if info is None:
        raise error("the local control plane is not running: run `python -m harness up`")
    client = boto3.client("lambda", endpoint_url=info.url, region_name=str(state.get("region") or DEFAULT_REGION),
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(read_timeout=INVOKE_TIMEOUT_S, retries={"max_attempts": 1}))
    try:
        response = client.invoke(FunctionName=str(name), Payload=json.dumps(payload).encode("utf-8"))
    except (BotoCoreError, ClientError) as err:
        raise error(f"the local Lambda API at {info.url} did not run {what} ({err}); see `python -m harness status`"
                    ) from None
    body = response["Payload"].read().decode("utf-8", errors="replace")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if response.get("FunctionError"):
        failure = answer if isinstance(answer, dict) else {"errorMessage": body[:500]}
        kind = f"{failure['errorType']}: " if failure.get("errorType") else ""
        raise error(f"{what} failed: {kind}{failure.get('errorMessage') or body[:500]}")
    if not isinstance(answer, dict):
        raise error(f"{what} answered something other than a JSON object: {body[:200]!r}")
    return answer
