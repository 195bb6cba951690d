"""Stub: the Glue job script lands with the batch issue (see docs/ARCHITECTURE.md)."""
