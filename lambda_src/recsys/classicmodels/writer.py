"""Writing a dataset into MySQL/MariaDB through any DB-API connection with the `format` paramstyle (pymysql): into a
staging database first, then every table swapped in with one `RENAME TABLE`, so readers never see a half-loaded table
and a failed load leaves the previous data in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recsys.classicmodels.schema import COLUMNS, DDL, TABLES, Dataset, TableName

Progress = Callable[[TableName, int, int], None]
STAGING_SUFFIX = "__seed_staging"
RETIRED_SUFFIX = "__seed_retired"


def _quote(identifier: str) -> str:
    if not identifier or "`" in identifier or len(identifier) > 64 - len(STAGING_SUFFIX):
        raise ValueError(f"invalid database name {identifier!r}: 1 to {64 - len(STAGING_SUFFIX)} characters, no "
                         "backquotes")
    return f"`{identifier}`"


def insert_statement(table: TableName, database: str) -> str:
    columns = ", ".join(f"`{c}`" for c in COLUMNS[table])
    placeholders = ", ".join(["%s"] * len(COLUMNS[table]))
    return f"INSERT INTO {_quote(database)}.`{table}` ({columns}) VALUES ({placeholders})"


def load(conn: Any, database: str, dataset: Dataset, *, batch_size: int = 5000,
         progress: Progress | None = None) -> dict[TableName, int]:
    """Replace the classicmodels tables of `database` with `dataset`, all at once; returns rows written per table.

    The rows go into `<database>__seed_staging` first; one `RENAME TABLE` statement (atomic in MySQL and MariaDB) then
    swaps every table in. If anything fails before the swap, `database` still holds exactly what it held before.
    Tables of `database` that are not classicmodels tables are left alone. The user needs CREATE, DROP, INSERT and
    ALTER on `database` and on the two helper databases (an RDS master user has them).
    """
    target = _quote(database)
    staging = _quote(database + STAGING_SUFFIX)
    retired = _quote(database + RETIRED_SUFFIX)
    written: dict[TableName, int] = {}
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {target}")
        cur.execute(f"DROP DATABASE IF EXISTS {staging}")
        cur.execute(f"CREATE DATABASE {staging}")
        try:
            cur.execute(f"USE {staging}")
            for table in TABLES:
                cur.execute(DDL[table])
            # Parents come first anyway; checks off only makes the bulk insert cheaper, the swap re-uses the rows as is.
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            for table in TABLES:
                rows = dataset.tables[table]
                sql = insert_statement(table, database + STAGING_SUFFIX)
                for start in range(0, len(rows), batch_size):
                    cur.executemany(sql, rows[start:start + batch_size])
                    # Staging only: committing per batch keeps the undo log small; atomicity comes from the swap.
                    conn.commit()
                    if progress is not None:
                        progress(table, min(start + batch_size, len(rows)), len(rows))
                if not rows and progress is not None:
                    progress(table, 0, 0)
                written[table] = len(rows)
            conn.commit()
            cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
            _verify_counts(cur, database + STAGING_SUFFIX, written)

            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,))
            existing = {row[0] for row in cur.fetchall()} & set(TABLES)
            cur.execute(f"DROP DATABASE IF EXISTS {retired}")
            cur.execute(f"CREATE DATABASE {retired}")
            renames = [f"{target}.`{t}` TO {retired}.`{t}`" for t in TABLES if t in existing]
            renames += [f"{staging}.`{t}` TO {target}.`{t}`" for t in TABLES]
            cur.execute("RENAME TABLE " + ", ".join(renames))
            cur.execute(f"USE {target}")
        finally:
            cur.execute("SET SESSION foreign_key_checks = 0")
            cur.execute(f"DROP DATABASE IF EXISTS {retired}")
            cur.execute(f"DROP DATABASE IF EXISTS {staging}")
            cur.execute("SET SESSION foreign_key_checks = 1")
    return written


def _verify_counts(cur: Any, database: str, expected: dict[TableName, int]) -> None:
    for table, count in expected.items():
        cur.execute(f"SELECT COUNT(*) FROM {_quote(database)}.`{table}`")
        (found,) = cur.fetchone()
        if int(found) != count:
            raise RuntimeError(f"staging table {table} has {found} rows, expected {count}: nothing was swapped in")
