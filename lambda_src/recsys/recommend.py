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


# The shapes of `recsys.vectordb` with the connection bound: (embeddings, k) -> per embedding, the top-k
# `(item_id, score)` by inner product; (item_ids, k) -> per item id, in order, the k most cosine-similar other items as
# `(item_id, similarity)`, an empty list for an id that is not in item_emb.
ItemsForUsers = Callable[[Any, int], Sequence[Sequence[tuple[str, float]]]]
SimilarItems = Callable[[Sequence[str], int], Sequence[Sequence[tuple[str, float]]]]


@dataclass(frozen=True)
class Recommendation:
    recommended: tuple[ScoredItem, ...]
    product_code: str
    neighbours: tuple[NeighbourItem, ...]


def _scored(rows: Sequence[tuple[str, float]]) -> tuple[ScoredItem, ...]:
    return tuple([ScoredItem(str(item_id), float(score)) for item_id, score in rows])


def _neighbours(rows: Sequence[tuple[str, float]]) -> tuple[NeighbourItem, ...]:
    # vectordb ranks neighbours by cosine similarity; the lab's field is a distance, so we report the cosine
    # distance (1 - similarity): 0 for the same direction, 2 for the opposite one, smaller is closer.
    return tuple([NeighbourItem(str(item_id), 1.0 - float(score)) for item_id, score in rows])


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
    # Sessions of one customer (or of people with the same features) share an embedding and its top-k: embed and
    # query each distinct user once. A batch of 500 often holds far fewer distinct users than records.
    slot_of: dict[tuple[str, str, float], int] = {}
    users: list[dict[str, Any]] = []
    slots: list[int] = []
    for session in sessions:
        key = (session.city, session.country, session.credit_limit)
        if key not in slot_of:
            slot_of[key] = len(users)
            users.append(session.user_features())
        slots.append(slot_of[key])
    embeddings = model.user_embeddings(users)
    distinct_top = list(items_for_users(embeddings, k))
    if len(distinct_top) != len(users):
        raise RuntimeError(f"items_for_users returned {len(distinct_top)} result lists for {len(users)} users")
    scored = [_scored(rows) for rows in distinct_top]

    chosen = [choose_history_product(s.browse_history) for s in sessions]
    distinct = sorted(set(chosen))
    neighbour_rows = list(similar_items(distinct, k))
    if len(neighbour_rows) != len(distinct):
        raise RuntimeError(f"similar_items returned {len(neighbour_rows)} result lists for {len(distinct)} item ids")
    neighbours = {code: _neighbours(rows) for code, rows in zip(distinct, neighbour_rows, strict=True)}

    out: list[Recommendation | InvalidRecord] = []
    for slot, code in zip(slots, chosen, strict=True):
        near = neighbours[code]
        # A product in the catalogue always has neighbours (k >= 1 and more than one item); no rows means the
        # product is not in item_emb, which no retry will change.
        if not near:
            out.append(InvalidRecord("the chosen browse_history product is not in the item catalogue"))
            continue
        out.append(Recommendation(recommended=scored[slot], product_code=code, neighbours=near))
    return out
