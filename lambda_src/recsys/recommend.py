"""Recommendations for a whole batch of sessions at once: one model call and two SQL statements, however many records.

The lab made three HTTP calls per record to another Lambda. Here the batch is embedded in one numpy call, the top-k
items for every user come from one statement, and the neighbours of every chosen history product from another
(`recsys.vectordb` runs each as a single LATERAL join). The model and the database are injected, so this module is
pure given its inputs and is tested with fakes and with the real PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from recsys.firehose import (
    InvalidRecord,
    NeighbourItem,
    ScoredItem,
    SessionEvent,
    choose_history_product,
)


class UserEmbedder(Protocol):
    def user_embeddings(self, users: Sequence[Mapping[str, Any]]) -> Any: ...


# (embeddings, k) -> per embedding, the top-k items; (item_ids, k) -> per item id, its k nearest other items.
ItemsForUsers = Callable[[Any, int], Sequence[Any]]
SimilarItems = Callable[[Sequence[str], int], Any]


@dataclass(frozen=True)
class Recommendation:
    recommended: tuple[ScoredItem, ...]
    product_code: str
    neighbours: tuple[NeighbourItem, ...]


def _pair(row: Any, value_key: str) -> tuple[str, float]:
    """One result row as (id, value), whether the query layer returns tuples, dicts or small objects."""
    if isinstance(row, Mapping):
        return str(row["id"]), float(row[value_key])
    if isinstance(row, tuple | list) and len(row) == 2:
        return str(row[0]), float(row[1])
    return str(row.id), float(getattr(row, value_key))


def _neighbours_by_product(result: Any, product_codes: Sequence[str]) -> dict[str, list[Any]]:
    if isinstance(result, Mapping):
        return {str(code): list(rows) for code, rows in result.items() if rows is not None}
    rows_per_code = list(result)
    if len(rows_per_code) != len(product_codes):
        raise RuntimeError(
            f"similar_items returned {len(rows_per_code)} result lists for {len(product_codes)} product codes"
        )
    return {code: list(rows) for code, rows in zip(product_codes, rows_per_code, strict=True) if rows is not None}


def recommend_batch(
    sessions: Sequence[SessionEvent],
    *,
    model: UserEmbedder,
    items_for_users: ItemsForUsers,
    similar_items: SimilarItems,
    k: int,
) -> list[Recommendation | InvalidRecord]:
    """For each session, in order, its recommendations, or the `InvalidRecord` that says why it has none.

    A session fails alone (unknown product); anything that fails the whole batch (the database is unreachable, the
    model is broken) propagates, so Firehose retries the batch instead of us delivering it half-done.
    """
    if not sessions:
        return []
    embeddings = model.user_embeddings([s.user_features() for s in sessions])
    top_items = list(items_for_users(embeddings, k))
    if len(top_items) != len(sessions):
        raise RuntimeError(f"items_for_users returned {len(top_items)} result lists for {len(sessions)} users")

    chosen = [choose_history_product(s.browse_history) for s in sessions]
    distinct = sorted(set(chosen))
    neighbours = _neighbours_by_product(similar_items(distinct, k), distinct)

    out: list[Recommendation | InvalidRecord] = []
    for rows, code in zip(top_items, chosen, strict=True):
        near = neighbours.get(code)
        # A product in the catalogue always has neighbours (k >= 1 and more than one item); no rows means the
        # product is not in item_emb, which no retry will change.
        if not near:
            out.append(InvalidRecord("the chosen browse_history product is not in the item catalogue"))
            continue
        scored = tuple(ScoredItem(*_pair(row, "score")) for row in rows)
        near_items = tuple(NeighbourItem(*_pair(row, "distance")) for row in near)
        out.append(Recommendation(recommended=scored, product_code=code, neighbours=near_items))
    return out
