"""The replacement guard: a reload that would drop ids the live table serves is refused unless told `force`.

A retrain of the same catalogue keeps every id. A file that loses ids the live table serves is far more likely a
truncated or wrong upload than an intended change (issue 11: a well-formed one-row item file replaced 111 items, and
every streamed record failed until someone reloaded by hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recsys.vectordb.schema import TableName, table_exists


class ReplacementRefused(ValueError):
    """The new file would drop ids the live table serves (or most of its rows); the load was rolled back."""


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


def guard_replacement(cur: Any, table: TableName, staging: str, new_rows: int, source: str) -> None:
    """Raise ReplacementRefused when `staging` would drop ids the live `table` serves. Runs before the index build
    (a refusal costs no HNSW build) inside the load's transaction, so the refusal rolls the staging table back."""
    if not table_exists(cur, table):
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

