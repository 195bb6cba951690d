"""PostgreSQL + pgvector: the connection the Lambda functions use, the schema, the batch similarity queries and the
embeddings loader.

- `items_for_users(conn, embeddings, k)`: per user embedding, the k items with the highest inner product, best first.
- `similar_items(conn, item_ids, k)`: per item id, the k other items with the highest cosine similarity, best first.
- `load_embeddings(conn, sources)`: the CSVs from `s3_source` / `file_source` validated, loaded, indexed, calibrated and
  swapped in all at once.

Use an autocommit connection (`connect_from_env` returns one): a reader that keeps a transaction open holds a lock on
`item_emb` that makes the loader's swap wait.

Modules, in dependency order: `schema` (tables, indexes, metrics, `embedding_sources`), `connection` (VECTOR_DB_*),
`embeddings_csv` (streamed validation), `binary_copy` (COPY format), `exact` (in-memory catalogue and top k),
`queries` (the two batch searches), `sources` (S3 and local CSVs), `guard` (the replacement guard),
`index_calibration` (ef_search from measured recall), `load` (the atomic loader). This package re-exports their public
names. A module reads its own constants (EXACT_SEARCH_MAX_ITEMS, SCORE_CHUNK_PAIRS): a test that changes one patches
that module, not this package.
"""

from __future__ import annotations

from recsys.vectordb.binary_copy import COPY_SIGNATURE, COPY_TRAILER, CopyStream, encode_copy_rows
from recsys.vectordb.connection import (
    ConnectionSettings,
    VectorDbConfigError,
    VectorDbConnection,
    connect,
    connect_from_env,
    settings_from_env,
)
from recsys.vectordb.embeddings_csv import EXPECTED_HEADER, INT4_MAX, Chunk, EmbeddingsFileError, parse_embeddings
from recsys.vectordb.exact import (
    EXACT_SEARCH_MAX_ITEMS,
    SCORE_CHUNK_PAIRS,
    ItemCatalogue,
    exact_similar,
    exact_top_k,
    item_catalogue,
    read_catalogue,
    top_k_of,
)
from recsys.vectordb.guard import MISSING_ID_EXAMPLES, Replacement, ReplacementRefused, replacement_refusal
from recsys.vectordb.index_calibration import calibrate_index
from recsys.vectordb.load import LoadStatus, SwapLockTimeout, TableLoad, load_embeddings
from recsys.vectordb.queries import (
    DEFAULT_EF_SEARCH,
    EF_SEARCH_SQL,
    ITEMS_FOR_USERS_SQL,
    MAX_K,
    SIMILAR_ITEMS_SQL,
    QueryInputError,
    items_for_users,
    similar_items,
    vector_literal,
)
from recsys.vectordb.schema import (
    EMBEDDING_DIM,
    LOADER_LOCK_KEY,
    METRIC_ORDER_BY,
    METRIC_SCORE,
    OPCLASS_METRIC,
    SOURCES_TABLE_SQL,
    SOURCES_TABLE_UPGRADE_SQL,
    TABLES,
    HnswParams,
    TableName,
    TableSpec,
    ensure_schema,
    index_name,
)
from recsys.vectordb.sources import EmbeddingSource, file_source, s3_source

__all__ = [
    "COPY_SIGNATURE",
    "COPY_TRAILER",
    "DEFAULT_EF_SEARCH",
    "EF_SEARCH_SQL",
    "EMBEDDING_DIM",
    "EXACT_SEARCH_MAX_ITEMS",
    "EXPECTED_HEADER",
    "INT4_MAX",
    "ITEMS_FOR_USERS_SQL",
    "LOADER_LOCK_KEY",
    "MAX_K",
    "METRIC_ORDER_BY",
    "METRIC_SCORE",
    "MISSING_ID_EXAMPLES",
    "OPCLASS_METRIC",
    "SCORE_CHUNK_PAIRS",
    "SIMILAR_ITEMS_SQL",
    "SOURCES_TABLE_SQL",
    "SOURCES_TABLE_UPGRADE_SQL",
    "TABLES",
    "Chunk",
    "ConnectionSettings",
    "CopyStream",
    "EmbeddingSource",
    "EmbeddingsFileError",
    "HnswParams",
    "ItemCatalogue",
    "LoadStatus",
    "QueryInputError",
    "Replacement",
    "ReplacementRefused",
    "SwapLockTimeout",
    "TableLoad",
    "TableName",
    "TableSpec",
    "VectorDbConfigError",
    "VectorDbConnection",
    "calibrate_index",
    "connect",
    "connect_from_env",
    "encode_copy_rows",
    "ensure_schema",
    "exact_similar",
    "exact_top_k",
    "file_source",
    "index_name",
    "item_catalogue",
    "items_for_users",
    "load_embeddings",
    "parse_embeddings",
    "read_catalogue",
    "replacement_refusal",
    "s3_source",
    "settings_from_env",
    "similar_items",
    "top_k_of",
    "vector_literal",
]
