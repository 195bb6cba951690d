"""Stub: the seeder Lambda handler lands with its issue (see docs/ARCHITECTURE.md)."""


def handler(event, context):  # pragma: no cover - replaced by the real handler
    raise NotImplementedError("the seeder function is not implemented yet")
