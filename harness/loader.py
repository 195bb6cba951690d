"""The stack's embeddings loader invoked by hand, as `aws lambda invoke` would on AWS: the workflow the soak's
`--prepare` and the demo use (the deploy's own post-deploy Invocation is the usual path).

The loader refuses a file that would drop ids the live table serves (`ReplacementRefused`, docs/vectors.md) unless the
event says `force`. The demo re-seeds the source with its own `--scale`/`--seed` and retrains, so a changed catalogue
is what it asked for: it forces the load after such a refusal and says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import state as st

REFUSAL = "ReplacementRefused"


class LoaderError(RuntimeError):
    """The loader could not be invoked, or failed: one message, no traceback."""


def is_refusal(error: BaseException) -> bool:
    """Whether a deploy or invocation failed because the loader refused a catalogue that drops live ids."""
    return REFUSAL in str(error)


def invoke_loader(state_dir: Path, event: dict[str, Any]) -> dict[str, Any]:
    """The deployed loader's answer for `event` (`{}` loads the artifacts bucket's files; see docs/ARCHITECTURE.md)."""
    import boto3

    from harness.daemon import read_daemon_info

    state = st.load_state(state_dir)
    entry = (state.get("outputs") or {}).get("embeddings_loader_function_name")
    name = entry.get("value") if isinstance(entry, dict) else None
    info = read_daemon_info(state_dir)
    if not name or info is None:
        raise LoaderError("the embeddings loader cannot be invoked (no function output or no running control plane): "
                          "run `python -m harness up`")
    client = boto3.client("lambda", endpoint_url=info.url, region_name=str(state.get("region") or "us-east-1"),
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    response = client.invoke(FunctionName=str(name), Payload=json.dumps(event).encode("utf-8"))
    payload = response["Payload"].read().decode("utf-8", errors="replace")
    if response.get("FunctionError"):
        raise LoaderError(f"the embeddings loader failed: {payload[:500]}")
    try:
        answer = json.loads(payload)
    except ValueError:
        answer = payload
    return answer if isinstance(answer, dict) else {"result": answer}
