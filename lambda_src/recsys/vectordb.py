"""PostgreSQL + pgvector: the connection the Lambda functions use, the schema, and the batch similarity queries.

Metrics (higher score is always better):
- user -> items (`items_for_users`): inner product, `score = user . item`, because the model predicts
  `rating = offset + user . item`; the best-scored item is the one with the highest predicted rating.
- item -> items (`similar_items`): cosine similarity, `score = 1 - cosine_distance` in [-1, 1], so a popular item with a
  long vector does not crowd out the items that really resemble the query item.

Each function is one SQL statement for the whole batch (`unnest ... WITH ORDINALITY` + `CROSS JOIN LATERAL`), and each
lateral subquery is `ORDER BY embedding <op> query LIMIT k`, the shape the HNSW indexes serve.

Use an autocommit connection (`connect_from_env` returns one): a reader that keeps a transaction open holds a lock on
`item_emb` that makes the loader's swap wait.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import psycopg2
import psycopg2.errors
import psycopg2.extensions

from recsys import calibration
from recsys.calibration import Metric

EMBEDDING_DIM = 32
MAX_K = 1000
# Only for tables the loader did not calibrate (loaded by sql/embeddings.sql): the loader records, per index, the
# smallest ef_search that reaches recall@10 >= 0.95 on the loaded data (recsys.calibration), and the queries use that.
# 200 is what 1M random vectors need with the default graph (bench/vectors.py, docs/vectors.md).
DEFAULT_EF_SEARCH = 200
TableName = Literal["item_emb", "user_emb"]


class VectorDbConfigError(ValueError):
    """The vector database settings in the environment are missing or malformed."""


class SwapLockTimeout(RuntimeError):
    """The loader could not get the live table's lock for the swap; the load was rolled back."""


class QueryInputError(ValueError):
    """A query argument is unusable (wrong dimension, non-finite number, bad k)."""


class ReplacementRefused(ValueError):
    """The new file would drop ids the live table serves (or most of its rows); the load was rolled back."""


# ---- connection ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectionSettings:
    host: str
    port: int
    dbname: str
    user: str
    password: str | None
    secret_arn: str | None

    def __repr__(self) -> str:  # the password never reaches a log line through repr()
        return (f"ConnectionSettings(host={self.host!r}, port={self.port}, dbname={self.dbname!r}, user={self.user!r}, "
                f"password={'***' if self.password else None}, secret_arn={self.secret_arn!r})")


def settings_from_env(env: Mapping[str, str]) -> ConnectionSettings:
    """Read VECTOR_DB_* as docs/ARCHITECTURE.md defines them; raise with the variable's name when one is wrong."""
    missing = [name for name in ("VECTOR_DB_HOST", "VECTOR_DB_USER") if not env.get(name)]
    if not env.get("VECTOR_DB_PASSWORD") and not env.get("VECTOR_DB_SECRET_ARN"):
        missing.append("VECTOR_DB_SECRET_ARN (or VECTOR_DB_PASSWORD)")
    if missing:
        raise VectorDbConfigError(f"vector database environment incomplete: set {', '.join(missing)}")
    port_text = env.get("VECTOR_DB_PORT", "5432")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise VectorDbConfigError(f"VECTOR_DB_PORT must be a port number 1-65535, got {port_text!r}")
    return ConnectionSettings(
        host=env["VECTOR_DB_HOST"],
        port=int(port_text),
        dbname=env.get("VECTOR_DB_NAME") or "postgres",
        user=env["VECTOR_DB_USER"],
        password=env.get("VECTOR_DB_PASSWORD") or None,
        secret_arn=env.get("VECTOR_DB_SECRET_ARN") or None,
    )


@functools.cache
def _secret_password(secret_arn: str) -> str:
    """The password from the RDS-style JSON secret, fetched once per container (Secrets Manager calls cost time)."""
    import boto3

    raw = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    try:
        password = json.loads(raw)["password"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise VectorDbConfigError(f"secret {secret_arn} is not RDS-style JSON with a 'password' field") from exc
    return str(password)


class VectorDbConnection(psycopg2.extensions.connection):
    """A psycopg2 connection that can pin `hnsw.ef_search` for its queries (tests that need exact answers, benchmarks);
    unpinned, every query uses the value the loader calibrated for the index it searches."""

    pinned_ef_search: int | None = None


def connect(settings: ConnectionSettings, *, ef_search: int | None = None,
            application_name: str = "recsys") -> psycopg2.extensions.connection:
    password = settings.password if settings.password is not None else _secret_password(str(settings.secret_arn))
    conn = psycopg2.connect(
        host=settings.host, port=settings.port, dbname=settings.dbname, user=settings.user, password=password,
        connect_timeout=10, application_name=application_name, connection_factory=VectorDbConnection,
    )
    conn.pinned_ef_search = None if ef_search is None else int(ef_search)
    conn.autocommit = True
    return conn


def connect_from_env(env: Mapping[str, str] | None = None, **kwargs: Any) -> psycopg2.extensions.connection:
    """A new autocommit connection from VECTOR_DB_* (plaintext password when set, else the secret, cached)."""
    return connect(settings_from_env(os.environ if env is None else env), **kwargs)


_shared: psycopg2.extensions.connection | None = None


def shared_connection() -> psycopg2.extensions.connection:
    """One connection per container, reopened when the previous one was closed (Lambda freezes kill idle sockets)."""
    global _shared
    if _shared is None or _shared.closed:
        _shared = connect_from_env()
    return _shared


# ---- queries ------------------------------------------------------------------------------------------------------
# Sent in the same round trip before each query: the ef_search for the index it is about to search. Pinned by the
# connection, else the loader's calibration for item_emb (read every time, so a reload's new value applies at once),
# else DEFAULT_EF_SEARCH; never below the rows the query needs (pgvector returns at most ef_search rows per scan).
EF_SEARCH_SQL = """
SELECT set_config('hnsw.ef_search', greatest(%(min_ef_search)s, coalesce(%(pinned_ef_search)s, (
    SELECT (hnsw_search -> %(metric)s ->> 'ef_search')::int FROM embedding_sources WHERE table_name = 'item_emb'
), %(default_ef_search)s))::text, false);
"""

ITEMS_FOR_USERS_SQL = """
SELECT q.ord, r.id, r.score
FROM unnest(%(embeddings)s::vector[]) WITH ORDINALITY AS q(embedding, ord)
CROSS JOIN LATERAL (
    SELECT i.id, -(i.embedding <#> q.embedding) AS score
    FROM item_emb AS i
    ORDER BY i.embedding <#> q.embedding
    LIMIT %(k)s
) AS r
ORDER BY q.ord, r.score DESC
"""

SIMILAR_ITEMS_SQL = """
SELECT q.ord, r.id, r.score
FROM unnest(%(item_ids)s::varchar[]) WITH ORDINALITY AS q(item_id, ord)
JOIN item_emb AS src ON src.id = q.item_id
CROSS JOIN LATERAL (
    SELECT i.id, 1 - (i.embedding <=> src.embedding) AS score
    FROM item_emb AS i
    WHERE i.id <> src.id
    ORDER BY i.embedding <=> src.embedding
    LIMIT %(k)s
) AS r
ORDER BY q.ord, r.score DESC
"""


def vector_literal(values: Sequence[float] | np.ndarray) -> str:
    # tolist() turns the row into Python floats in one call; repr is the shortest text that round-trips.
    as_list = values.tolist() if isinstance(values, np.ndarray) else [float(v) for v in values]
    return "[" + ",".join(map(repr, as_list)) + "]"


def _ef_search_params(conn: Any, metric: Metric, rows_needed: int) -> dict[str, Any]:
    return {"metric": metric, "min_ef_search": int(rows_needed), "default_ef_search": DEFAULT_EF_SEARCH,
            "pinned_ef_search": getattr(conn, "pinned_ef_search", None)}


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= MAX_K:
        raise QueryInputError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return int(k)


def _check_embeddings(embeddings: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    try:
        matrix = np.asarray(embeddings, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QueryInputError(f"embeddings must be a list of {EMBEDDING_DIM}-number lists ({exc})") from exc
    if matrix.ndim == 1 and matrix.size == EMBEDDING_DIM:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or (matrix.size and matrix.shape[1] != EMBEDDING_DIM):
        raise QueryInputError(f"embeddings must have shape (n, {EMBEDDING_DIM}), got {matrix.shape}")
    bad: np.ndarray | list[int] = np.flatnonzero(~np.isfinite(matrix).all(axis=1)) if matrix.size else []
    if len(bad):
        raise QueryInputError(f"embedding #{int(bad[0])} contains NaN or infinity")
    return matrix


def _group(rows: Sequence[tuple[int, str, float]], n: int) -> list[list[tuple[str, float]]]:
    out: list[list[tuple[str, float]]] = [[] for _ in range(n)]
    for ordinal, item_id, score in rows:
        out[ordinal - 1].append((str(item_id), float(score)))
    return out


# ---- exact search in memory for catalogues up to this size, HNSW above -----------------------------------------------
# User embeddings come from another tower than item embeddings: to a graph built over the items they are
# out-of-distribution queries, and HNSW's greedy walk misses many of their true top items (docs/vectors.md: the
# scale-100 catalogue's inner-product index stays below recall@10 0.82 even at ef_search 1000, while item -> item
# cosine queries reach 0.99 at 20). Below a few hundred thousand items exact search is also the faster one: a batch
# is one matrix product (500 queries x 200k items x 32 dims is ~3 GFLOP) instead of 500 index scans, and the
# catalogue costs ~200 bytes per item of memory (about 40 MB at 200k, with ids and the normalised copy).
EXACT_SEARCH_MAX_ITEMS = 200_000


@dataclass(frozen=True)
class ItemCatalogue:
    """item_emb held in memory: ids and a float32 (n, dim) matrix, tagged with the load it came from."""

    load: tuple[str, str]
    ids: list[str]
    matrix: np.ndarray

    @functools.cached_property
    def row_of(self) -> dict[str, int]:
        return {item_id: row for row, item_id in enumerate(self.ids)}

    @functools.cached_property
    def unit(self) -> np.ndarray:
        return calibration.unit_rows(self.matrix)


# Per server and database (a process may talk to several: tests, the benchmark), the catalogue last read.
_catalogues: dict[tuple[str, str], ItemCatalogue] = {}


def read_catalogue(cur: Any, load: tuple[str, str], table: str = "item_emb") -> ItemCatalogue:
    """Every item of `table`, in one consistent snapshot: ids, then the vectors as binary COPY (138 bytes a row)."""
    import io

    # Serving connections are autocommit: the two reads get a snapshot of their own. (A caller's open transaction is
    # used as it is.)
    own_snapshot = bool(cur.connection.autocommit)
    if own_snapshot:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        cur.execute(f"SELECT id FROM {table} ORDER BY id")
        ids = [str(row[0]) for row in cur.fetchall()]
        buffer = io.BytesIO()
        cur.copy_expert(f"COPY (SELECT embedding FROM {table} ORDER BY id) TO STDOUT (FORMAT binary)", buffer)
    finally:
        if own_snapshot:
            cur.execute("COMMIT")
    data = buffer.getvalue()
    row_dtype = np.dtype([("fields", ">i2"), *_vector_field_dtype(EMBEDDING_DIM)])
    header = len(COPY_SIGNATURE)
    if len(data) < header + len(ids) * row_dtype.itemsize:
        raise RuntimeError(f"{table} came back short ({len(data)} bytes for {len(ids)} rows); the next batch "
                           "reads it again")
    rows = np.frombuffer(data, dtype=row_dtype, count=len(ids), offset=header)
    if not (rows["fields"] == 1).all() or not (rows["dim"] == EMBEDDING_DIM).all():
        raise RuntimeError(f"{table} rows are not {EMBEDDING_DIM}-d vectors; the next batch reads it again")
    return ItemCatalogue(load, ids, rows["values"].astype(np.float32))


def item_catalogue(conn: psycopg2.extensions.connection) -> ItemCatalogue | None:
    """item_emb in memory when it is small enough for exact search (else None), re-read only after a new load.

    One small query per call checks which load is live (`embedding_sources.loaded_at` changes at every load, whoever
    loaded), so a swap by the loader is seen by the next batch.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT source_version, loaded_at::text, row_count FROM embedding_sources "
                    "WHERE table_name = 'item_emb'")
        found = cur.fetchone()
        if found is None or int(found[2]) > EXACT_SEARCH_MAX_ITEMS:
            return None
        dsn = conn.get_dsn_parameters()
        where = (f"{dsn.get('host')}:{dsn.get('port')}", str(dsn.get("dbname")))
        load = (str(found[0]), str(found[1]))
        cached = _catalogues.get(where)
        if cached is None or cached.load != load:
            cached = _catalogues[where] = read_catalogue(cur, load)
        return cached


# Scores are computed for this many (query, item) pairs at a time: 32 MB of float32, so a batch of 500 users against
# 200k items never needs a 400 MB matrix inside a 512 MB function.
SCORE_CHUNK_PAIRS = 8_000_000


def exact_top_k(queries: np.ndarray, matrix: np.ndarray, k: int,
                exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers and scores of the k highest inner products per query, best first (ties: lower row first).
    `exclude[i]`, when given, is a row query i must not get (the item itself, for similar items)."""
    q = np.asarray(queries, dtype=np.float32)
    per_chunk = max(1, SCORE_CHUNK_PAIRS // max(1, matrix.shape[0]))
    rows, scores = [], []
    for start in range(0, len(q), per_chunk):
        chunk = q[start:start + per_chunk] @ matrix.T
        if exclude is not None:
            chunk[np.arange(len(chunk)), exclude[start:start + per_chunk]] = -np.inf
        top, top_scores = top_k_of(chunk, k)
        rows.append(top)
        scores.append(top_scores)
    if not rows:
        return np.empty((0, min(k, matrix.shape[0])), dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    return np.concatenate(rows), np.concatenate(scores)


_TOP_K_BLOCK = 64


def top_k_of(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a score matrix, the columns of its k highest scores and the scores, best first (ties: lower column
    first); all columns when k is larger.

    A full selection (argpartition) over every score of a 500 x 11k batch costs more than the matrix product that made
    them. So candidates are found first: cut each row into blocks of 64 columns; the k-th largest block maximum is a
    score that at least k entries reach (one per block), so it is at most the k-th largest score, and every entry of
    the true top k reaches it and lies in a block whose maximum reaches it. Only those few blocks are searched.
    """
    n_rows, n = scores.shape
    k = min(k, n)
    if k == 0:
        return np.empty((n_rows, 0), dtype=np.int64), np.empty((n_rows, 0), dtype=scores.dtype)
    starts = np.arange(0, n, _TOP_K_BLOCK)
    if len(starts) < 4 * k:
        # Too few blocks to prune anything (a small catalogue): sort every row.
        top = np.lexsort((np.broadcast_to(np.arange(n), scores.shape), -scores), axis=1)[:, :k]
        return top, np.take_along_axis(scores, top, axis=1)
    block_max = np.maximum.reduceat(scores, starts, axis=1)
    threshold = np.partition(block_max, len(starts) - k, axis=1)[:, len(starts) - k]
    block_rows, blocks = np.nonzero(block_max >= threshold[:, None])
    columns = blocks[:, None] * _TOP_K_BLOCK + np.arange(_TOP_K_BLOCK)
    inside = columns < n  # the last block may be short
    columns = np.minimum(columns, n - 1)
    values = scores[block_rows[:, None], columns]
    keep = inside & (values >= threshold[block_rows][:, None])
    rows, columns, values = np.broadcast_to(block_rows[:, None], columns.shape)[keep], columns[keep], values[keep]
    order = np.lexsort((columns, -values, rows))
    rows, columns, values = rows[order], columns[order], values[order]
    # Every row has at least k candidates (see above), in row order: its first k are its answer.
    take = np.searchsorted(rows, np.arange(n_rows))[:, None] + np.arange(k)
    return columns[take], values[take]


def exact_similar(catalogue: ItemCatalogue, ids: list[str], k: int) -> list[list[tuple[str, float]]]:
    known = [catalogue.row_of.get(item_id) for item_id in ids]
    rows = np.array([row for row in known if row is not None], dtype=np.int64)
    out: list[list[tuple[str, float]]] = [[] for _ in ids]
    if not len(rows):
        return out
    top, top_scores = exact_top_k(catalogue.unit[rows], catalogue.unit, min(k, len(catalogue.ids) - 1),
                                  exclude=rows)
    answers = iter(zip(top.tolist(), top_scores.tolist(), strict=True))
    for position, row in enumerate(known):
        if row is not None:
            columns, values = next(answers)
            out[position] = [(catalogue.ids[c], float(v)) for c, v in zip(columns, values, strict=True)]
    return out


def items_for_users(conn: psycopg2.extensions.connection, embeddings: np.ndarray | Sequence[Sequence[float]],
                    k: int) -> list[list[tuple[str, float]]]:
    """For each user embedding, the k items with the highest inner product `(item_id, score)`, best first.

    Exact for catalogues up to EXACT_SEARCH_MAX_ITEMS (in memory, see above); above that, one statement over the
    inner-product HNSW index at its calibrated ef_search.
    """
    k = _check_k(k)
    matrix = _check_embeddings(embeddings)
    if len(matrix) == 0:
        return []
    catalogue = item_catalogue(conn)
    if catalogue is not None:
        rows, scores = exact_top_k(matrix, catalogue.matrix, k)
        return [[(catalogue.ids[r], float(v)) for r, v in zip(row, score, strict=True)]
                for row, score in zip(rows.tolist(), scores.tolist(), strict=True)]
    with conn.cursor() as cur:
        cur.execute(EF_SEARCH_SQL + ITEMS_FOR_USERS_SQL,
                    {"embeddings": [vector_literal(row) for row in matrix], "k": k,
                     **_ef_search_params(conn, "inner_product", k)})
        return _group(cur.fetchall(), len(matrix))


def similar_items(conn: psycopg2.extensions.connection, item_ids: Sequence[str],
                  k: int) -> list[list[tuple[str, float]]]:
    """For each item id, the k other items with the highest cosine similarity, best first: exact for catalogues up to
    EXACT_SEARCH_MAX_ITEMS, else over the cosine HNSW index at its calibrated ef_search.

    An id that is not in `item_emb` gets an empty list (the caller decides whether that is an error: the inference
    Function URL answers 404 for a single unknown id).
    """
    k = _check_k(k)
    if isinstance(item_ids, str):
        raise QueryInputError("item_ids must be a list of ids, not a single string")
    ids = [str(i) for i in item_ids]
    if not ids:
        return []
    catalogue = item_catalogue(conn)
    if catalogue is not None:
        return exact_similar(catalogue, ids, k)
    with conn.cursor() as cur:
        # k + 1 rows: the index scan also meets the item itself, which the query then filters out.
        cur.execute(EF_SEARCH_SQL + SIMILAR_ITEMS_SQL,
                    {"item_ids": ids, "k": k, **_ef_search_params(conn, "cosine", k + 1)})
        return _group(cur.fetchall(), len(ids))


def exact_scores(query: np.ndarray, candidates: np.ndarray, metric: Metric) -> np.ndarray:
    """Exact scores of every candidate for each query, as the SQL computes them (used to check recall and results)."""
    q = np.asarray(query, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    if metric == "inner_product":
        return q @ c.T
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-300)
    cn = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-300)
    return qn @ cn.T


# ---- schema -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableSpec:
    name: TableName
    id_type: Literal["varchar", "int"]
    # (index name suffix, operator class): item_emb serves both metrics, user_emb "similar users" by cosine.
    indexes: tuple[tuple[str, str], ...]


TABLES: dict[TableName, TableSpec] = {
    "item_emb": TableSpec("item_emb", "varchar", (("ip", "vector_ip_ops"), ("cos", "vector_cosine_ops"))),
    "user_emb": TableSpec("user_emb", "int", (("cos", "vector_cosine_ops"),)),
}
# What each operator class ranks by, and how the queries turn its distance into a score (higher is better).
OPCLASS_METRIC: dict[str, Metric] = {"vector_ip_ops": "inner_product", "vector_cosine_ops": "cosine"}
METRIC_ORDER_BY: dict[Metric, str] = {"inner_product": "<#>", "cosine": "<=>"}
METRIC_SCORE: dict[Metric, str] = {"inner_product": "-(i.embedding <#> q.embedding)",
                                   "cosine": "1 - (i.embedding <=> q.embedding)"}

# Records which file each table was loaded from, so an unchanged re-run does nothing.
SOURCES_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS embedding_sources (
    table_name text PRIMARY KEY,
    source_uri text NOT NULL,
    source_version text NOT NULL,
    row_count bigint NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    hnsw_search jsonb
)
"""
# Tables created before the loader calibrated ef_search get the column on their next load.
SOURCES_TABLE_UPGRADE_SQL = "ALTER TABLE embedding_sources ADD COLUMN IF NOT EXISTS hnsw_search jsonb"
# Serializes loaders (two post-deploy invocations racing, or sql/embeddings.sql) without blocking readers.
# The bytes of 'recsys-e'; sql/embeddings.sql uses the same number in decimal.
LOADER_LOCK_KEY = 0x7265637379732D65  # 8243104040581541221


@dataclass(frozen=True)
class HnswParams:
    m: int = 16
    ef_construction: int = 64
    maintenance_work_mem: str = "256MB"


def index_name(table: str, suffix: str) -> str:
    """The name of one of `table`'s indexes: a live table's or its staging copy's (renamed along with the table)."""
    return f"{table}_embedding_{suffix}_idx"


# ---- embeddings CSV: validation ---------------------------------------------------------------------------------
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


# ---- binary COPY ------------------------------------------------------------------------------------------------
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"


def _vector_field_dtype(dim: int) -> list[tuple[str, str] | tuple[str, str, tuple[int]]]:
    # pgvector's binary send format (what pgvector-python's Vector.to_binary writes): int16 dim, int16 0, float4[dim].
    return [("length", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (dim,))]


def encode_copy_rows(chunk: Chunk, id_type: Literal["varchar", "int"]) -> bytes:
    """The chunk as binary COPY tuples `(id, embedding)`, vectorised since this runs for every one of 1M rows.

    Rows come out grouped by the byte length of their id (one numpy record array per length), so their order differs
    from the chunk's when ids differ in length: COPY does not care about order.
    """
    n, dim = chunk.vectors.shape
    vector_fields = _vector_field_dtype(dim)
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


class _CopyStream:
    """File-like `read(size)` over an iterator of byte blocks, as psycopg2's copy_expert wants."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._blocks = blocks
        self._buffer = bytearray()
        self.bytes_read = 0
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
        self.bytes_read += len(out)
        return out


# ---- sources and the atomic loader -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmbeddingSource:
    """One CSV to load into one table. `version` identifies the content (S3 ETag, or a sha256 for local files)."""

    table: TableName
    uri: str
    version: str
    open_lines: Callable[[], Iterable[bytes]]


def s3_source(s3: Any, table: TableName, bucket: str, key: str) -> EmbeddingSource:
    """A CSV in S3 pinned to the ETag seen now: if the object is replaced mid-load the read fails instead of mixing."""
    uri = f"s3://{bucket}/{key}"
    try:
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    except s3.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise EmbeddingsFileError(f"{uri} does not exist; publish the embeddings first (`python -m harness train`)"
                                      ) from exc
        raise

    def open_lines() -> Iterable[bytes]:
        body = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
        return body.iter_lines(chunk_size=1 << 20)

    return EmbeddingSource(table, uri, etag, open_lines)


def file_source(table: TableName, path: str) -> EmbeddingSource:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)

    def open_lines() -> Iterable[bytes]:
        with open(path, "rb") as fh:
            yield from fh

    return EmbeddingSource(table, f"file://{os.path.abspath(path)}", "sha256:" + digest.hexdigest(), open_lines)


LoadStatus = Literal["loaded", "unchanged"]


@dataclass
class TableLoad:
    table: TableName
    status: LoadStatus
    source: str
    version: str
    rows: int
    copy_seconds: float = 0.0
    index_seconds: float = 0.0
    calibration_seconds: float = 0.0
    # Per metric, the calibrated ef_search and its measured recall (`recsys.calibration.Calibration.as_json`).
    hnsw_search: dict[str, Any] | None = None


def ensure_schema(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cur.execute(SOURCES_TABLE_SQL)
        cur.execute(SOURCES_TABLE_UPGRADE_SQL)


def _recorded(cur: Any, table: TableName) -> tuple[str, str] | None:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT source_uri, source_version FROM embedding_sources WHERE table_name = %s", (table,))
    found = cur.fetchone()
    return (found[0], found[1]) if found else None


# ---- the replacement guard -----------------------------------------------------------------------------------------
# A retrain of the same catalogue keeps every id. A file that loses ids the live table serves is far more likely a
# truncated or wrong upload than an intended change (issue 11: a well-formed one-row item file replaced 111 items, and
# every streamed record failed until someone reloaded by hand), so the loader refuses it unless told `force`.
MISSING_ID_EXAMPLES = 5


@dataclass(frozen=True)
class Replacement:
    """What swapping `table` for the freshly copied file would do: rows before and after, live ids the file lacks."""

    table: str
    source: str
    live_rows: int
    new_rows: int
    missing_ids: int
    missing_examples: tuple[str, ...] = ()


def replacement_refusal(change: Replacement) -> str | None:
    """The one-line reason to refuse `change`, or None for a normal reload (same ids or a superset, at least half the
    rows). Fewer than half the rows always lacks live ids too when ids are unique; it is its own rule so the message
    says how much smaller the file is."""
    shrinks = 2 * change.new_rows < change.live_rows
    if not shrinks and change.missing_ids == 0:
        return None
    problems = []
    if shrinks:
        problems.append("fewer than half the live rows")
    if change.missing_ids:
        more = ", ..." if change.missing_ids > len(change.missing_examples) else ""
        problems.append(f"{change.missing_ids} live id{'s' if change.missing_ids != 1 else ''} missing from it "
                        f"({', '.join(change.missing_examples)}{more})")
    return (f"{change.table}: refusing to replace the live table ({_rows(change.live_rows)}) with {change.source} "
            f"({_rows(change.new_rows)}): {'; '.join(problems)}. Nothing was changed, the live table still serves; "
            'if the new catalogue is intended, invoke the loader with force=true (event {"force": true}) to replace '
            "anyway.")


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _guard_replacement(cur: Any, table: TableName, staging: str, new_rows: int, source: str) -> None:
    """Raise ReplacementRefused when `staging` would drop ids the live `table` serves. Runs before the index build
    (a refusal costs no HNSW build) inside the load's transaction, so the refusal rolls the staging table back."""
    if not _exists(cur, table):
        return
    cur.execute(f"SELECT count(*) FROM {table}")
    live_rows = int(cur.fetchone()[0])
    # The anti-join uses the staging table's primary key, built just before.
    missing_sql = f"FROM {table} AS live WHERE NOT EXISTS (SELECT 1 FROM {staging} AS new WHERE new.id = live.id)"
    cur.execute(f"SELECT count(*) {missing_sql}")
    missing = int(cur.fetchone()[0])
    examples: tuple[str, ...] = ()
    if missing:
        cur.execute(f"SELECT live.id::text {missing_sql} ORDER BY live.id LIMIT {MISSING_ID_EXAMPLES}")
        examples = tuple(str(row[0]) for row in cur.fetchall())
    refusal = replacement_refusal(Replacement(table, source, live_rows, new_rows, missing, examples))
    if refusal is not None:
        raise ReplacementRefused(refusal)


def _build_fresh_table(cur: Any, source: EmbeddingSource, params: HnswParams,
                       progress: Callable[[str], None], *, guard: bool = True) -> tuple[TableLoad, np.ndarray]:
    """COPY the source into `<table>_loading` and index it; returns the load and the vectors (for the calibration).
    With `guard`, a file that would drop live ids is refused after the COPY (`_guard_replacement`)."""
    import time

    spec = TABLES[source.table]
    staging = f"{spec.name}_loading"
    cur.execute(f"DROP TABLE IF EXISTS {staging}")
    cur.execute(f"CREATE TABLE {staging} (id {spec.id_type} NOT NULL, embedding vector({EMBEDDING_DIM}) NOT NULL)")
    rows = 0
    # float32, as stored: 128 MB for 1M items, well inside the loader's memory.
    kept: list[np.ndarray] = []

    def blocks() -> Iterator[bytes]:
        nonlocal rows
        yield COPY_SIGNATURE
        for chunk in parse_embeddings(source.open_lines(), id_type=spec.id_type, source=source.uri):
            rows += len(chunk.ids)
            kept.append(np.asarray(chunk.vectors, dtype=np.float32))
            yield encode_copy_rows(chunk, spec.id_type)
        yield COPY_TRAILER

    started = time.perf_counter()
    progress(f"{spec.name}: copying {source.uri}")
    stream = _CopyStream(blocks())
    try:
        cur.copy_expert(f"COPY {staging} (id, embedding) FROM STDIN WITH (FORMAT binary)", stream, size=1 << 20)
    except psycopg2.Error:
        if stream.error is not None:
            raise stream.error from None
        raise
    copied = time.perf_counter()
    progress(f"{spec.name}: {rows} rows copied in {copied - started:.1f}s; building indexes")
    # Indexes after the load: one bulk build is far faster than maintaining them row by row.
    cur.execute(f"SET LOCAL maintenance_work_mem = '{params.maintenance_work_mem}'")
    cur.execute(f"ALTER TABLE {staging} ADD CONSTRAINT {staging}_pkey PRIMARY KEY (id)")
    if guard:
        _guard_replacement(cur, spec.name, staging, rows, source.uri)
    for suffix, opclass in spec.indexes:
        cur.execute(
            f"CREATE INDEX {index_name(staging, suffix)} ON {staging} USING hnsw (embedding {opclass}) "
            f"WITH (m = {int(params.m)}, ef_construction = {int(params.ef_construction)})"
        )
    indexed = time.perf_counter()
    vectors = np.concatenate(kept) if kept else np.empty((0, EMBEDDING_DIM), dtype=np.float32)
    return TableLoad(spec.name, "loaded", source.uri, source.version, rows, copied - started, indexed - copied), vectors


def _index_answers(cur: Any, table: str, metric: Metric, queries: np.ndarray, k: int, ef_search: int,
                   rows_of_table: bool) -> list[list[float]]:
    """The scores of the k rows the HNSW index of `metric` on `table` returns for each query at `ef_search`.

    With `rows_of_table` (cosine queries that are rows of the table) the answer is the k nearest *other* rows, as
    `similar_items` asks: k + 1 rows from the index, the query itself (similarity 1) left out.
    """
    fetch = k + 1 if rows_of_table else k
    cur.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
    cur.execute(
        f"SELECT q.ord, {METRIC_SCORE[metric]} "
        f"FROM unnest(%(queries)s::vector[]) WITH ORDINALITY AS q(embedding, ord) "
        f"CROSS JOIN LATERAL (SELECT i.embedding FROM {table} AS i "
        f"ORDER BY i.embedding {METRIC_ORDER_BY[metric]} q.embedding LIMIT %(k)s) AS i",
        {"queries": [vector_literal(row) for row in queries], "k": int(fetch)},
    )
    out: list[list[float]] = [[] for _ in range(len(queries))]
    for ordinal, score in cur.fetchall():
        out[ordinal - 1].append(float(score))
    if rows_of_table:
        for scores in out:
            itself = next((i for i, score in enumerate(scores) if score >= 1.0 - calibration.SCORE_TOLERANCE), None)
            if itself is not None:
                del scores[itself]
    return [scores[:k] for scores in out]


def calibrate_index(cur: Any, table: str, metric: Metric, vectors: np.ndarray, queries: np.ndarray, *,
                    rows_of_table: bool, k: int = calibration.CALIBRATION_K,
                    target: float = calibration.TARGET_RECALL,
                    ladder: Sequence[int] = calibration.EF_SEARCH_LADDER) -> calibration.Calibration:
    """Measure the HNSW index of `metric` on `table` (whose rows are `vectors`) against exact search for `queries`,
    and choose the smallest ef_search on the ladder whose recall@k reaches `target`.

    `rows_of_table`: the queries are rows of the table and, as in `similar_items`, their answer is the k nearest
    other rows (cosine only: the left-out row is recognised by its similarity of 1).

    Runs inside the caller's transaction (it uses SET LOCAL), with sequential scans off so the planner cannot answer
    a small table exactly and make any ef_search look perfect.
    """
    if rows_of_table and metric != "cosine":
        raise ValueError("rows_of_table needs the cosine metric: only there is a row's score with itself known (1)")
    # A row's best match is itself: the k-th nearest other row is the (k+1)-th nearest row.
    kth = calibration.exact_kth_scores(queries, vectors, metric, k + 1 if rows_of_table else k)
    cur.execute("SET LOCAL enable_seqscan = off")
    result = calibration.choose_ef_search(
        lambda ef: calibration.recall_at_k(_index_answers(cur, table, metric, queries, k, ef, rows_of_table), kth,
                                           k),
        metric=metric, k=k, queries=len(queries), target=target, ladder=ladder)
    cur.execute("SET LOCAL enable_seqscan = on")
    return result


def _query_sample(vectors: np.ndarray) -> np.ndarray:
    return vectors[calibration.sample_rows(len(vectors), calibration.CALIBRATION_QUERIES)]


def _live_user_sample(cur: Any) -> np.ndarray | None:
    """Some live user embeddings (deterministic), when the run does not load users itself."""
    if not _exists(cur, "user_emb"):
        return None
    cur.execute("SELECT embedding::text FROM user_emb ORDER BY md5(id::text) LIMIT %s",
                (calibration.CALIBRATION_QUERIES,))
    rows = [np.array(text.strip("[]").split(","), dtype=np.float32) for (text,) in cur.fetchall()]
    return np.stack(rows) if rows else None


def _calibrate_load(cur: Any, load: TableLoad, vectors: np.ndarray, user_queries: np.ndarray | None,
                    progress: Callable[[str], None]) -> None:
    """Calibrate every index of a freshly built staging table; the result is recorded at the swap."""
    import time

    started = time.perf_counter()
    spec = TABLES[load.table]
    found: dict[str, Any] = {}
    for _suffix, opclass in spec.indexes:
        metric = OPCLASS_METRIC[opclass]
        # items_for_users searches item_emb by inner product with *user* embeddings: calibrate with those. Cosine
        # serves "similar to this row": the queries are the table's own rows, themselves left out.
        from_users = metric == "inner_product" and user_queries is not None
        queries = user_queries if from_users else _query_sample(vectors)
        if len(vectors) == 0 or queries is None or len(queries) == 0:
            continue
        result = calibrate_index(cur, f"{spec.name}_loading", metric, vectors, queries,
                                 rows_of_table=metric == "cosine")
        found[metric] = result.as_json()
        note = "" if result.reached_target else (
            f"; even ef_search={result.ef_search} stays below the target {result.target_recall}: rebuild with a "
            "larger m / ef_construction")
        progress(f"{spec.name}: {metric} index calibrated: ef_search={result.ef_search} gives recall@{result.k} "
                 f"{result.recall:.3f} over {result.queries} queries{note}")
    load.hnsw_search = found
    load.calibration_seconds = time.perf_counter() - started


def _swap_in(cur: Any, load: TableLoad, *, lock_timeout_ms: int, attempts: int) -> None:
    """Replace the live table by the staging one inside the caller's transaction (readers see old, then new)."""
    import time

    spec = TABLES[load.table]
    staging = f"{spec.name}_loading"
    for attempt in range(1, attempts + 1):
        cur.execute("SAVEPOINT swap")
        try:
            # A short lock timeout, retried: waiting long for the exclusive lock would queue every reader behind us.
            cur.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
            if _exists(cur, spec.name):
                cur.execute(f"LOCK TABLE {spec.name} IN ACCESS EXCLUSIVE MODE")
            break
        except psycopg2.errors.LockNotAvailable:
            cur.execute("ROLLBACK TO SAVEPOINT swap")
            if attempt == attempts:
                raise SwapLockTimeout(
                    f"could not swap in the new {spec.name}: another session kept a lock on it through {attempts} "
                    f"attempts (most likely a transaction left open; see pg_stat_activity, state 'idle in "
                    "transaction'). Nothing was changed; run the loader again once it is gone."
                ) from None
            time.sleep(0.2 * attempt)
    cur.execute("SET LOCAL lock_timeout = 0")
    cur.execute(f"DROP TABLE IF EXISTS {spec.name}")
    cur.execute(f"ALTER TABLE {staging} RENAME TO {spec.name}")
    cur.execute(f"ALTER TABLE {spec.name} RENAME CONSTRAINT {staging}_pkey TO {spec.name}_pkey")
    for suffix, _ in spec.indexes:
        cur.execute(f"ALTER INDEX {index_name(staging, suffix)} RENAME TO {index_name(spec.name, suffix)}")
    cur.execute(
        "INSERT INTO embedding_sources (table_name, source_uri, source_version, row_count, loaded_at, hnsw_search) "
        "VALUES (%s, %s, %s, %s, now(), %s) ON CONFLICT (table_name) DO UPDATE SET source_uri = EXCLUDED.source_uri, "
        "source_version = EXCLUDED.source_version, row_count = EXCLUDED.row_count, loaded_at = now(), "
        "hnsw_search = EXCLUDED.hnsw_search",
        (spec.name, load.source, load.version, load.rows,
         None if load.hnsw_search is None else json.dumps(load.hnsw_search)),
    )


def _exists(cur: Any, table: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return bool(cur.fetchone()[0])


def load_embeddings(conn: psycopg2.extensions.connection, sources: Sequence[EmbeddingSource], *, force: bool = False,
                    params: HnswParams | None = None, progress: Callable[[str], None] | None = None,
                    lock_timeout_ms: int = 2000, lock_attempts: int = 30) -> list[TableLoad]:
    """Load every changed source into a fresh table, index it, and swap all of them in one transaction.

    All or nothing: a bad row in any file rolls everything back and the live tables stay as they were. Unless `force`,
    a source whose (uri, version) is already recorded for an existing table is skipped, and a file that lacks ids the
    live table serves (or has fewer than half its rows) is refused with `ReplacementRefused`. One flag for both: a file
    skipped as unchanged is the live content, which the guard would accept anyway, so `force` means "load these files
    as they are, whatever is live".
    """
    params = params or HnswParams()
    say = progress or (lambda _message: None)
    was_autocommit = conn.autocommit
    conn.autocommit = False
    results: list[TableLoad] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOADER_LOCK_KEY,))
            # Under the lock: two first-ever loads racing on CREATE EXTENSION / CREATE TABLE would otherwise collide.
            ensure_schema(conn)
            fresh: list[tuple[TableLoad, np.ndarray]] = []
            for source in sources:
                recorded = _recorded(cur, source.table)
                if not force and recorded == (source.uri, source.version):
                    cur.execute("SELECT row_count FROM embedding_sources WHERE table_name = %s", (source.table,))
                    row = cur.fetchone()
                    assert row is not None  # _recorded just read this table's row, under the lock
                    results.append(TableLoad(source.table, "unchanged", source.uri, source.version, int(row[0])))
                    say(f"{source.table}: unchanged ({source.uri} {source.version})")
                    continue
                load, vectors = _build_fresh_table(cur, source, params, say, guard=not force)
                fresh.append((load, vectors))
                results.append(load)
            # The item table's inner-product index is calibrated with user embeddings: this run's, else the live ones.
            fresh_users = [vectors for load, vectors in fresh if load.table == "user_emb"]
            user_queries = None
            if any(load.table == "item_emb" for load, _vectors in fresh):
                user_queries = _query_sample(fresh_users[0]) if fresh_users else _live_user_sample(cur)
            for load, vectors in fresh:
                _calibrate_load(cur, load, vectors, user_queries, say)
            for load, _vectors in fresh:
                _swap_in(cur, load, lock_timeout_ms=lock_timeout_ms, attempts=lock_attempts)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.autocommit = was_autocommit
    return results
