"""Stub: the inference Lambda handler lands with its issue (see docs/ARCHITECTURE.md)."""


def handler(event, context):  # pragma: no cover - replaced by the real handler
    raise NotImplementedError("the inference function is not implemented yet")
