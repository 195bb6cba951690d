"""PostgreSQL's binary COPY format for `(id, embedding)` rows: the loader writes it, the in-memory catalogue reads
it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np

from recsys.vectordb.embeddings_csv import Chunk

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"


def vector_field_dtype(dim: int) -> list[tuple[str, str] | tuple[str, str, tuple[int]]]:
    # pgvector's binary send format (what pgvector-python's Vector.to_binary writes): int16 dim, int16 0, float4[dim].
    return [("length", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (dim,))]


def encode_copy_rows(chunk: Chunk, id_type: Literal["varchar", "int"]) -> bytes:
    """The chunk as binary COPY tuples `(id, embedding)`, vectorised since this runs for every one of 1M rows.

    Rows come out grouped by the byte length of their id (one numpy record array per length), so their order differs
    from the chunk's when ids differ in length: COPY does not care about order.
    """
    n, dim = chunk.vectors.shape
    vector_fields = vector_field_dtype(dim)
    if id_type == "int":
        rows = np.zeros(n, dtype=np.dtype([("fields", ">i2"), ("id_length", ">i4"), ("id", ">i4"), *vector_fields]))
        rows["id"] = np.asarray(chunk.ids, dtype=np.int64)
        rows["id_length"] = 4
        # (rows, their positions in the chunk), None meaning all of them in order.
        groups: list[tuple[np.ndarray, np.ndarray | None]] = [(rows, None)]
    else:
        encoded = np.array([item_id.encode("utf-8") for item_id in chunk.ids], dtype=object)
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n)
        groups = []
        for length in np.unique(lengths):
            members = np.flatnonzero(lengths == length)
            dtype = np.dtype([("fields", ">i2"), ("id_length", ">i4"), ("id", f"S{int(length)}"), *vector_fields])
            rows = np.zeros(len(members), dtype=dtype)
            rows["id"] = encoded[members]
            rows["id_length"] = int(length)
            groups.append((rows, members))
    out = []
    for rows, positions in groups:
        rows["fields"] = 2
        rows["length"] = 4 + 4 * dim
        rows["dim"] = dim
        rows["values"] = chunk.vectors if positions is None else chunk.vectors[positions]
        out.append(rows.tobytes())
    return b"".join(out)


class CopyStream:
    """File-like `read(size)` over an iterator of byte blocks, as psycopg2's copy_expert wants."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._buffer = bytearray()
        # psycopg2 turns an exception in read() into a generic failed COPY; keep ours to re-raise it as it was.
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                block = next(self._blocks, None)
            except BaseException as exc:
                self.error = exc
                raise
            if block is None:
                break
            self._buffer += block
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out
