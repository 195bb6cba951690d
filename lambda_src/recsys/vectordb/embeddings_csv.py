"""Embeddings CSV validation, streamed: header, ids, dimension, finite numbers, duplicate ids, each problem reported
with the file and row that has it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from recsys.vectordb.schema import EMBEDDING_DIM


class EmbeddingsFileError(ValueError):
    """An embeddings CSV is malformed; the message names the file, the row and what to fix. Nothing was loaded."""


@dataclass
class Chunk:
    """A validated block of rows: ids (str for items, int for users) and a float32 (n, dim) matrix."""

    ids: list[Any]
    vectors: np.ndarray


EXPECTED_HEADER = "id,embedding"
INT4_MAX = 2**31 - 1


def _row_error(source: str, row: int, message: str) -> EmbeddingsFileError:
    # Row 1 is the first data row; the file line adds the header.
    return EmbeddingsFileError(f"{source}, row {row} (line {row + 1}): {message}. Nothing was loaded; fix the file "
                               "and run the loader again.")


def _parse_id(raw: str, id_type: Literal["varchar", "int"], source: str, row: int) -> Any:
    if id_type == "int":
        text = raw.strip()
        plain = text.isascii() and (text.isdigit() or (text[:1] == "-" and text[1:].isdigit()))
        if not plain or not -INT4_MAX - 1 <= int(text) <= INT4_MAX:
            raise _row_error(source, row, f"id {raw!r} is not an integer user id")
        return int(text)
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        raw = raw[1:-1].replace('""', '"')
    if not raw or raw != raw.strip() or not raw.isprintable():
        raise _row_error(source, row, f"id {raw!r} is empty or has surrounding spaces or unprintable characters")
    return raw


def _vector_text(raw: str, source: str, row: int) -> str:
    text = raw.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        text = text[1:-1].strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise _row_error(source, row, 'embedding must look like "[x1,...,x32]" (quoted, in brackets)')
    return text[1:-1]


def _parse_vector_slow(text: str, dim: int, source: str, row: int) -> np.ndarray:
    parts = text.split(",")
    if len(parts) != dim:
        raise _row_error(source, row, f"embedding has {len(parts)} numbers, expected {dim}")
    values = np.empty(dim, dtype=np.float64)
    for i, part in enumerate(parts):
        try:
            values[i] = float(part)
        except ValueError:
            raise _row_error(source, row, f"embedding value #{i + 1} {part.strip()!r} is not a number") from None
    return values


def _check_finite(vectors: np.ndarray, rows: Sequence[int], source: str) -> np.ndarray:
    as32 = vectors.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(as32).all(axis=1))
    if len(bad):
        raise _row_error(source, rows[int(bad[0])],
                         "embedding contains NaN or infinity (or a number too large for float4)")
    return as32


def _parse_vectors(texts: list[str], rows: Sequence[int], dim: int, source: str) -> np.ndarray:
    """numpy parses the whole block at once; any irregularity re-parses row by row to name the row."""
    import warnings

    if all(t.count(",") == dim - 1 for t in texts):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                flat = np.fromstring(",".join(texts), sep=",", dtype=np.float64)  # noqa: NPY201 - text mode is kept
            except (ValueError, DeprecationWarning):
                flat = None
        if flat is not None and flat.size == len(texts) * dim:
            return _check_finite(flat.reshape(len(texts), dim), rows, source)
    parsed = [_parse_vector_slow(t, dim, source, row) for t, row in zip(texts, rows, strict=True)]
    return _check_finite(np.vstack(parsed), rows, source)


def _ids_fast(raw_ids: list[str], id_type: Literal["varchar", "int"]) -> list[Any] | None:
    """The ids of a block when every one is plainly valid (the common case), else None: the slow path explains."""
    if id_type == "int":
        if not all(i.isascii() and (i.isdigit() or (i[:1] == "-" and i[1:].isdigit())) for i in raw_ids):
            return None
        ids: list[Any] = [int(i) for i in raw_ids]
        return ids if all(-INT4_MAX - 1 <= i <= INT4_MAX for i in ids) else None
    ok = all(i and i[0] != '"' and i.isprintable() and i == i.strip() for i in raw_ids)
    return list(raw_ids) if ok else None


def _parse_lines(lines: list[str], first_row: int, seen: dict[Any, int], *, id_type: Literal["varchar", "int"],
                 source: str, dim: int) -> Chunk | None:
    """One block of data lines (row numbers from `first_row`; row n is file line n + 1)."""
    rows = range(first_row, first_row + len(lines))
    if all(lines):
        parts = [line.partition(",") for line in lines]
        rests = [p[2] for p in parts]
        ids = _ids_fast([p[0] for p in parts], id_type) if all(p[1] for p in parts) else None
        if ids is not None and all(r[:2] == '"[' and r[-2:] == ']"' for r in rests):
            fresh = set(ids)
            if len(fresh) == len(ids) and seen.keys().isdisjoint(fresh):
                vectors = _parse_vectors([r[2:-2] for r in rests], rows, dim, source)
                seen.update(zip(ids, rows, strict=True))
                return Chunk(ids, vectors)
    # Slow path, row by row: blank lines, quoted ids, spaces, or a problem whose row the message must name.
    ids, texts, kept_rows = [], [], []
    for row, line in zip(rows, lines, strict=True):
        if not line.strip():
            continue
        raw_id, sep, rest = line.partition(",")
        if not sep:
            raise _row_error(source, row, "expected 'id,\"[x1,...]\"', found no comma")
        item_id = _parse_id(raw_id, id_type, source, row)
        if item_id in seen:
            raise _row_error(source, row, f"duplicate id {item_id!r} (first on row {seen[item_id]})")
        seen[item_id] = row
        ids.append(item_id)
        texts.append(_vector_text(rest, source, row))
        kept_rows.append(row)
    if not ids:
        return None
    return Chunk(ids, _parse_vectors(texts, kept_rows, dim, source))


def parse_embeddings(lines: Iterable[bytes | str], *, id_type: Literal["varchar", "int"], source: str,
                     dim: int = EMBEDDING_DIM, chunk_rows: int = 20_000) -> Iterator[Chunk]:
    """Validate an `id,embedding` CSV while streaming it: header, ids, dimension, finite numbers, duplicate ids.

    Raises `EmbeddingsFileError` at the first problem; chunks already yielded must then be discarded by the caller
    (the loader does that by rolling back its transaction). Blank lines are skipped; row n is line n + 1 of the file.
    """
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        raise EmbeddingsFileError(f"{source} is empty: expected the header {EXPECTED_HEADER!r} and one row per id")
    header_line = (first.decode("utf-8") if isinstance(first, bytes) else first).rstrip("\r\n")
    if header_line.lstrip("\ufeff").strip().replace(" ", "").lower() != EXPECTED_HEADER:
        raise EmbeddingsFileError(
            f"{source}, line 1: header must be {EXPECTED_HEADER!r}, got {header_line[:60]!r}. Nothing was loaded; "
            "write the header line first (the trainer does)."
        )
    seen: dict[Any, int] = {}
    block: list[str] = []
    next_row = 1
    for raw_line in iterator:
        block.append((raw_line.decode("utf-8") if isinstance(raw_line, bytes) else raw_line).rstrip("\r\n"))
        if len(block) >= chunk_rows:
            chunk = _parse_lines(block, next_row, seen, id_type=id_type, source=source, dim=dim)
            next_row += len(block)
            block = []
            if chunk is not None:
                yield chunk
    if block:
        chunk = _parse_lines(block, next_row, seen, id_type=id_type, source=source, dim=dim)
        if chunk is not None:
            yield chunk
    if not seen:
        raise EmbeddingsFileError(f"{source} has a header but no rows; refusing to replace the table with nothing")

