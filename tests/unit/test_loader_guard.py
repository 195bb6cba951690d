"""The loader's replacement guard as a policy (recsys.vectordb.replacement_refusal): which reloads are refused and what
the one-line message says. The database side (the anti-join, the rollback) is tested on PostgreSQL in
tests/integration/test_vectordb.py."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from recsys.vectordb import Replacement, replacement_refusal

SOURCE = "s3://artifacts/embeddings/item_embeddings.csv"


def change(live: int, new: int, missing: int = 0, examples: tuple[str, ...] = ()) -> Replacement:
    return Replacement("item_emb", SOURCE, live, new, missing, examples)


def test_the_issue_case_names_table_rows_missing_ids_and_force() -> None:
    refusal = replacement_refusal(change(111, 1, 110, ("S10_1949", "S10_2016", "S10_4698", "S10_4757", "S10_4962")))

    assert refusal == (
        f"item_emb: refusing to replace the live table (111 rows) with {SOURCE} (1 row): fewer than half the live "
        "rows; 110 live ids missing from it (S10_1949, S10_2016, S10_4698, S10_4757, S10_4962, ...). Nothing was "
        'changed, the live table still serves; if the new catalogue is intended, invoke the loader with force=true '
        '(event {"force": true}) to replace anyway.'
    )


def test_all_missing_ids_shown_get_no_ellipsis_and_one_id_is_singular() -> None:
    refusal = replacement_refusal(change(40, 40, 1, ("S00007",)))
    assert refusal is not None
    assert "(40 rows) with" in refusal and "(40 rows): 1 live id missing from it (S00007). Nothing" in refusal
    assert "fewer than half" not in refusal


def test_exactly_half_the_rows_with_every_live_id_is_a_normal_reload_and_one_fewer_is_not() -> None:
    # Only reachable with repeated live ids (the tables have primary keys), but the row rule stands on its own.
    assert replacement_refusal(change(10, 5)) is None
    refusal = replacement_refusal(change(11, 5))
    assert refusal is not None and ": fewer than half the live rows. Nothing was changed" in refusal


@given(live=st.integers(0, 10**7), new=st.integers(1, 10**7), missing=st.integers(0, 10**7))
def test_refused_exactly_when_ids_go_missing_or_the_table_halves_and_always_on_one_line(
        live: int, new: int, missing: int) -> None:
    examples = tuple(f"S{i:05d}" for i in range(min(missing, 5)))
    refusal = replacement_refusal(change(live, new, missing, examples))

    assert (refusal is not None) == (missing > 0 or 2 * new < live)
    if refusal is not None:
        assert "\n" not in refusal
        assert refusal.startswith(f"item_emb: refusing to replace the live table ({live} row")
        assert f"with {SOURCE} ({new} row" in refusal
        assert ("fewer than half the live rows" in refusal) == (2 * new < live)
        assert (f"{missing} live id" in refusal) == (missing > 0)
        assert refusal.endswith("invoke the loader with force=true (event {\"force\": true}) to replace anyway.")
