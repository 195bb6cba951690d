"""The pgvector schema: the embedding tables, their HNSW indexes, the metrics they rank by, and `embedding_sources`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg2.extensions

from recsys.calibration import Metric

EMBEDDING_DIM = 32
TableName = Literal["item_emb", "user_emb"]


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


def ensure_schema(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
        cur.execute(SOURCES_TABLE_SQL)
        cur.execute(SOURCES_TABLE_UPGRADE_SQL)


def table_exists(cur: Any, table: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    return bool(cur.fetchone()[0])
