"""The stack's embeddings loader invoked by hand, as `aws lambda invoke` would on AWS: how the demo loads what it
trained (the event the program's post-deploy Invocation sends), and the soak's `--prepare`.

The loader refuses a file that would drop ids the live table serves (`ReplacementRefused`, docs/vectors.md) unless the
event says `force`. The demo re-seeds the source with its own `--scale`/`--seed` and retrains, so a changed catalogue
is what it asked for: it forces the load after such a refusal and says so.
"""

from __future__ import annotations

from typing import Any

from harness.workflows.functions import invoke
from harness.workflows.handle import StackHandle

REFUSAL = "ReplacementRefused"
# The program's post-deploy Invocation's event (components/streaming_inference.py): the artifacts bucket's two files.
EMBEDDING_KEYS = {"item_key": "embeddings/item_embeddings.csv", "user_key": "embeddings/user_embeddings.csv"}


class LoaderError(RuntimeError):
    """The loader could not be invoked, or failed: one message, no traceback."""


def is_refusal(error: BaseException) -> bool:
    """Whether a deploy or invocation failed because the loader refused a catalogue that drops live ids."""
    return REFUSAL in str(error)


def invoke_loader(handle: StackHandle, event: dict[str, Any]) -> dict[str, Any]:
    """The deployed loader's answer for `event` (`{}` loads the artifacts bucket's files; see docs/ARCHITECTURE.md)."""
    return invoke(handle, "embeddings_loader_function_name", event, what="the embeddings loader", error=LoaderError)


def load_event(handle: StackHandle, *, force: bool = False) -> dict[str, Any]:
    """The event the program's Invocation sends for the stack's artifacts bucket (plus `force`)."""
    event: dict[str, Any] = {"bucket": str(handle.output("artifacts_bucket_id")), **EMBEDDING_KEYS}
    if force:
        event["force"] = True
    return event
