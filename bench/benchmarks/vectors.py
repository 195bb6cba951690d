"""Benchmark of the vector database: load rate, HNSW build, query latency and recall on the local PostgreSQL + pgvector.

    python -m bench.benchmarks.vectors [--quick] [--sizes 100000,1000000] [--ef-search 40,100,200] [--m 16]
                                       [--ef-construction 64] [--repeats 3]

For each catalogue size N (random 32-d float32 vectors, seed fixed):
- `copy`: binary COPY (the loader's encoder) of N vectors into a table without indexes, rows/s, median of repeats;
- `insert`: the baseline, multi-row INSERT (psycopg2 execute_values, 1,000 rows per statement) of a sample;
- `csv_parse`: the loader's CSV validation + binary encoding alone (no database), rows/s;
- `hnsw_build`: primary key and the cosine HNSW index (`m`, `ef_construction`) built after the load, seconds;
- `calibration`: what the loader does after its build (`recsys.vectordb.calibrate_index`): the smallest
  `hnsw.ef_search` on the ladder whose recall@10 over 500 sampled queries reaches 0.95. That value is the serving one
  (`serving_ef_search` per size) and is always among the measured values;
- `queries`: per `hnsw.ef_search`, k=10 similar-item queries (the `similar_items` statement, one id per statement, as
  the inference Lambda sends them) from a client over TCP: p50/p99 latency in ms (median over repeats) and recall@10
  against exact cosine search in numpy; plus a server-side profile of the same statement (`EXPLAIN (ANALYZE,
  BUFFERS)` on a sample): execution time and shared buffers touched per query, which is where HNSW spends its time;
- `exact_in_memory`: the other way the Lambdas answer (for catalogues up to `EXACT_SEARCH_MAX_ITEMS`): the table read
  into memory once (binary COPY out, seconds) and each query answered exactly by `recsys.vectordb.exact_similar`
  (a matrix product), p50/p99 per single query as the inference Function URL asks it, recall@10 against numpy.

Results go to stdout as one JSON document (issue 7's benchmark aggregates it); progress goes to stderr. Random normal
vectors have no cluster structure, which makes them harder for HNSW than real embeddings: recall here is a floor.
The server is a scratch PostgreSQL (`harness.emulator.services.start_postgres` in a temp dir) with default durability
(fsync on) and shared_buffers sized to hold the 1M-row table and index, as a db.r-class RDS instance would.
"""

from __future__ import annotations

from bench.machine import one_core_for_numpy

if __name__ == "__main__":
    # The benchmark's own process: numpy on one core, as bench.benchmarks.streaming (set before numpy loads): the
    # exact in-memory search is measured as one Lambda runs it.
    one_core_for_numpy()

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from recsys import calibration, vectordb  # noqa: E402

from bench.benchmarks.vectors_report import headline, render, summarize  # noqa: E402
from bench.machine import machine_description  # noqa: E402
from bench.registry import RUNS, Benchmark, Goal, register  # noqa: E402

DIM = 32
K = 10
# Server settings sized for the 1M-row table and its index (as a db.r-class RDS instance would have).
SERVER_SETTINGS = {"shared_buffers": "3GB", "max_parallel_maintenance_workers": "2", "max_wal_size": "4GB",
                   "checkpoint_timeout": "30min"}


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _ids(n: int) -> list[str]:
    return [f"P{i:07d}" for i in range(n)]


def _copy(conn: Any, table: str, ids: list[str], vectors: np.ndarray, chunk_rows: int = 50_000) -> float:
    def blocks() -> Any:
        yield vectordb.COPY_SIGNATURE
        for start in range(0, len(ids), chunk_rows):
            chunk = vectordb.Chunk(ids[start:start + chunk_rows], vectors[start:start + chunk_rows])
            yield vectordb.encode_copy_rows(chunk, "varchar")
        yield vectordb.COPY_TRAILER

    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id varchar NOT NULL, embedding vector({DIM}) NOT NULL)")
        conn.commit()
        started = time.perf_counter()
        cur.copy_expert(f"COPY {table} (id, embedding) FROM STDIN WITH (FORMAT binary)",
                        vectordb.CopyStream(blocks()), size=1 << 20)
        conn.commit()
        return time.perf_counter() - started


def _insert(conn: Any, ids: list[str], vectors: np.ndarray) -> float:
    from psycopg2.extras import execute_values

    rows = [(i, vectordb.vector_literal(v)) for i, v in zip(ids, vectors, strict=True)]
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_insert")
        cur.execute(f"CREATE TABLE bench_insert (id varchar NOT NULL, embedding vector({DIM}) NOT NULL)")
        conn.commit()
        started = time.perf_counter()
        execute_values(cur, "INSERT INTO bench_insert (id, embedding) VALUES %s", rows, page_size=1000)
        conn.commit()
        elapsed = time.perf_counter() - started
        cur.execute("DROP TABLE bench_insert")
        conn.commit()
    return elapsed


def _csv_parse_rate(ids: list[str], vectors: np.ndarray) -> float:
    lines = ["id,embedding\n"] + [f'{i},"[{",".join(np.format_float_positional(x, unique=True) for x in row)}]"\n'
                                  for i, row in zip(ids, vectors, strict=True)]
    payload = "".join(lines).encode()
    started = time.perf_counter()
    rows = 0
    for chunk in vectordb.parse_embeddings(io.BytesIO(payload), id_type="varchar", source="bench"):
        vectordb.encode_copy_rows(chunk, "varchar")
        rows += len(chunk.ids)
    return rows / (time.perf_counter() - started)


def _query_runs(conn: Any, ids: list[str], vectors: np.ndarray, query_rows: np.ndarray, ef_search: int,
                repeats: int) -> dict[str, Any]:
    sql = vectordb.SIMILAR_ITEMS_SQL.replace("item_emb", "bench_items")
    normalised = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact_top: list[set[str]] = []
    for row in query_rows:
        scores = normalised @ normalised[row]
        scores[row] = -np.inf
        exact_top.append({ids[j] for j in np.argpartition(-scores, K)[:K]})
    p50s, p99s, recalls = [], [], []
    with conn.cursor() as cur:
        cur.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        conn.commit()
        cur.execute(sql, {"item_ids": [ids[query_rows[0]]], "k": K})  # warm the connection and the plan
        cur.fetchall()
        for _ in range(repeats):
            latencies, hits = [], 0
            for row, expected in zip(query_rows, exact_top, strict=True):
                started = time.perf_counter()
                cur.execute(sql, {"item_ids": [ids[row]], "k": K})
                found = cur.fetchall()
                latencies.append((time.perf_counter() - started) * 1000)
                hits += len({item_id for _, item_id, _ in found} & expected)
            conn.commit()
            p50s.append(_percentile(latencies, 50))
            p99s.append(_percentile(latencies, 99))
            recalls.append(hits / (K * len(query_rows)))
    return {"ef_search": ef_search, "queries": len(query_rows), "repeats": repeats,
            "p50_ms": round(statistics.median(p50s), 3), "p99_ms": round(statistics.median(p99s), 3),
            "recall_at_10": round(statistics.median(recalls), 4),
            "server": _server_profile(conn, sql, [ids[row] for row in query_rows[:PROFILE_QUERIES]], ef_search)}


PROFILE_QUERIES = 100


def _server_profile(conn: Any, sql: str, item_ids: list[str], ef_search: int) -> dict[str, Any]:
    """Where a query's time goes inside PostgreSQL: median execution time and shared buffers (8 kB pages) touched, and
    the time per buffer. HNSW reads one buffer per graph element it visits, so buffers track the work ef_search asks."""
    execution_ms, buffers = [], []
    with conn.cursor() as cur:
        cur.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        for item_id in item_ids:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, {"item_ids": [item_id], "k": K})
            plan = cur.fetchone()[0][0]
            execution_ms.append(float(plan["Execution Time"]))
            top = plan["Plan"]
            buffers.append(int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0)))
        conn.commit()
    ms, blocks = statistics.median(execution_ms), statistics.median(buffers)
    return {"queries": len(item_ids), "execution_p50_ms": round(ms, 3), "buffers_p50": int(blocks),
            "us_per_buffer": round(1000 * ms / blocks, 3) if blocks else None}


def bench_size(conn: Any, n: int, *, m: int, ef_construction: int, ef_search: list[int], repeats: int,
               queries: int, insert_sample: int, say: Any) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    ids = _ids(n)
    result: dict[str, Any] = {"items": n, "dim": DIM}

    copy_times = []
    for attempt in range(repeats):
        say(f"[{n:,}] binary COPY {attempt + 1}/{repeats}")
        copy_times.append(_copy(conn, "bench_items", ids, vectors))
    result["copy"] = {"rows_per_s": round(n / statistics.median(copy_times)), "seconds_median": round(
        statistics.median(copy_times), 3), "repeats": repeats}

    sample = min(n, insert_sample)
    say(f"[{n:,}] INSERT baseline ({sample:,} rows)")
    insert_seconds = _insert(conn, ids[:sample], vectors[:sample])
    result["insert"] = {"rows_per_s": round(sample / insert_seconds), "rows": sample,
                        "seconds": round(insert_seconds, 3)}
    result["copy_vs_insert"] = round(result["copy"]["rows_per_s"] / result["insert"]["rows_per_s"], 1)

    say(f"[{n:,}] CSV validation + encoding")
    result["csv_parse"] = {"rows_per_s": round(_csv_parse_rate(ids[:min(n, 100_000)], vectors[:min(n, 100_000)]))}

    say(f"[{n:,}] HNSW build (m={m}, ef_construction={ef_construction})")
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '2GB'")
        started = time.perf_counter()
        cur.execute("ALTER TABLE bench_items ADD PRIMARY KEY (id)")
        conn.commit()
        pk_seconds = time.perf_counter() - started
        started = time.perf_counter()
        cur.execute(f"CREATE INDEX bench_items_cos_idx ON bench_items USING hnsw (embedding vector_cosine_ops) "
                    f"WITH (m = {m}, ef_construction = {ef_construction})")
        conn.commit()
        hnsw_seconds = time.perf_counter() - started
        cur.execute("ANALYZE bench_items")
        cur.execute("SHOW max_parallel_maintenance_workers")
        workers = cur.fetchone()[0]
        conn.commit()
    result["hnsw_build"] = {"seconds": round(hnsw_seconds, 2), "primary_key_seconds": round(pk_seconds, 2), "m": m,
                            "ef_construction": ef_construction, "parallel_workers": int(workers)}

    say(f"[{n:,}] ef_search calibration (what the loader does after its build)")
    started = time.perf_counter()
    with conn.cursor() as cur:
        calibrated = vectordb.calibrate_index(
            cur, "bench_items", "cosine", vectors,
            vectors[calibration.sample_rows(n, calibration.CALIBRATION_QUERIES, seed=1)], rows_of_table=True)
        conn.commit()
    result["calibration"] = {**calibrated.as_json(), "seconds": round(time.perf_counter() - started, 2)}
    result["serving_ef_search"] = calibrated.ef_search

    query_rows = np.random.default_rng(7).choice(n, size=min(queries, n), replace=False)
    result["queries"] = []
    for ef in sorted({*ef_search, calibrated.ef_search}):
        say(f"[{n:,}] k={K} similar-item queries, ef_search={ef}")
        result["queries"].append(_query_runs(conn, ids, vectors, query_rows, ef, repeats))
    say(f"[{n:,}] exact search in memory")
    result["exact_in_memory"] = _exact_in_memory(conn, ids, vectors, query_rows, repeats)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE bench_items")
        conn.commit()
    return result


def _exact_in_memory(conn: Any, ids: list[str], vectors: np.ndarray, query_rows: np.ndarray,
                     repeats: int) -> dict[str, Any]:
    with conn.cursor() as cur:
        started = time.perf_counter()
        catalogue = vectordb.read_catalogue(cur, ("bench", "bench"), table="bench_items")
        read_seconds = time.perf_counter() - started
        conn.commit()
    started = time.perf_counter()
    catalogue.row_of, catalogue.unit  # noqa: B018 - built once per load, as a warm container keeps them
    prepare_seconds = time.perf_counter() - started
    normalised = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    p50s, p99s, recalls = [], [], []
    for _ in range(repeats):
        latencies, hits = [], 0
        for row in query_rows:
            started = time.perf_counter()
            (found,) = vectordb.exact_similar(catalogue, [ids[row]], K)
            latencies.append((time.perf_counter() - started) * 1000)
            scores = normalised @ normalised[row]
            scores[row] = -np.inf
            hits += len({item_id for item_id, _ in found} & {ids[j] for j in np.argpartition(-scores, K)[:K]})
        p50s.append(_percentile(latencies, 50))
        p99s.append(_percentile(latencies, 99))
        recalls.append(hits / (K * len(query_rows)))
    return {"read_seconds": round(read_seconds, 2), "prepare_seconds": round(prepare_seconds, 2),
            "queries": len(query_rows), "repeats": repeats, "p50_ms": round(statistics.median(p50s), 3),
            "p99_ms": round(statistics.median(p99s), 3), "recall_at_10": round(statistics.median(recalls), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small size, few queries (what the test runs)")
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated catalogue sizes")
    parser.add_argument("--ef-search", default="40,100,200",
                        help="comma-separated hnsw.ef_search values (the serving default is recsys.vectordb's)")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args(argv)
    if args.quick:
        sizes, ef_search, repeats, queries, insert_sample = [5_000], [], 2, 100, 2_000
    else:
        try:
            sizes = [int(s) for s in args.sizes.split(",")]
            ef_search = [int(s) for s in args.ef_search.split(",")]
        except ValueError:
            parser.error("--sizes and --ef-search take comma-separated integers, e.g. --sizes 100000,1000000")
        repeats, queries, insert_sample = args.repeats, args.queries, 20_000
    if any(n < 2 * K for n in sizes) or args.repeats < 1:
        parser.error(f"sizes must be at least {2 * K} and --repeats at least 1")

    from rich.console import Console

    from harness.emulator import services

    err = Console(stderr=True)
    report: dict[str, Any] = {
        "benchmark": "vectors", "quick": args.quick, "k": K,
        # Per size, `serving_ef_search` is the calibrated value the Lambdas would use; this is the fallback for a
        # table the loader did not calibrate.
        "uncalibrated_ef_search": vectordb.DEFAULT_EF_SEARCH,
        "machine": machine_description(),
        "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
        pg = services.start_postgres(Path(tmp), settings=SERVER_SETTINGS)
        try:
            conn = pg.connect()
            with conn.cursor() as cur:
                cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
                cur.execute("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')")
                found = cur.fetchone()
                assert found is not None  # a SELECT without FROM returns one row
                version, pgvector = found
            conn.commit()
            report["server"] = {"postgres": version.split(",")[0], "pgvector": pgvector, "settings": SERVER_SETTINGS}
            with err.status("benchmarking") as status:
                for n in sizes:
                    report["results"].append(bench_size(
                        conn, n, m=args.m, ef_construction=args.ef_construction, ef_search=ef_search,
                        repeats=repeats, queries=queries, insert_sample=insert_sample,
                        say=lambda text: status.update(text)))
                    err.log(f"{n:,} items done: {json.dumps(report['results'][-1])}")
            conn.close()
        finally:
            services.stop_postgres(pg)
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


BENCHMARK = register(Benchmark(
    name="vectors",
    measures="the loader's binary COPY against multi-row INSERT, the HNSW build, and k=10 similar-item queries at "
             "the calibrated ef_search (p50/p99) with recall@10 against exact search in numpy",
    main=main, full_args=("--repeats", str(RUNS)), quick_args=("--quick",), timeout_s=7200,
    summarize=summarize, render=render, headline=headline, profile_focus=bench_size,
    goals=(
        Goal("vectors.load.copy_vectors_per_s", ">=", 200_000, "vectors: binary COPY load rate (vectors/s)"),
        Goal("vectors.items_1m.p99_ms", "<=", 5, "vectors: k=10 query p99 at 1M items (ms)"),
        Goal("vectors.items_1m.recall_at_10", ">=", 0.95, "vectors: recall@10 at 1M items"),
    ),
))


if __name__ == "__main__":
    sys.exit(main())
