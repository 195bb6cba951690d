"""The vectors benchmark's section of results.json and RESULTS.md (`bench.benchmarks.vectors` measures): per
catalogue size the figures at the serving ef_search, the load rate at the largest size, where a query's time goes, and
why a missed p99 goal is missed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.registry import HeadlineRow
from bench.render import command_line, fmt, fmt_ratio, table
from bench.stats import ratio

# The headline query figures are the ones users get: at the serving hnsw.ef_search, which the benchmark reports per
# size as `serving_ef_search` (its calibration's choice); this is only the fallback for documents without it.
FALLBACK_SERVING_EF_SEARCH = 200


def size_key(items: int) -> str:
    """100000 -> items_100k, 1000000 -> items_1m (the issue's names), anything else likewise."""
    if items >= 1_000_000 and items % 1_000_000 == 0:
        return f"items_{items // 1_000_000}m"
    if items >= 1_000 and items % 1_000 == 0:
        return f"items_{items // 1_000}k"
    return f"items_{items}"


def serving_query(queries: Sequence[Mapping[str, Any]], serving_ef_search: int) -> Mapping[str, Any] | None:
    for row in queries:
        if row.get("ef_search") == serving_ef_search:
            return row
    return queries[0] if queries else None


def summarize(raw: Mapping[str, Any]) -> dict[str, Any]:
    fallback_ef_search = int(raw.get("uncalibrated_ef_search") or raw.get("serving_ef_search")
                             or FALLBACK_SERVING_EF_SEARCH)
    out: dict[str, Any] = {"quick": bool(raw.get("quick")), "date": raw.get("date"), "server": raw.get("server"),
                           "uncalibrated_ef_search": fallback_ef_search}
    sizes = sorted(raw.get("results") or [], key=lambda r: int(r["items"]))
    for size in sizes:
        # Each size is served at the ef_search its calibration chose (older documents: one value for all sizes).
        serving_ef_search = int(size.get("serving_ef_search") or fallback_ef_search)
        query = serving_query(size.get("queries") or [], serving_ef_search) or {}
        out[size_key(int(size["items"]))] = {
            "items": int(size["items"]),
            "ef_search": query.get("ef_search"),
            "calibration": size.get("calibration"),
            "server": query.get("server"),
            "exact_in_memory": size.get("exact_in_memory"),
            "p50_ms": query.get("p50_ms"), "p99_ms": query.get("p99_ms"), "recall_at_10": query.get("recall_at_10"),
            "build_s": (size.get("hnsw_build") or {}).get("seconds"),
            "hnsw": {k: v for k, v in (size.get("hnsw_build") or {}).items() if k != "seconds"},
            "copy_vectors_per_s": (size.get("copy") or {}).get("rows_per_s"),
            "insert_vectors_per_s": (size.get("insert") or {}).get("rows_per_s"),
            "csv_parse_rows_per_s": (size.get("csv_parse") or {}).get("rows_per_s"),
            "by_ef_search": list(size.get("queries") or []),
        }
    if sizes:
        # The load figure is taken at the largest size: the one a catalogue reload is about.
        largest = sizes[-1]
        copy, insert = (largest.get("copy") or {}), (largest.get("insert") or {})
        out["load"] = {"items": int(largest["items"]), "copy_vectors_per_s": copy.get("rows_per_s"),
                       "copy_repeats": copy.get("repeats"), "insert_vectors_per_s": insert.get("rows_per_s"),
                       "insert_rows": insert.get("rows"),
                       "ratio": ratio(copy.get("rows_per_s"), insert.get("rows_per_s"))}
    return out


def _sizes(section: Mapping[str, Any]) -> list[str]:
    return sorted((k for k in section if k.startswith("items_")), key=lambda k: section[k]["items"])


def render(section: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Vectors: load, HNSW build, k=10 queries", "",
             "Load: the loader's binary COPY against multi-row INSERT (1,000 rows per statement) of a sample, "
             "random 32-d vectors. Queries: the `similar_items` statement, one id per statement over TCP, at "
             "the hnsw.ef_search the loader's calibration chose for that index (the smallest value whose "
             "recall@10 over 500 sampled queries reaches 0.95; what the Lambdas use); the other values are in "
             "the profile below. Baseline for recall: exact cosine search in numpy.", ""]
    lines += command_line(section)
    load = section.get("load") or {}
    rows = [(f"load {fmt(load.get('items'))} vectors", fmt(load.get("copy_vectors_per_s"), " vec/s"),
             fmt(load.get("insert_vectors_per_s"), " vec/s"), fmt_ratio(load.get("ratio")),
             f"COPY median of {load.get('copy_repeats')} loads; INSERT sample {fmt(load.get('insert_rows'))} rows")]
    for key in _sizes(section):
        v = section[key]
        rows.append((f"{fmt(v['items'])} items: query p50 / p99", f"{fmt(v.get('p50_ms'))} / "
                     f"{fmt(v.get('p99_ms'))} ms", "–", "–",
                     f"ef_search {fmt(v.get('ef_search'))}: recall@10 {fmt(v.get('recall_at_10'))} vs exact; "
                     f"HNSW build {fmt(v.get('build_s'))} s (m={v['hnsw'].get('m')}, "
                     f"ef_construction={v['hnsw'].get('ef_construction')})"))
        exact = v.get("exact_in_memory")
        if exact:
            rows.append((f"{fmt(v['items'])} items, exact in memory: query p50 / p99",
                         f"{fmt(exact.get('p50_ms'))} / {fmt(exact.get('p99_ms'))} ms", "–", "–",
                         f"recall@10 {fmt(exact.get('recall_at_10'))}; catalogue read once per load in "
                         f"{fmt(exact.get('read_seconds'))} s (how the Lambdas answer up to "
                         "`EXACT_SEARCH_MAX_ITEMS` items)"))
    lines += table(("workload", "ours", "baseline", "ratio", "notes"), rows)
    return lines + _query_profile(section)


def _query_profile(section: Mapping[str, Any]) -> list[str]:
    """Where a vector query's time goes, per size and ef_search: recall bought against buffers touched."""
    rows = []
    for key in _sizes(section):
        v = section[key]
        for q in v.get("by_ef_search") or []:
            server = q.get("server") or {}
            chosen = " (serving)" if q.get("ef_search") == v.get("ef_search") else ""
            rows.append((fmt(v["items"]), f"{q.get('ef_search')}{chosen}", fmt(q.get("recall_at_10")),
                         f"{fmt(q.get('p50_ms'))} / {fmt(q.get('p99_ms'))}", fmt(server.get("execution_p50_ms")),
                         fmt(server.get("buffers_p50")), fmt(server.get("us_per_buffer"))))
    if not any(row[4] != "–" for row in rows):
        return []
    return ["", "## Where the time goes: vector queries", "",
            "Per size and hnsw.ef_search: recall@10, client latency, and a server-side profile of the same statement "
            "(`EXPLAIN (ANALYZE, BUFFERS)` over 100 of the queries, medians): execution time inside PostgreSQL and "
            "the shared buffers it touched. pgvector's HNSW scan reads one buffer per graph element it visits, so "
            "the time follows the buffers, and the buffers follow ef_search; client minus server time is the round "
            "trip and the protocol.", "",
            *table(("items", "ef_search", "recall@10", "client p50 / p99 ms", "server p50 ms", "buffers p50",
                    "µs per buffer"), rows), *_p99_gap_lines(section)]


def p99_gap(size: Mapping[str, Any], target_ms: float, target_recall: float) -> dict[str, Any] | None:
    """Why a size misses the p99 target, from its own measurements: the ef_search values fast enough and the recall
    they reach, against the value that reaches the recall target and what it costs. None when nothing is missed."""
    measured = [q for q in size.get("by_ef_search") or [] if q.get("p99_ms") is not None]
    if not measured or (size.get("p99_ms") is not None and size["p99_ms"] <= target_ms):
        return None
    fast = [q for q in measured if q["p99_ms"] <= target_ms]
    accurate = [q for q in measured if (q.get("recall_at_10") or 0) >= target_recall]
    best_fast = max(fast, key=lambda q: q.get("recall_at_10") or 0) if fast else None
    cheapest_accurate = min(accurate, key=lambda q: q["p99_ms"]) if accurate else None
    return {"fast": best_fast, "accurate": cheapest_accurate}


def _p99_gap_lines(section: Mapping[str, Any]) -> list[str]:
    size = section.get("items_1m")
    if not size:
        return []
    gap = p99_gap(size, 5.0, 0.95)
    if not gap:
        return []
    lines = ["", "Why p99 <= 5 ms at 1M items is missed, from the rows above:"]
    fast, accurate = gap["fast"], gap["accurate"]
    if fast:
        server = fast.get("server") or {}
        lines.append(f"- within 5 ms: ef_search {fast['ef_search']} (p99 {fmt(fast['p99_ms'])} ms, "
                     f"{fmt(server.get('buffers_p50'))} buffers per query) finds only recall@10 "
                     f"{fmt(fast.get('recall_at_10'))} of the true neighbours;")
    if accurate:
        server = accurate.get("server") or {}
        lines.append(f"- recall@10 >= 0.95 first at ef_search {accurate['ef_search']}: "
                     f"{fmt(server.get('buffers_p50'))} buffers per query at {fmt(server.get('us_per_buffer'))} µs "
                     f"each is {fmt(server.get('execution_p50_ms'))} ms inside PostgreSQL (median), p99 "
                     f"{fmt(accurate['p99_ms'])} ms at the client.")
    hnsw = size.get("hnsw") or {}
    lines.append(
        f"- So on this graph (m {hnsw.get('m')}, ef_construction {hnsw.get('ef_construction')}, random 32-d vectors "
        "with no cluster structure) the two goals pull apart: the time is pgvector visiting graph elements, one "
        "buffer each, and the graph needs that many visits to find 95 % of the true neighbours. What would close it: "
        "a denser graph (larger m / ef_construction: a longer build, after which the calibration picks a smaller "
        "ef_search), or embeddings with structure (a trained model's are clustered, which HNSW needs fewer visits "
        "for). Exact search in memory is no way out at this size: it reads the whole 128 MB matrix per query (the "
        "exact-in-memory row above).")
    return lines


def headline(section: Mapping[str, Any]) -> list[HeadlineRow]:
    rows: list[HeadlineRow] = []
    if section.get("load"):
        load = section["load"]
        rows.append((f"vectors load ({fmt(load.get('items'))}): vectors/s", fmt(load.get("copy_vectors_per_s")),
                     fmt(load.get("insert_vectors_per_s")), fmt_ratio(load.get("ratio"))))
    for key in _sizes(section):
        v = section[key]
        rows.append((f"vectors {key}: p50 / p99 ms, recall@10, build s",
                     f"{fmt(v.get('p50_ms'))} / {fmt(v.get('p99_ms'))}, {fmt(v.get('recall_at_10'))}, "
                     f"{fmt(v.get('build_s'))}", "exact: recall 1", "–"))
    return rows
