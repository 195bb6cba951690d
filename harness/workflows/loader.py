"""The stack's embeddings loader invoked by hand, as `aws lambda invoke` would on AWS: the workflow the soak's
`--prepare` and the demo use (the deploy's own post-deploy Invocation is the usual path).

The loader refuses a file that would drop ids the live table serves (`ReplacementRefused`, docs/vectors.md) unless the
event says `force`. The demo re-seeds the source with its own `--scale`/`--seed` and retrains, so a changed catalogue
is what it asked for: it forces the load after such a refusal and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.workflows.functions import invoke

REFUSAL = "ReplacementRefused"


class LoaderError(RuntimeError):
    """The loader could not be invoked, or failed: one message, no traceback."""


def is_refusal(error: BaseException) -> bool:
    """Whether a deploy or invocation failed because the loader refused a catalogue that drops live ids."""
    return REFUSAL in str(error)


def invoke_loader(state_dir: Path, event: dict[str, Any]) -> dict[str, Any]:
    """The deployed loader's answer for `event` (`{}` loads the artifacts bucket's files; see docs/ARCHITECTURE.md)."""
    return invoke(state_dir, "embeddings_loader_function_name", event, what="the embeddings loader", error=LoaderError)
