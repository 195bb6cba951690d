"""Stub: the loader Lambda handler lands with its issue (see docs/ARCHITECTURE.md)."""


def handler(event, context):  # pragma: no cover - replaced by the real handler
    raise NotImplementedError("the loader function is not implemented yet")
