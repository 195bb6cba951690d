"""Recommendations for a whole batch of sessions at once: one model call and two SQL statements, however many records.

The lab made three HTTP calls per record to another Lambda. Here the batch is embedded in one numpy call, the top-k
items for every user come from one statement, and the neighbours of every chosen history product from another
(`recsys.vectordb` runs each as a single LATERAL join). The model and the database are injected, so this module is
pure given its inputs and is tested with fakes and with the real PostgreSQL alike.

One session's content never fails the others: a user the model cannot embed (a feature out of its float32 range, an
output that is not finite) fails only the sessions with those features, and a chosen product that cannot be a catalogue
id is never sent to the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from recsys.firehose import (
    InvalidRecord,
    NeighbourItem,
    ScoredItem,
    SessionEvent,
    choose_history_product,
)
from recsys.model import FeatureError


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


def _feature_failure(err: FeatureError) -> InvalidRecord:
    # The model's message quotes the value; ours names the feature only (no customer data in the logs).
    if err.feature is None:
        return InvalidRecord("the model's embedding of this session's city, country and credit_limit is not finite "
                             "(values far outside what it was trained on)")
    return InvalidRecord(f"the model cannot use this session's {err.feature}: out of the range it computes in "
                         "(a finite float32 once scaled)")


_NOT_FINITE = InvalidRecord("the model's embedding of this session's city, country and credit_limit is not finite")


def _embed(model: UserEmbedder, users: Sequence[Mapping[str, Any]]) -> tuple[Any, dict[int, InvalidRecord]]:
    """The users' embeddings (one model call), and the users that have none with the reason: (embeddings of the
    others, in order; {user index: reason})."""
    try:
        embeddings = np.asarray(model.user_embeddings(users))
    except FeatureError:
        embeddings = None
    if embeddings is not None:
        finite = np.isfinite(embeddings).all(axis=1) if embeddings.size else np.ones(len(users), dtype=bool)
        if finite.all():
            return embeddings, {}
        bad = {int(i): _NOT_FINITE for i in np.flatnonzero(~finite)}
        return embeddings[finite], bad
    # Only for a batch holding a user the model refuses: each distinct user alone, so the error lands on that user.
    rows: list[Any] = []
    bad = {}
    for index, user in enumerate(users):
        try:
            row = np.asarray(model.user_embeddings([user]))
        except FeatureError as err:
            bad[index] = _feature_failure(err)
            continue
        if not np.isfinite(row).all():
            bad[index] = _NOT_FINITE
            continue
        rows.append(row[0])
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1), bad


def _may_be_a_catalogue_id(code: str) -> bool:
    """False for a code no catalogue can hold: PostgreSQL text has no NUL, UTF-8 has no lone surrogate."""
    if "\x00" in code:
        return False
    if code.isascii():
        return True
    try:
        code.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NOT_IN_CATALOGUE = "the chosen browse_history product is not in the item catalogue"


def recommend_batch(
    sessions: Sequence[SessionEvent],
    *,
    model: UserEmbedder,
    items_for_users: ItemsForUsers,
    similar_items: SimilarItems,
    k: int,
) -> list[Recommendation | InvalidRecord]:
    """For each session, in order, its recommendations, or the `InvalidRecord` that says why it has none.

    A session fails alone (features the model cannot use, unknown product); anything that fails the whole batch (the
    database is unreachable, the model is broken) propagates, so Firehose retries the batch instead of us delivering it
    half-done.
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
    embeddings, unusable = _embed(model, users)
    scored: list[tuple[ScoredItem, ...] | InvalidRecord] = []
    if len(embeddings):
        distinct_top = list(items_for_users(embeddings, k))
        if len(distinct_top) != len(embeddings):
            raise RuntimeError(f"items_for_users returned {len(distinct_top)} result lists for {len(embeddings)} users")
        answers = iter(distinct_top)
        scored = [unusable[i] if i in unusable else _scored(next(answers)) for i in range(len(users))]
    else:
        scored = [unusable[i] for i in range(len(users))]

    chosen = [choose_history_product(s.browse_history) for s in sessions]
    wanted = {code for slot, code in zip(slots, chosen, strict=True) if not isinstance(scored[slot], InvalidRecord)}
    distinct = sorted(code for code in wanted if _may_be_a_catalogue_id(code))
    neighbours: dict[str, tuple[NeighbourItem, ...]] = {}
    if distinct:
        neighbour_rows = list(similar_items(distinct, k))
        if len(neighbour_rows) != len(distinct):
            raise RuntimeError(
                f"similar_items returned {len(neighbour_rows)} result lists for {len(distinct)} item ids")
        neighbours = {code: _neighbours(rows) for code, rows in zip(distinct, neighbour_rows, strict=True)}

    out: list[Recommendation | InvalidRecord] = []
    for slot, code in zip(slots, chosen, strict=True):
        recommended = scored[slot]
        if isinstance(recommended, InvalidRecord):
            out.append(recommended)
            continue
        near = neighbours.get(code)
        # A product in the catalogue always has neighbours (k >= 1 and more than one item); no rows means the
        # product is not in item_emb, which no retry will change.
        if not near:
            out.append(InvalidRecord(_NOT_IN_CATALOGUE))
            continue
        out.append(Recommendation(recommended=recommended, product_code=code, neighbours=near))
    return out
