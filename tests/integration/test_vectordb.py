"""The vector database on a real PostgreSQL + pgvector, with the embeddings in a real (moto) S3 bucket.

Loader guarantees: all or nothing, old-or-new to concurrent readers, unchanged files skipped, malformed files refused
with the file and row named. Queries: one statement per batch, correct against exact numpy search, served by HNSW.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import loader
import numpy as np
import pytest
from recsys import calibration, vectordb
from recsys.vectordb import EmbeddingsFileError, QueryInputError
from recsys.vectordb import exact as exact_search

DIM = 32
BUCKET = "ml-artifacts"


def embeddings_csv(ids: list[Any], vectors: np.ndarray) -> bytes:
    lines = ["id,embedding"]
    lines += [f'{i},"[{",".join(repr(float(x)) for x in row)}]"' for i, row in zip(ids, vectors, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def random_vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def exact_scores(queries: np.ndarray, candidates: np.ndarray, metric: str) -> np.ndarray:
    """The oracle: every candidate's score for each query in float64, as the SQL defines it (inner product, or cosine
    similarity), independent of the float32 in-memory search under test."""
    q, c = np.asarray(queries, dtype=np.float64), np.asarray(candidates, dtype=np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        c = c / np.linalg.norm(c, axis=1, keepdims=True)
    return q @ c.T


@pytest.fixture()
def database(postgres_service: Any) -> Iterator[dict[str, str]]:
    """A fresh database per test (the table names are fixed), as the VECTOR_DB_* environment the Lambdas get."""
    name = f"vec_{uuid.uuid4().hex[:12]}"
    admin = postgres_service.connect()
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    env = {"VECTOR_DB_HOST": postgres_service.host, "VECTOR_DB_PORT": str(postgres_service.port),
           "VECTOR_DB_NAME": name, "VECTOR_DB_USER": postgres_service.user,
           "VECTOR_DB_PASSWORD": postgres_service.password}
    yield env
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


@pytest.fixture()
def s3(moto_service: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key, value in {"AWS_ENDPOINT_URL": moto_service.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("ARTIFACTS_BUCKET", bucket)
    client.bucket = bucket  # type: ignore[attr-defined]
    return client


@pytest.fixture()
def lambda_env(database: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in database.items():
        monkeypatch.setenv(key, value)
    return database


def publish(s3: Any, items: tuple[list[str], np.ndarray], users: tuple[list[int], np.ndarray]) -> None:
    s3.put_object(Bucket=s3.bucket, Key="embeddings/item_embeddings.csv", Body=embeddings_csv(*items))
    s3.put_object(Bucket=s3.bucket, Key="embeddings/user_embeddings.csv", Body=embeddings_csv(*users))


def item_ids(n: int, prefix: str = "S") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def table_oid(env: dict[str, str], table: str) -> int | None:
    with vectordb.connect_from_env(env) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)::oid", (table,))
        return cur.fetchone()[0]


def table_rows(env: dict[str, str], table: str) -> dict[Any, np.ndarray]:
    conn = vectordb.connect_from_env(env)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, embedding::text FROM {table}")
            return {i: np.array(text.strip("[]").split(","), dtype=np.float32) for i, text in cur.fetchall()}
    finally:
        conn.close()


# ---- the loader ---------------------------------------------------------------------------------------------------
def test_the_handler_loads_both_files_exactly_and_records_their_etags(s3: Any, lambda_env: dict[str, str]) -> None:
    items, users = random_vectors(50, 1), random_vectors(20, 2)
    publish(s3, (item_ids(50), items), (list(range(100, 120)), users))

    summary = loader.handler({}, None)

    assert summary["status"] == "loaded"
    assert summary["tables"]["item_emb"]["rows"] == 50 and summary["tables"]["user_emb"]["rows"] == 20
    loaded_items, loaded_users = table_rows(lambda_env, "item_emb"), table_rows(lambda_env, "user_emb")
    np.testing.assert_array_equal(np.vstack([loaded_items[i] for i in item_ids(50)]), items)
    np.testing.assert_array_equal(np.vstack([loaded_users[i] for i in range(100, 120)]), users)
    etag = s3.head_object(Bucket=s3.bucket, Key="embeddings/item_embeddings.csv")["ETag"]
    assert summary["tables"]["item_emb"]["version"] == etag


def test_rerunning_with_unchanged_files_does_nothing(s3: Any, lambda_env: dict[str, str]) -> None:
    publish(s3, (item_ids(30), random_vectors(30, 1)), (list(range(30)), random_vectors(30, 2)))
    loader.handler({}, None)
    before = table_oid(lambda_env, "item_emb"), table_oid(lambda_env, "user_emb")

    summary = loader.handler({}, None)

    assert summary["status"] == "unchanged"
    assert {t["status"] for t in summary["tables"].values()} == {"unchanged"}
    assert (table_oid(lambda_env, "item_emb"), table_oid(lambda_env, "user_emb")) == before


def test_a_changed_file_is_reloaded_and_only_that_table_is_rebuilt(s3: Any, lambda_env: dict[str, str]) -> None:
    users = (list(range(30)), random_vectors(30, 2))
    publish(s3, (item_ids(30), random_vectors(30, 1)), users)
    loader.handler({}, None)
    user_oid = table_oid(lambda_env, "user_emb")
    new_items = random_vectors(40, 3)
    publish(s3, (item_ids(40), new_items), users)

    summary = loader.handler({}, None)

    assert summary["tables"]["item_emb"]["status"] == "loaded"
    assert summary["tables"]["user_emb"]["status"] == "unchanged"
    assert table_oid(lambda_env, "user_emb") == user_oid
    loaded = table_rows(lambda_env, "item_emb")
    np.testing.assert_array_equal(np.vstack([loaded[i] for i in item_ids(40)]), new_items)
    # The new items' inner-product index was calibrated with the live (unchanged) users as queries.
    assert summary["tables"]["item_emb"]["hnsw_search"]["inner_product"]["queries"] == 30
    assert summary["tables"]["user_emb"]["hnsw_search"] is None


def _bad_files() -> list[tuple[str, str, bytes, str]]:
    good_row = '"[' + ",".join(["0.5"] * DIM) + ']"'
    short_row = '"[' + ",".join(["0.5"] * (DIM - 1)) + ']"'
    nan_row = '"[' + ",".join(["0.5"] * (DIM - 1) + ["NaN"]) + ']"'
    text_row = '"[' + ",".join(["0.5"] * (DIM - 1) + ["abc"]) + ']"'
    return [
        ("wrong dimension", "item", f"id,embedding\nA,{good_row}\nB,{short_row}\n".encode(),
         "item_embeddings.csv, row 2 (line 3): embedding has 31 numbers, expected 32"),
        ("NaN", "item", f"id,embedding\nA,{good_row}\nB,{good_row}\nC,{nan_row}\n".encode(),
         "item_embeddings.csv, row 3 (line 4): embedding contains NaN or infinity"),
        ("not a number", "item", f"id,embedding\nA,{text_row}\n".encode(),
         "row 1 (line 2): embedding value #32 'abc' is not a number"),
        ("duplicate id", "item", f"id,embedding\nA,{good_row}\nB,{good_row}\nA,{good_row}\n".encode(),
         "row 3 (line 4): duplicate id 'A' (first on row 1)"),
        ("missing header", "item", f"A,{good_row}\n".encode(),
         "item_embeddings.csv, line 1: header must be 'id,embedding'"),
        ("user id not an integer", "user", f"id,embedding\n12,{good_row}\nbob,{good_row}\n".encode(),
         "user_embeddings.csv, row 2 (line 3): id 'bob' is not an integer user id"),
        ("header only", "user", b"id,embedding\n", "has a header but no rows"),
    ]


@pytest.mark.parametrize(("kind", "which", "content", "message"), _bad_files(), ids=[b[0] for b in _bad_files()])
def test_a_malformed_file_is_refused_with_file_and_row_and_the_old_data_stays(
        s3: Any, lambda_env: dict[str, str], kind: str, which: str, content: bytes, message: str) -> None:
    items, users = random_vectors(25, 1), random_vectors(10, 2)
    publish(s3, (item_ids(25), items), (list(range(10)), users))
    loader.handler({}, None)
    # The other file changes too: all or nothing means it must not be swapped in either.
    publish(s3, (item_ids(26), random_vectors(26, 9)), (list(range(11)), random_vectors(11, 9)))
    s3.put_object(Bucket=s3.bucket, Key=f"embeddings/{which}_embeddings.csv", Body=content)

    with pytest.raises(EmbeddingsFileError) as failure:
        loader.handler({}, None)

    assert message in str(failure.value)
    assert f"s3://{s3.bucket}/embeddings/{which}_embeddings.csv" in str(failure.value)
    loaded_items, loaded_users = table_rows(lambda_env, "item_emb"), table_rows(lambda_env, "user_emb")
    np.testing.assert_array_equal(np.vstack([loaded_items[i] for i in item_ids(25)]), items)
    assert len(loaded_items) == 25 and len(loaded_users) == 10
    assert table_oid(lambda_env, "item_emb_loading") is None and table_oid(lambda_env, "user_emb_loading") is None


def test_the_first_load_of_a_bad_file_leaves_no_tables_behind(s3: Any, lambda_env: dict[str, str]) -> None:
    s3.put_object(Bucket=s3.bucket, Key="embeddings/item_embeddings.csv", Body=b"id,embedding\nA,\"[1,2]\"\n")
    s3.put_object(Bucket=s3.bucket, Key="embeddings/user_embeddings.csv",
                  Body=embeddings_csv([1], random_vectors(1, 1)))
    with pytest.raises(EmbeddingsFileError, match="expected 32"):
        loader.handler({}, None)
    assert table_oid(lambda_env, "item_emb") is None and table_oid(lambda_env, "user_emb") is None


def test_a_missing_file_names_the_object_and_says_to_publish(s3: Any, lambda_env: dict[str, str]) -> None:
    with pytest.raises(EmbeddingsFileError, match=f"s3://{s3.bucket}/embeddings/item_embeddings.csv does not exist"):
        loader.handler({}, None)


def test_event_overrides_choose_bucket_and_keys(s3: Any, lambda_env: dict[str, str]) -> None:
    s3.put_object(Bucket=s3.bucket, Key="v2/items.csv", Body=embeddings_csv(item_ids(5), random_vectors(5, 1)))
    s3.put_object(Bucket=s3.bucket, Key="v2/users.csv", Body=embeddings_csv([7], random_vectors(1, 1)))
    summary = loader.handler({"bucket": s3.bucket, "item_key": "v2/items.csv", "user_key": "v2/users.csv"}, None)
    assert summary["tables"]["item_emb"]["source"] == f"s3://{s3.bucket}/v2/items.csv"
    assert summary["tables"]["user_emb"]["rows"] == 1
    assert loader.handler({"bucket": s3.bucket, "item_key": "v2/items.csv", "user_key": "v2/users.csv",
                           "force": True}, None)["status"] == "loaded"


def test_two_loaders_racing_on_a_fresh_database_load_once(s3: Any, lambda_env: dict[str, str]) -> None:
    publish(s3, (item_ids(300), random_vectors(300, 1)), (list(range(30)), random_vectors(30, 2)))
    outcomes: list[Any] = []

    def run() -> None:
        try:
            outcomes.append(loader.handler({}, None)["status"])
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(map(str, outcomes)) == ["loaded", "unchanged"], outcomes
    assert len(table_rows(lambda_env, "item_emb")) == 300


def test_a_reload_during_concurrent_queries_never_fails_and_never_shows_empty_or_mixed_results(
        s3: Any, lambda_env: dict[str, str]) -> None:
    n = 1500
    versions = [(item_ids(n, prefix), random_vectors(n, seed)) for prefix, seed in (("A", 1), ("B", 2), ("C", 3))]
    users = (list(range(10)), random_vectors(10, 4))
    publish(s3, versions[0], users)
    loader.handler({}, None)
    stop = threading.Event()
    errors: list[BaseException] = []
    results: list[list[list[tuple[str, float]]]] = []
    queries = random_vectors(4, 5)

    def reader(kind: str) -> None:
        conn = vectordb.connect_from_env(lambda_env)
        try:
            while not stop.is_set():
                if kind == "users":
                    results.append(vectordb.items_for_users(conn, queries, 10))
                else:
                    prefix = results[-1][0][0][0][0] if results and results[-1][0] else "A"
                    found = vectordb.similar_items(conn, [f"{prefix}00001", f"{prefix}00002"], 10)
                    if all(found):  # an id of the version that was just replaced may be gone: that is allowed
                        results.append(found)
        except BaseException as exc:  # noqa: BLE001 - any failure of a reader is the test's failure
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=reader, args=(kind,)) for kind in ("users", "users", "items")]
    for thread in threads:
        thread.start()
    try:
        for version in (versions[1], versions[2], versions[0]):
            publish(s3, version, users)
            # Each version replaces every id of the one before: an intended change, so forced past the guard.
            assert loader.handler({"force": True}, None)["tables"]["item_emb"]["status"] == "loaded"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert not errors, errors
    assert len(results) > 10
    for batch in results:
        for top in batch:
            assert len(top) == 10, "a query saw an empty or partial table"
            assert len({item_id[0] for item_id, _ in top}) == 1, f"one query mixed two versions: {top}"


# ---- the replacement guard ----------------------------------------------------------------------------------------
def recorded_source(env: dict[str, str], table: str) -> tuple[str, int]:
    with vectordb.connect_from_env(env) as conn, conn.cursor() as cur:
        cur.execute("SELECT source_version, row_count FROM embedding_sources WHERE table_name = %s", (table,))
        version, rows = cur.fetchone()
        return str(version), int(rows)


def assert_still_serving(env: dict[str, str], ids: list[str], vectors: np.ndarray) -> None:
    """The live items are exactly the old ones, the staging table is gone, and queries answer from the old ids."""
    loaded = table_rows(env, "item_emb")
    assert sorted(loaded) == sorted(ids)
    np.testing.assert_array_equal(np.vstack([loaded[i] for i in ids]), vectors)
    assert table_oid(env, "item_emb_loading") is None and table_oid(env, "user_emb_loading") is None
    conn = vectordb.connect_from_env(env)
    try:
        similar = vectordb.similar_items(conn, [ids[1]], 5)[0]
        top = vectordb.items_for_users(conn, random_vectors(1, 77), 5)[0]
    finally:
        conn.close()
    assert len(similar) == 5 and {i for i, _ in similar} <= set(ids)
    assert len(top) == 5 and {i for i, _ in top} <= set(ids)


def test_a_truncated_item_file_is_refused_and_the_old_catalogue_keeps_serving(
        s3: Any, lambda_env: dict[str, str]) -> None:
    ids, items = item_ids(111), random_vectors(111, 1)
    users = (list(range(10)), random_vectors(10, 2))
    publish(s3, (ids, items), users)
    loader.handler({}, None)
    old_version = recorded_source(lambda_env, "item_emb")
    # Well-formed, one row, an id the live table has: the truncated catalogue.
    publish(s3, (ids[:1], random_vectors(1, 3)), users)

    with pytest.raises(vectordb.ReplacementRefused) as refused:
        loader.handler({}, None)

    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        f"item_emb: refusing to replace the live table (111 rows) with s3://{s3.bucket}/embeddings/item_embeddings.csv "
        "(1 row): fewer than half the live rows; 110 live ids missing from it (S00001, S00002, S00003, S00004, S00005, "
        "...).")
    assert message.endswith('invoke the loader with force=true (event {"force": true}) to replace anyway.')
    assert_still_serving(lambda_env, ids, items)
    assert recorded_source(lambda_env, "item_emb") == old_version


@pytest.mark.parametrize("table", ["item_emb", "user_emb"])
def test_a_file_that_drops_a_few_live_ids_is_refused_even_with_more_rows(
        s3: Any, lambda_env: dict[str, str], table: str) -> None:
    ids, items = item_ids(40), random_vectors(40, 1)
    user_ids, users = list(range(100, 130)), random_vectors(30, 2)
    publish(s3, (ids, items), (user_ids, users))
    loader.handler({}, None)
    if table == "item_emb":  # two ids gone, five new ones: more rows than before, still not a superset
        kept = [i for i in ids if i not in ("S00007", "S00031")] + item_ids(5, "N")
        publish(s3, (kept, random_vectors(len(kept), 3)), (user_ids, users))
        expected = "(40 rows) with s3://{bucket}/embeddings/item_embeddings.csv (43 rows): 2 live ids missing from " \
                   "it (S00007, S00031)."
    else:
        kept_users = [u for u in user_ids if u != 117] + [500]
        publish(s3, (ids, items), (kept_users, random_vectors(len(kept_users), 3)))
        expected = "(30 rows) with s3://{bucket}/embeddings/user_embeddings.csv (30 rows): 1 live id missing from " \
                   "it (117)."

    with pytest.raises(vectordb.ReplacementRefused) as refused:
        loader.handler({}, None)

    assert str(refused.value).startswith(f"{table}: refusing to replace the live table ")
    assert expected.format(bucket=s3.bucket) in str(refused.value)
    assert_still_serving(lambda_env, ids, items)
    assert sorted(table_rows(lambda_env, "user_emb")) == user_ids


def test_force_replaces_a_shrinking_catalogue_anyway(s3: Any, lambda_env: dict[str, str]) -> None:
    publish(s3, (item_ids(111), random_vectors(111, 1)), (list(range(10)), random_vectors(10, 2)))
    loader.handler({}, None)
    smaller_ids, smaller = item_ids(1) + ["NEW1"], random_vectors(2, 3)
    publish(s3, (smaller_ids, smaller), (list(range(3)), random_vectors(3, 4)))

    summary = loader.handler({"force": True}, None)

    assert summary["tables"]["item_emb"]["status"] == "loaded" and summary["tables"]["item_emb"]["rows"] == 2
    loaded = table_rows(lambda_env, "item_emb")
    assert sorted(loaded) == sorted(smaller_ids)
    np.testing.assert_array_equal(np.vstack([loaded[i] for i in smaller_ids]), smaller)
    assert sorted(table_rows(lambda_env, "user_emb")) == [0, 1, 2]
    assert recorded_source(lambda_env, "item_emb")[1] == 2


@pytest.mark.parametrize("change", ["same ids, new vectors", "superset"])
def test_a_normal_reload_passes_the_guard(s3: Any, lambda_env: dict[str, str], change: str) -> None:
    ids = item_ids(60)
    users = (list(range(10)), random_vectors(10, 2))
    publish(s3, (ids, random_vectors(60, 1)), users)
    loader.handler({}, None)
    new_ids = {"same ids, new vectors": ids, "superset": ids + item_ids(30, "N")}[change]
    new_vectors = random_vectors(len(new_ids), 5)
    publish(s3, (new_ids, new_vectors), users)

    assert loader.handler({}, None)["tables"]["item_emb"]["status"] == "loaded"

    loaded = table_rows(lambda_env, "item_emb")
    assert sorted(loaded) == sorted(new_ids)
    np.testing.assert_array_equal(np.vstack([loaded[i] for i in new_ids]), new_vectors)


def test_a_first_load_has_nothing_to_guard(s3: Any, lambda_env: dict[str, str]) -> None:
    publish(s3, (item_ids(1), random_vectors(1, 1)), ([1], random_vectors(1, 2)))
    assert loader.handler({}, None)["status"] == "loaded"
    assert sorted(table_rows(lambda_env, "item_emb")) == item_ids(1)


def test_a_refused_load_fails_the_lambda_invocation_with_its_type_and_message(
        s3: Any, lambda_env: dict[str, str], moto_service: Any, tmp_path: Path) -> None:
    """Through the local Lambda runtime, as `pulumi up`'s post-deploy Invocation and the harness see it."""
    from harness.emulator.lambda_runtime import FunctionSpec, LambdaRuntime

    publish(s3, (item_ids(20), random_vectors(20, 1)), (list(range(5)), random_vectors(5, 2)))
    loader.handler({}, None)
    publish(s3, (item_ids(3), random_vectors(3, 3)), (list(range(5)), random_vectors(5, 2)))
    aws = {"AWS_ENDPOINT_URL": moto_service.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    runtime = LambdaRuntime(tmp_path / "logs", aws)
    try:
        runtime.deploy(FunctionSpec(name="embeddings-loader", handler="loader.handler",
                                    code_dir=Path(loader.__file__).parent, timeout_s=120,
                                    environment={**lambda_env, "ARTIFACTS_BUCKET": s3.bucket}))
        result = runtime.invoke("embeddings-loader", b"{}")
    finally:
        runtime.shutdown()

    assert result.function_error is not None
    error = json.loads(result.payload)
    assert error["errorType"] == "ReplacementRefused"
    assert error["errorMessage"].startswith("item_emb: refusing to replace the live table (20 rows) with ")
    assert "17 live ids missing from it (S00003, S00004, S00005, S00006, S00007, ...)" in error["errorMessage"]
    assert sorted(table_rows(lambda_env, "item_emb")) == item_ids(20)


# ---- the queries --------------------------------------------------------------------------------------------------
@pytest.fixture()
def loaded_catalogue(database: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], list[str], np.ndarray]:
    ids, vectors = item_ids(2000), random_vectors(2000, 11)
    (tmp_path / "items.csv").write_bytes(embeddings_csv(ids, vectors))
    (tmp_path / "users.csv").write_bytes(embeddings_csv([1], random_vectors(1, 1)))
    conn = vectordb.connect_from_env(database)
    vectordb.load_embeddings(conn, [vectordb.file_source("item_emb", str(tmp_path / "items.csv")),
                                    vectordb.file_source("user_emb", str(tmp_path / "users.csv"))])
    conn.close()
    return database, ids, vectors


@pytest.mark.parametrize("search", ["exact in memory", "hnsw index"])
def test_items_for_users_ranks_by_inner_product_like_exact_search(
        loaded_catalogue: tuple[dict[str, str], list[str], np.ndarray], search: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env, ids, vectors = loaded_catalogue
    if search == "hnsw index":
        monkeypatch.setattr(exact_search, "EXACT_SEARCH_MAX_ITEMS", 0)
    queries = random_vectors(8, 12)
    conn = vectordb.connect_from_env(env, ef_search=400)
    assert (vectordb.item_catalogue(conn) is None) == (search == "hnsw index"), "the search the test names"

    got = vectordb.items_for_users(conn, queries, 10)

    exact = exact_scores(queries, vectors, "inner_product")
    hits = 0
    for q, top in enumerate(got):
        expected = [ids[j] for j in np.argsort(-exact[q])[:10]]
        hits += len({i for i, _ in top} & set(expected))
        scores = [s for _, s in top]
        assert scores == sorted(scores, reverse=True), "best first"
        for item_id, score in top:
            assert score == pytest.approx(exact[q][ids.index(item_id)], abs=1e-4)
    assert hits / (10 * len(got)) >= 0.95


@pytest.mark.parametrize("search", ["exact in memory", "hnsw index"])
def test_similar_items_ranks_by_cosine_excludes_the_item_and_gives_unknown_ids_an_empty_list(
        loaded_catalogue: tuple[dict[str, str], list[str], np.ndarray], search: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env, ids, vectors = loaded_catalogue
    if search == "hnsw index":
        monkeypatch.setattr(exact_search, "EXACT_SEARCH_MAX_ITEMS", 0)
    conn = vectordb.connect_from_env(env, ef_search=400)
    assert (vectordb.item_catalogue(conn) is None) == (search == "hnsw index"), "the search the test names"
    asked = ["S00007", "no-such-item", "S01234", "S00007"]

    got = vectordb.similar_items(conn, asked, 5)

    assert got[1] == []
    assert got[0] == got[3]
    for position in (0, 2):
        source = ids.index(asked[position])
        exact = exact_scores(vectors[[source]], vectors, "cosine")[0]
        exact[source] = -np.inf
        expected = [ids[j] for j in np.argsort(-exact)[:5]]
        assert asked[position] not in [i for i, _ in got[position]]
        assert [i for i, _ in got[position]] == expected
        for item_id, score in got[position]:
            assert score == pytest.approx(exact[ids.index(item_id)], abs=1e-4)


def test_bad_query_arguments_are_refused_before_reaching_the_database(
        loaded_catalogue: tuple[dict[str, str], list[str], np.ndarray]) -> None:
    env, _, _ = loaded_catalogue
    conn = vectordb.connect_from_env(env)
    with pytest.raises(QueryInputError, match=r"shape \(n, 32\)"):
        vectordb.items_for_users(conn, np.zeros((2, 31)), 5)
    with pytest.raises(QueryInputError, match="NaN"):
        vectordb.items_for_users(conn, np.full((1, DIM), np.nan), 5)
    with pytest.raises(QueryInputError, match="k must be an integer from 1 to 1000"):
        vectordb.similar_items(conn, ["S00001"], 0)
    assert vectordb.items_for_users(conn, np.zeros((0, DIM)), 5) == []


def test_both_batch_queries_use_the_hnsw_indexes_at_a_realistic_catalogue_size(
        database: dict[str, str], tmp_path: Path) -> None:
    n = 8_000
    (tmp_path / "items.csv").write_bytes(embeddings_csv(item_ids(n), random_vectors(n, 21)))
    (tmp_path / "users.csv").write_bytes(embeddings_csv([1], random_vectors(1, 1)))
    conn = vectordb.connect_from_env(database)
    vectordb.load_embeddings(conn, [vectordb.file_source("item_emb", str(tmp_path / "items.csv")),
                                    vectordb.file_source("user_emb", str(tmp_path / "users.csv"))])
    with conn.cursor() as cur:
        cur.execute("ANALYZE item_emb")
        cur.execute("EXPLAIN " + vectordb.ITEMS_FOR_USERS_SQL,
                    {"embeddings": [vectordb.vector_literal(v) for v in random_vectors(3, 2)], "k": 10})
        users_plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("EXPLAIN " + vectordb.SIMILAR_ITEMS_SQL, {"item_ids": ["S00001", "S00002"], "k": 10})
        items_plan = "\n".join(row[0] for row in cur.fetchall())
    assert "Index Scan using item_emb_embedding_ip_idx" in users_plan, users_plan
    assert "Index Scan using item_emb_embedding_cos_idx" in items_plan, items_plan


def test_a_small_catalogue_is_searched_exactly_in_memory_and_reread_after_every_load(
        database: dict[str, str], tmp_path: Path) -> None:
    users = random_vectors(6, 41)

    def load(vectors: np.ndarray) -> None:
        (tmp_path / "items.csv").write_bytes(embeddings_csv(item_ids(len(vectors)), vectors))
        (tmp_path / "users.csv").write_bytes(embeddings_csv([1], users[:1]))
        with vectordb.connect_from_env(database) as loading:
            # force: the second catalogue is smaller on purpose (the guard would refuse the 1,000 dropped ids).
            vectordb.load_embeddings(loading, [vectordb.file_source("item_emb", str(tmp_path / "items.csv")),
                                               vectordb.file_source("user_emb", str(tmp_path / "users.csv"))],
                                     force=True)

    def expected(vectors: np.ndarray) -> list[list[str]]:
        scores = users.astype(np.float64) @ vectors.T.astype(np.float64)
        return [[item_ids(len(vectors))[j] for j in np.argsort(-row, kind="stable")[:10]] for row in scores]

    first, second = random_vectors(4_000, 42), random_vectors(3_000, 43)
    serving = vectordb.connect_from_env(database)
    load(first)
    assert [[i for i, _ in top] for top in vectordb.items_for_users(serving, users, 10)] == expected(first)
    assert vectordb.item_catalogue(serving) is vectordb.item_catalogue(serving), "read once, then reused"

    load(second)  # the same connection sees the new load at its next call
    got = vectordb.items_for_users(serving, users, 10)
    assert [[i for i, _ in top] for top in got] == expected(second)
    assert got[0][0][1] == pytest.approx(float(users[0] @ second[int(got[0][0][0][1:])]), abs=1e-4)


def test_exact_top_k_orders_by_score_then_row_and_copes_with_k_beyond_the_catalogue() -> None:
    matrix = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    rows, scores = vectordb.exact_top_k(np.array([[1.0, 0.0]]), matrix, 3)
    assert rows.tolist() == [[0, 2, 3]] and scores.tolist() == [[1.0, 1.0, 0.5]]
    rows, _ = vectordb.exact_top_k(np.array([[0.0, 1.0]]), matrix, 10)
    assert rows.tolist() == [[1, 3, 0, 2]]


# ---- ef_search calibration ----------------------------------------------------------------------------------------
def current_ef_search(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute("SHOW hnsw.ef_search")
        return int(cur.fetchone()[0])


def test_the_loader_records_for_each_index_the_smallest_ef_search_that_reaches_the_target_recall(
        database: dict[str, str], tmp_path: Path) -> None:
    n = 3_000
    items, users = random_vectors(n, 31), random_vectors(200, 32)
    (tmp_path / "items.csv").write_bytes(embeddings_csv(item_ids(n), items))
    (tmp_path / "users.csv").write_bytes(embeddings_csv(list(range(200)), users))
    conn = vectordb.connect_from_env(database)

    loads = vectordb.load_embeddings(conn, [vectordb.file_source("item_emb", str(tmp_path / "items.csv")),
                                            vectordb.file_source("user_emb", str(tmp_path / "users.csv"))])

    with conn.cursor() as cur:
        cur.execute("SELECT table_name, hnsw_search FROM embedding_sources ORDER BY 1")
        recorded = dict(cur.fetchall())
    assert set(recorded["item_emb"]) == {"inner_product", "cosine"} and set(recorded["user_emb"]) == {"cosine"}
    assert recorded["item_emb"] == next(load.hnsw_search for load in loads if load.table == "item_emb")
    for entry in (*recorded["item_emb"].values(), recorded["user_emb"]["cosine"]):
        assert entry["reached_target"] and entry["recall"] >= entry["target_recall"] == 0.95
        assert entry["ef_search"] in calibration.EF_SEARCH_LADDER
        # The smallest rung that reached the target: every rung tried before it fell short.
        assert entry["tried"][-1] == [entry["ef_search"], entry["recall"]]
        assert all(recall < 0.95 for _, recall in entry["tried"][:-1])
    # Independent check of the recorded recall: exact numpy search against the live index at the chosen value.
    cosine = recorded["item_emb"]["cosine"]
    probe = vectordb.connect_from_env(database, ef_search=cosine["ef_search"])
    asked = item_ids(n)[:300:3]
    got = vectordb.similar_items(probe, asked, 10)
    exact = exact_scores(items[:300:3], items, "cosine")
    exact[np.arange(len(asked)), np.arange(0, 300, 3)] = -np.inf
    hits = sum(len({i for i, _ in top} & {item_ids(n)[j] for j in np.argsort(-row)[:10]})
               for top, row in zip(got, exact, strict=True))
    assert hits / (10 * len(asked)) >= 0.9


def test_the_queries_search_with_the_calibrated_ef_search_unless_the_connection_pins_one(
        loaded_catalogue: tuple[dict[str, str], list[str], np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    env, ids, _vectors = loaded_catalogue
    monkeypatch.setattr(exact_search, "EXACT_SEARCH_MAX_ITEMS", 0)  # users -> items through the index, as for 1M items
    admin = vectordb.connect_from_env(env)
    with admin.cursor() as cur:
        cur.execute("UPDATE embedding_sources SET hnsw_search = %s WHERE table_name = 'item_emb'",
                    (json.dumps({"inner_product": {"ef_search": 37}, "cosine": {"ef_search": 23}}),))
    serving = vectordb.connect_from_env(env)

    vectordb.items_for_users(serving, random_vectors(2, 5), 5)
    assert current_ef_search(serving) == 37
    vectordb.similar_items(serving, ids[:2], 5)
    assert current_ef_search(serving) == 23
    # Never fewer candidates than the query must return: k + 1 for similar items (the item itself is filtered out).
    assert len(vectordb.similar_items(serving, ids[:1], 40)[0]) == 40
    assert current_ef_search(serving) == 41

    pinned = vectordb.connect_from_env(env, ef_search=333)
    vectordb.similar_items(pinned, ids[:2], 5)
    assert current_ef_search(pinned) == 333

    with admin.cursor() as cur:
        cur.execute("UPDATE embedding_sources SET hnsw_search = NULL")
    vectordb.items_for_users(serving, random_vectors(1, 6), 5)
    assert current_ef_search(serving) == vectordb.DEFAULT_EF_SEARCH


# ---- connection settings ------------------------------------------------------------------------------------------
def test_the_password_comes_from_the_secret_when_no_plaintext_variable_is_set(
        database: dict[str, str], moto_service: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ENDPOINT_URL": moto_service.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"vector-db-{uuid.uuid4().hex[:8]}",
        SecretString=json.dumps({"engine": "postgres", "username": "postgres",
                                 "password": database["VECTOR_DB_PASSWORD"]}),
    )
    env = {k: v for k, v in database.items() if k != "VECTOR_DB_PASSWORD"} | {"VECTOR_DB_SECRET_ARN": secret["ARN"]}

    with vectordb.connect_from_env(env) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        assert cur.fetchone()[0] == database["VECTOR_DB_NAME"]
    assert "password" not in repr(vectordb.settings_from_env(database)).replace("password='***'", "").replace(
        "password=", "")


def test_incomplete_environment_names_the_missing_variables() -> None:
    with pytest.raises(vectordb.VectorDbConfigError, match="set VECTOR_DB_HOST, VECTOR_DB_SECRET_ARN"):
        vectordb.settings_from_env({"VECTOR_DB_USER": "postgres"})
    with pytest.raises(vectordb.VectorDbConfigError, match="VECTOR_DB_PORT must be a port number"):
        vectordb.settings_from_env({"VECTOR_DB_HOST": "h", "VECTOR_DB_USER": "u", "VECTOR_DB_PASSWORD": "p",
                                    "VECTOR_DB_PORT": "54x"})


@pytest.mark.parametrize(("event", "message"), [
    ({"bukket": "x"}, "unknown event field(s) bukket"),
    ({"item_key": ""}, "item_key must be a non-empty string"),
    ({"force": "yes"}, "force must be true or false"),
    ([], "event must be a JSON object"),
])
def test_a_bad_loader_event_is_refused_with_what_is_allowed(event: Any, message: str) -> None:
    with pytest.raises(loader.LoaderEventError) as failure:
        loader.request_from_event(event, {"ARTIFACTS_BUCKET": "b"})
    assert message in str(failure.value)


def test_without_a_bucket_the_loader_says_where_to_set_one() -> None:
    with pytest.raises(loader.LoaderEventError, match="set ARTIFACTS_BUCKET"):
        loader.request_from_event({}, {})
    assert loader.request_from_event({}, {"ARTIFACTS_BUCKET": "b", "EMBEDDINGS_PREFIX": "v3"}).item_key == \
        "v3/item_embeddings.csv"


# ---- sql/embeddings.sql (the lab's way) ---------------------------------------------------------------------------
SQL_FILE = Path(__file__).resolve().parents[2] / "sql" / "embeddings.sql"
# Stands in for the aws_s3 extension (an RDS-only extension): reads "objects" from a table instead of S3. Everything
# else the script does runs for real.
AWS_S3_STAND_IN = """
CREATE SCHEMA aws_s3;
CREATE TABLE aws_s3.stand_in_objects (bucket text, key text, body text, PRIMARY KEY (bucket, key));
CREATE FUNCTION aws_s3.table_import_from_s3(table_name text, column_list text, options text, bucket text,
                                            file_path text, region text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_body text;
    v_line text;
    v_match text[];
BEGIN
    SELECT o.body INTO v_body FROM aws_s3.stand_in_objects AS o WHERE o.bucket = $4 AND o.key = $5;
    IF v_body IS NULL THEN
        RAISE EXCEPTION 'HTTP 404. Requested file does not exist: s3://%/%', $4, $5;
    END IF;
    FOR v_line IN SELECT l FROM unnest(string_to_array(v_body, E'\\n')) WITH ORDINALITY AS t(l, i)
                  WHERE i > 1 AND l <> '' ORDER BY i LOOP
        v_match := regexp_match(v_line, '^([^,]*),"?([^"]*)"?$');
        EXECUTE format('INSERT INTO %I (id, embedding) VALUES (%L, %L)', $1, v_match[1], v_match[2]);
    END LOOP;
    RETURN 'imported';
END $$;
"""


def run_sql_file(env: dict[str, str], *variables: str) -> Any:
    import os
    import subprocess

    from harness.emulator.services import postgres_bin_dir

    argv = [str(postgres_bin_dir() / "psql"), "-X", "-q", "-h", env["VECTOR_DB_HOST"], "-p", env["VECTOR_DB_PORT"],
            "-U", env["VECTOR_DB_USER"], "-d", env["VECTOR_DB_NAME"]]
    for variable in variables:
        argv += ["-v", variable]
    return subprocess.run([*argv, "-f", str(SQL_FILE)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PGPASSWORD": env["VECTOR_DB_PASSWORD"]})


def stand_in_objects(env: dict[str, str], objects: dict[str, bytes]) -> None:
    conn = vectordb.connect_from_env(env)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regnamespace('aws_s3') IS NULL")
        if cur.fetchone()[0]:
            cur.execute(AWS_S3_STAND_IN)
        for key, body in objects.items():
            cur.execute("INSERT INTO aws_s3.stand_in_objects VALUES ('lab-bucket', %s, %s) ON CONFLICT (bucket, key) "
                        "DO UPDATE SET body = EXCLUDED.body", (key, body.decode()))
    conn.close()


def test_the_sql_script_stops_with_a_clear_message_when_the_bucket_variable_is_missing(
        database: dict[str, str]) -> None:
    result = run_sql_file(database)
    assert result.returncode != 0
    assert "psql variable bucket is not set" in result.stderr
    assert 'Run: psql ... -v bucket=<artifacts bucket>' in result.stderr
    assert table_oid(database, "item_emb") is None


def test_the_sql_script_loads_and_swaps_in_both_tables_with_hnsw_indexes(database: dict[str, str]) -> None:
    items, users = random_vectors(40, 1), random_vectors(12, 2)
    stand_in_objects(database, {"embeddings/item_embeddings.csv": embeddings_csv(item_ids(40), items),
                                "embeddings/user_embeddings.csv": embeddings_csv(list(range(12)), users)})

    result = run_sql_file(database, "bucket=lab-bucket", "region=us-east-1")

    assert result.returncode == 0, result.stderr
    loaded = table_rows(database, "item_emb")
    np.testing.assert_array_equal(np.vstack([loaded[i] for i in item_ids(40)]), items)
    assert len(table_rows(database, "user_emb")) == 12
    with vectordb.connect_from_env(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename IN ('item_emb', 'user_emb') ORDER BY 1")
        assert [r[0] for r in cur.fetchall()] == ["item_emb_embedding_cos_idx", "item_emb_embedding_ip_idx",
                                                   "item_emb_pkey", "user_emb_embedding_cos_idx", "user_emb_pkey"]
    assert vectordb.similar_items(vectordb.connect_from_env(database), ["S00003"], 3)[0]
    # The script measures no recall: its tables are served at the default ef_search until the loader calibrates them.
    with vectordb.connect_from_env(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM embedding_sources WHERE hnsw_search IS NOT NULL")
        assert cur.fetchone()[0] == 0


def test_the_sql_script_rolls_back_everything_on_a_bad_file(database: dict[str, str]) -> None:
    items = random_vectors(20, 1)
    good = {"embeddings/item_embeddings.csv": embeddings_csv(item_ids(20), items),
            "embeddings/user_embeddings.csv": embeddings_csv(list(range(5)), random_vectors(5, 2))}
    stand_in_objects(database, good)
    assert run_sql_file(database, "bucket=lab-bucket").returncode == 0
    stand_in_objects(database, {"embeddings/item_embeddings.csv": embeddings_csv(item_ids(21), random_vectors(21, 3)),
                                "embeddings/user_embeddings.csv": b'id,embedding\n1,"[1,2,3]"\n'})

    result = run_sql_file(database, "bucket=lab-bucket")

    assert result.returncode != 0 and "expected 32 dimensions, not 3" in result.stderr
    loaded = table_rows(database, "item_emb")
    assert len(loaded) == 20
    np.testing.assert_array_equal(np.vstack([loaded[i] for i in item_ids(20)]), items)


# ---- the benchmark ------------------------------------------------------------------------------------------------
def test_the_quick_benchmark_reports_every_measure_as_json() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "bench.benchmarks.vectors", "--quick"], capture_output=True,
                            text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])

    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    (size,) = report["results"]
    assert size["items"] == 5000 and size["dim"] == 32
    assert size["copy"]["rows_per_s"] > 0 and size["insert"]["rows_per_s"] > 0 and size["csv_parse"]["rows_per_s"] > 0
    assert size["hnsw_build"]["m"] == 16
    # The served ef_search is the calibrated one, and it is measured; the quick run measures nothing else.
    calibration = size["calibration"]
    (queries,) = size["queries"]
    assert queries["ef_search"] == size["serving_ef_search"] == calibration["ef_search"]
    assert report["uncalibrated_ef_search"] == vectordb.DEFAULT_EF_SEARCH
    assert queries["p50_ms"] <= queries["p99_ms"]
    # Recall is not a timing: at the calibrated ef_search, other queries than the calibration's reach the target too
    # (within the sampling error of 100 queries).
    assert calibration["recall"] >= calibration["target_recall"] == 0.95
    assert queries["recall_at_10"] >= 0.93
    assert queries["server"]["buffers_p50"] > 0 and queries["server"]["execution_p50_ms"] > 0
    assert report["server"]["pgvector"].startswith("0.8")


# ---- the CSV reader and the COPY encoder (no database) ----------------------------------------------------------
def _copy_tuples(data: bytes) -> list[bytes]:
    """Split binary COPY tuple data into one bytes object per row."""
    import struct

    rows, offset = [], 0
    while offset < len(data):
        start = offset
        (fields,) = struct.unpack_from(">h", data, offset)
        offset += 2
        for _ in range(fields):
            (length,) = struct.unpack_from(">i", data, offset)
            offset += 4 + length
        rows.append(data[start:offset])
    return rows


def test_the_copy_encoder_writes_exactly_the_rows_pgvector_python_writes() -> None:
    import struct

    from pgvector import Vector

    vectors = random_vectors(4, 5)
    for id_type, ids in (("varchar", ["S10_1678", "é-unicode", "x", "S12_1099"]), ("int", [1, -7, 2**31 - 1, 0])):
        encoded = vectordb.encode_copy_rows(vectordb.Chunk(list(ids), vectors), id_type)  # type: ignore[arg-type]
        expected = []
        for item_id, row in zip(ids, vectors, strict=True):
            id_bytes = str(item_id).encode() if id_type == "varchar" else struct.pack(">i", item_id)
            vector_bytes = Vector(row).to_binary()
            expected.append(struct.pack(">hi", 2, len(id_bytes)) + id_bytes + struct.pack(">i", len(vector_bytes))
                            + vector_bytes)
        # Rows are grouped by id length (COPY ignores order); each must be byte-identical to pgvector-python's.
        assert sorted(_copy_tuples(encoded)) == sorted(expected), id_type


def test_the_reader_accepts_crlf_a_byte_order_mark_quoted_ids_and_trailing_blank_lines() -> None:
    row = "[" + ",".join(["1.5"] * DIM) + "]"
    text = f'\ufeffid,embedding\r\n"S18_3232","{row}"\r\nS24_1444,{row}\r\n\r\n'.encode()
    (chunk,) = vectordb.parse_embeddings(text.splitlines(keepends=True), id_type="varchar", source="f.csv")
    assert chunk.ids == ["S18_3232", "S24_1444"]
    assert chunk.vectors.shape == (2, DIM) and float(chunk.vectors[1, 31]) == 1.5


def test_the_reader_names_the_row_across_chunk_boundaries() -> None:
    good = '"[' + ",".join(["0.25"] * DIM) + ']"'
    lines = ["id,embedding"] + [f"I{i},{good}" for i in range(1, 8)] + ["I8," + good.replace("0.25", "inf", 1)]
    with pytest.raises(EmbeddingsFileError, match=r"f.csv, row 8 \(line 9\): embedding contains NaN or infinity"):
        list(vectordb.parse_embeddings(lines, id_type="varchar", source="f.csv", chunk_rows=3))


def test_row_numbers_count_blank_lines_so_the_line_number_points_at_the_bad_line() -> None:
    good = '"[' + ",".join(["0.25"] * DIM) + ']"'
    short = '"[' + ",".join(["0.25"] * (DIM - 1)) + ']"'
    lines = ["id,embedding", f"A,{good}", "", f"B,{short}"]
    with pytest.raises(EmbeddingsFileError, match=r"row 3 \(line 4\): embedding has 31 numbers"):
        list(vectordb.parse_embeddings(lines, id_type="varchar", source="f.csv"))


@pytest.mark.parametrize("bad_id", ["--5", "\u00b2", "1.5", "4294967296", ""])
def test_user_ids_must_be_plain_int4_numbers(bad_id: str) -> None:
    row = '"[' + ",".join(["0.5"] * DIM) + ']"'
    with pytest.raises(EmbeddingsFileError, match=r"row 2 \(line 3\): id .* is not an integer user id"):
        list(vectordb.parse_embeddings(["id,embedding", f"7,{row}", f"{bad_id},{row}"], id_type="int", source="u"))


# Property checks of the reader: whatever the file holds, the outcome is either rows that round-trip exactly or an
# EmbeddingsFileError (never another exception, which would reach the user as a stack trace).
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Printable, no separators: what a product code can be (letters, digits, punctuation, symbols).
_ID_ALPHABET = st.characters(categories=("L", "N", "P", "S"), exclude_characters=',"', max_codepoint=0x2FF)
_FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(_ID_ALPHABET, min_size=1, max_size=12),
                       st.lists(_FLOAT32, min_size=DIM, max_size=DIM), min_size=1, max_size=30),
       st.integers(min_value=1, max_value=7))
def test_well_formed_files_round_trip_exactly_in_any_chunking(rows: dict[str, list[float]], chunk_rows: int) -> None:
    lines = ["id,embedding"] + [f'{i},"[{",".join(repr(v) for v in vec)}]"' for i, vec in rows.items()]
    chunks = list(vectordb.parse_embeddings(lines, id_type="varchar", source="f", chunk_rows=chunk_rows))
    assert [i for c in chunks for i in c.ids] == list(rows)
    np.testing.assert_array_equal(np.vstack([c.vectors for c in chunks]), np.array(list(rows.values()), np.float32))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",)), max_size=80), max_size=6),
       st.sampled_from(["varchar", "int"]))
def test_arbitrary_lines_give_rows_or_an_embeddings_file_error_never_a_crash(lines: list[str], id_type: str) -> None:
    try:
        list(vectordb.parse_embeddings(["id,embedding", *lines], id_type=id_type, source="f"))  # type: ignore[arg-type]
    except EmbeddingsFileError:
        pass


def test_a_reader_holding_a_transaction_open_makes_the_swap_give_up_cleanly(database: dict[str, str],
                                                                            tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_bytes(embeddings_csv([1], random_vectors(1, 1)))
    old_items = random_vectors(20, 1)
    (tmp_path / "items.csv").write_bytes(embeddings_csv(item_ids(20), old_items))

    def sources() -> list[vectordb.EmbeddingSource]:
        return [vectordb.file_source("item_emb", str(tmp_path / "items.csv")),
                vectordb.file_source("user_emb", str(tmp_path / "users.csv"))]

    conn = vectordb.connect_from_env(database)
    vectordb.load_embeddings(conn, sources())
    blocker = vectordb.connect_from_env(database)
    blocker.autocommit = False
    blocker.cursor().execute("SELECT count(*) FROM item_emb")  # ...and never commits
    (tmp_path / "items.csv").write_bytes(embeddings_csv(item_ids(21), random_vectors(21, 2)))

    try:
        with pytest.raises(vectordb.SwapLockTimeout, match="idle in transaction"):
            vectordb.load_embeddings(conn, sources(), lock_timeout_ms=50, lock_attempts=2)
    finally:
        blocker.rollback()
        blocker.close()

    loaded = table_rows(database, "item_emb")
    np.testing.assert_array_equal(np.vstack([loaded[i] for i in item_ids(20)]), old_items)
    assert vectordb.load_embeddings(conn, sources())[0].status == "loaded"  # and once it is gone, the load goes through
