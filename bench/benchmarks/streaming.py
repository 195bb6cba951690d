"""Streaming benchmark: records/s of our transformation against the lab's per-record HTTP path, same PostgreSQL.

- ours: `transformation.handler` on Firehose events of 500 records (one model call, two SQL statements per batch;
  catalogues up to 200k items are searched exactly in memory, see docs/vectors.md);
- lab-style: per record, the lab's three calls to the inference Function URL (`POST /user_embeddings`,
  `POST /items_from_user?limit=5`, `GET /items_from_item?item_id=<history item>&limit=5`), served on 127.0.0.1 by an
  in-process HTTP server that builds the Function URL event and calls `inference.handler` (the local daemon adds a
  worker process hop on top, so this baseline is, if anything, flattering to the lab's design).

Both run in this one Python process (numpy held to one thread), against one throwaway PostgreSQL + pgvector with the
catalogue's item embeddings loaded by `recsys.vectordb` (HNSW indexes). The data is the seeder's classicmodels at the
given scale (scale 1: 110 products; 100: 11,000) and sessions from `recsys.events`; the serving bundle has the
trainer's shape with fixed random weights (speed does not depend on what the weights learned).

`python -m bench.benchmarks.streaming [--quick] [--scales 1,100] [--runs N]` prints JSON: per scale, the median
records/s of each path over N runs after a warm-up, their spread, and the ratio. `--quick` is the CI size: it proves
the benchmark runs.
"""

from __future__ import annotations

import os

from bench.machine import one_core_for_numpy

if __name__ == "__main__":
    # This is the benchmark's own process (imported by the runner, the module changes nothing): one core for our side,
    # set before numpy loads, or its BLAS spreads the batch's small matrix products over every core.
    one_core_for_numpy()
    # The functions log one INFO line per batch to stdout, where this module writes its JSON.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

import argparse  # noqa: E402
import base64  # noqa: E402
import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from functools import partial  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from bench.machine import machine_description  # noqa: E402
from bench.registry import RUNS, Benchmark, Goal, HeadlineRow, register, scales_and_runs  # noqa: E402
from bench.render import command_line, fmt, fmt_ratio, fmt_spread, table  # noqa: E402
from bench.stats import ratio, spread  # noqa: E402

BATCH = 500
TOP_K = 5
DIM = 32
HIDDEN = 64
LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"


def handler_module(name: str) -> ModuleType:
    """A function's handler module (`lambda_src/<name>.py`) as the Lambda runtime loads it: by name, from the code
    root. The handler modules are top-level files there, not an installed package, so this loads the file instead of
    putting lambda_src/ on sys.path; a module already imported under that name (a test's) is the one returned."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LAMBDA_SRC / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no Lambda handler module {LAMBDA_SRC / f'{name}.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# ---- data and model ------------------------------------------------------------------------------------------------
def catalogue_at(scale: int) -> tuple[Any, list[dict[str, Any]]]:
    """The seeder's customers and products at `scale`, as `recsys.events` sees them, plus the product feature rows."""
    from recsys import classicmodels, events

    data = classicmodels.generate(scale, 42)
    cust_cols, prod_cols = classicmodels.COLUMNS["customers"], classicmodels.COLUMNS["products"]
    customers = [dict(zip(cust_cols, row, strict=True)) for row in data.tables["customers"]]
    products = [dict(zip(prod_cols, row, strict=True)) for row in data.tables["products"]]
    catalogue = events.Catalogue(
        tuple(events.Customer(int(c["customerNumber"]), str(c["city"]), str(c["country"]),
                              None if c["creditLimit"] is None else float(c["creditLimit"])) for c in customers),
        tuple(events.Product(str(p["productCode"]), str(p["productLine"])) for p in products),
    )
    return catalogue, products


def write_bundle(directory: Path, catalogue: Any, products: list[dict[str, Any]]) -> None:
    """A serving bundle with the trainer's features and a hidden layer of 64, fixed random weights."""
    from recsys.model import BUNDLE_FORMAT

    rng = np.random.default_rng(0)
    cities = sorted({c.city for c in catalogue.customers})
    countries = sorted({c.country for c in catalogue.customers})
    lines = sorted({str(p["productLine"]) for p in products})
    scales = sorted({str(p["productScale"]) for p in products})
    user_in, item_in = len(cities) + len(countries) + 1, len(lines) + len(scales) + 3
    tensors: dict[str, np.ndarray] = {}
    for tower, n_in in (("user_tower", user_in), ("item_tower", item_in)):
        tensors[f"{tower}.0.weight"] = rng.normal(0, 1 / np.sqrt(n_in), (HIDDEN, n_in)).astype(np.float32)
        tensors[f"{tower}.0.bias"] = np.zeros(HIDDEN, np.float32)
        tensors[f"{tower}.2.weight"] = rng.normal(0, 1 / np.sqrt(HIDDEN), (DIM, HIDDEN)).astype(np.float32)
        tensors[f"{tower}.2.bias"] = np.zeros(DIM, np.float32)

    def numeric(name: str, keys: list[str], values: list[float]) -> dict[str, Any]:
        return {"name": name, "keys": keys, "mean": float(np.mean(values)), "scale": float(np.std(values) or 1.0)}

    credit = [c.credit_limit or 0.0 for c in catalogue.customers]
    spec = {
        "format": BUNDLE_FORMAT, "embedding_dim": DIM, "rating_offset": 3.0,
        "towers": {
            "user": {
                "categorical": [{"name": "city", "keys": ["city"], "categories": cities},
                                {"name": "country", "keys": ["country"], "categories": countries}],
                "numeric": [numeric("credit_limit", ["credit_limit", "creditlimit", "creditLimit"], credit)],
                "layers": [{"tensor": "user_tower.0", "activation": "relu"},
                           {"tensor": "user_tower.2", "activation": "none"}],
            },
            "item": {
                "categorical": [{"name": "product_line", "keys": ["productLine"], "categories": lines},
                                {"name": "product_scale", "keys": ["productScale"], "categories": scales}],
                "numeric": [numeric(n, [n], [float(p[n]) for p in products])
                            for n in ("quantityInStock", "buyPrice", "MSRP")],
                "layers": [{"tensor": "item_tower.0", "activation": "relu"},
                           {"tensor": "item_tower.2", "activation": "none"}],
            },
        },
    }
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "preprocessing.json").write_text(json.dumps(spec))


def write_artifacts(directory: Path, scale: int) -> tuple[Any, list[dict[str, Any]], Any]:
    """The trainer's published layout for the seeder's data at `scale` (seed 42): `serving/` (the bundle) and
    `embeddings/{item,user}_embeddings.csv` computed by the bundle's own towers.

    Returns (catalogue, products, model)."""
    from recsys.model import ServingModel

    catalogue, products = catalogue_at(scale)
    write_bundle(directory / "serving", catalogue, products)
    model = ServingModel.from_dir(directory / "serving")
    items = model.item_embeddings([{k: (float(v) if k in ("buyPrice", "MSRP") else v) for k, v in p.items()}
                                   for p in products])
    users = model.user_embeddings([{"city": c.city, "country": c.country, "creditlimit": c.credit_limit or 0.0}
                                   for c in catalogue.customers])

    def csv(path: Path, ids: list[Any], vectors: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as fh:
            fh.write("id,embedding\n")
            for key, vec in zip(ids, vectors, strict=True):
                fh.write(f'{key},"[{",".join(f"{v:.7g}" for v in vec)}]"\n')

    csv(directory / "embeddings" / "item_embeddings.csv", [p["productCode"] for p in products], items)
    csv(directory / "embeddings" / "user_embeddings.csv", [c.number for c in catalogue.customers], users)
    return catalogue, products, model


def load_vectors(env: dict[str, str], artifacts: Path) -> None:
    from recsys import vectordb

    conn = vectordb.connect_from_env(env)
    try:
        vectordb.load_embeddings(conn, [
            vectordb.file_source("item_emb", str(artifacts / "embeddings" / "item_embeddings.csv")),
            vectordb.file_source("user_emb", str(artifacts / "embeddings" / "user_embeddings.csv")),
        ], force=True)
    finally:
        conn.close()


# ---- the two paths ---------------------------------------------------------------------------------------------------
def firehose_events(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for start in range(0, len(sessions), BATCH):
        out.append({
            "invocationId": str(uuid.uuid4()), "region": "us-east-1",
            "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/bench",
            "records": [{"recordId": f"{start + i:012d}", "approximateArrivalTimestamp": 0,
                         "data": base64.b64encode(json.dumps(s).encode()).decode()}
                        for i, s in enumerate(sessions[start : start + BATCH])],
        })
    return out


def run_ours(events: list[dict[str, Any]]) -> int:
    transformation = handler_module("transformation")
    ok = 0
    for event in events:
        response = transformation.handler(event, None)
        ok += sum(1 for r in response["records"] if r["result"] == "Ok")
    return ok


@contextlib.contextmanager
def function_url_server() -> Iterator[str]:
    """The inference function behind a Function URL on 127.0.0.1 (payload format 2.0 events, as the daemon builds)."""
    inference = handler_module("inference")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Without it, headers and body leave in two segments and delayed ACKs add ~40 ms to every call: a handicap
        # the deployed Function URL does not have, so the baseline must not have it either.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            event = {"version": "2.0", "rawPath": parts.path, "rawQueryString": parts.query,
                     "headers": {k.lower(): v for k, v in self.headers.items()},
                     "queryStringParameters": dict(urllib.parse.parse_qsl(parts.query)) or None,
                     "requestContext": {"http": {"method": self.command, "path": parts.path}},
                     "body": body.decode() if body else None, "isBase64Encoded": False}
            response = inference.handler(event, None)
            payload = response["body"].encode()
            self.send_response(response["statusCode"])
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_lab_style(url: str, sessions: list[dict[str, Any]], seed: int) -> int:
    """The lab's transformation: three HTTP calls per record, a random history item for the neighbours."""
    import random

    import requests

    rng = random.Random(seed)
    http = requests.Session()
    ok = 0
    for s in sessions:
        user = [{"city": s["city"], "country": s["country"], "creditlimit": s["credit_limit"]}]
        embedding = http.post(f"{url}/user_embeddings", json=user, timeout=30).json()
        items = http.post(f"{url}/items_from_user", params={"limit": TOP_K}, json=embedding, timeout=30).json()
        product = rng.choice(s["browse_history"])["product_code"]
        similar = http.get(f"{url}/items_from_item", params={"item_id": product, "limit": TOP_K}, timeout=30).json()
        record = {**s, "recommended_items": items, "similar_items": {"product_code": product,
                                                                     "similar_items": similar}}
        ok += 1 if json.dumps(record) else 0
    http.close()
    return ok


def timed(fn: Callable[[], int], records: int) -> float:
    started = time.perf_counter()
    done = fn()
    elapsed = time.perf_counter() - started
    if done != records:
        raise RuntimeError(f"expected {records} records transformed, got {done}")
    return records / elapsed


# ---- one scale ---------------------------------------------------------------------------------------------------
def bench_scale(scale: int, *, ours_records: int, lab_records: int, runs: int, say: Callable[[str], None]
                ) -> dict[str, Any]:
    from recsys import events

    from harness.emulator import services

    transformation, inference = handler_module("transformation"), handler_module("inference")

    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        work = Path(tmp)
        say(f"scale {scale}: starting PostgreSQL")
        pg = services.start_postgres(work / "pg")
        try:
            env = {"VECTOR_DB_HOST": pg.host, "VECTOR_DB_PORT": str(pg.port), "VECTOR_DB_NAME": pg.dbname,
                   "VECTOR_DB_USER": pg.user, "VECTOR_DB_PASSWORD": pg.password, "TOP_K": str(TOP_K)}
            os.environ.update(env)
            catalogue, products, model = write_artifacts(work / "artifacts", scale)
            say(f"scale {scale}: loading {len(products):,} item embeddings (HNSW)")
            load_vectors(env, work / "artifacts")
            transformation.container.model = model
            transformation.container.forget_connection()
            inference._container.model = model
            inference._container.forget_connection()

            mix = events.SessionMix(new_customer_rate=0.05)
            sessions = list(events.generate_sessions(catalogue, ours_records, seed=scale, mix=mix))
            batches = firehose_events(sessions)
            lab_sessions = sessions[:lab_records]
            say(f"scale {scale}: warm-up")
            run_ours(batches[:1])
            ours: list[float] = []
            lab: list[float] = []
            with function_url_server() as url:
                run_lab_style(url, lab_sessions[:20], 0)
                for i in range(runs):
                    say(f"scale {scale}: run {i + 1}/{runs}")
                    ours.append(timed(lambda: run_ours(batches), len(sessions)))
                    lab.append(timed(partial(run_lab_style, url, lab_sessions, i), len(lab_sessions)))
            transformation.container.forget_connection()
            inference._container.forget_connection()
        finally:
            services.stop_postgres(pg)
    ours_s, lab_s = spread(ours, digits=1), spread(lab, digits=1)
    return {
        "items": len(products), "batch_size": BATCH, "top_k": TOP_K,
        "ours_records": len(sessions), "baseline_records": len(lab_sessions),
        "ours_records_per_s": ours_s["median"], "baseline_records_per_s": lab_s["median"],
        "ratio": ratio(ours_s["median"], lab_s["median"], digits=1),
        "ours": ours_s, "baseline": lab_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI size: proves the benchmark runs, numbers mean little")
    parser.add_argument("--scales", default=None, help="comma-separated seeder scales (default 1,100; quick: 1)")
    parser.add_argument("--runs", type=int, default=None, help="measured runs per path (default 5; quick: 1)")
    args = parser.parse_args(argv)
    scales, runs = scales_and_runs(parser, args.scales, args.runs, quick=args.quick, default_scales="1,100",
                                   example="1,100")
    ours_records, lab_records = (BATCH * 2, 40) if args.quick else (BATCH * 20, 500)

    def say(message: str) -> None:
        print(f"[bench streaming] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {}
    for scale in scales:
        results[f"scale{scale}"] = bench_scale(scale, ours_records=ours_records, lab_records=lab_records, runs=runs,
                                               say=say)
        r = results[f"scale{scale}"]
        say(f"scale {scale}: ours {r['ours_records_per_s']:,.0f} records/s, lab-style "
            f"{r['baseline_records_per_s']:,.0f} records/s, ratio {r['ratio']}x")
    print(json.dumps({"streaming": results, "quick": args.quick, "machine": machine_description(),
                      "date": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2))
    return 0


# ---- its section of results.json and RESULTS.md ---------------------------------------------------------------------
def summarize(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"quick": bool(raw.get("quick")), "date": raw.get("date")}
    for key, scale in sorted((raw.get("streaming") or {}).items()):
        ours, baseline = scale.get("ours_records_per_s"), scale.get("baseline_records_per_s")
        out[key] = {
            "items": scale.get("items"), "batch_size": scale.get("batch_size"),
            "ours_records": scale.get("ours_records"), "baseline_records": scale.get("baseline_records"),
            "ours_records_per_s": ours, "baseline_records_per_s": baseline, "ratio": ratio(ours, baseline),
            "ours_spread": scale.get("ours"), "baseline_spread": scale.get("baseline"),
        }
    return out


def _scales(section: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in section if k.startswith("scale"))


def render(section: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Streaming: transformation records/s", "",
             "Ours: `transformation.handler` on Firehose events of 500 records (one model call and two SQL "
             "statements per batch; catalogues of these sizes are searched exactly in memory). Baseline: the "
             "lab's per-record path, three HTTP calls per record to the inference Function URL (which searches "
             "the same way). Same PostgreSQL + pgvector, same sessions.", ""]
    lines += command_line(section)
    rows = []
    for key in _scales(section):
        s = section[key]
        rows.append((f"scale {key[5:]} ({fmt(s.get('items'))} items; {fmt(s.get('ours_records'))} / "
                     f"{fmt(s.get('baseline_records'))} records)",
                     fmt(s.get("ours_records_per_s"), " rec/s"), fmt(s.get("baseline_records_per_s"), " rec/s"),
                     fmt_ratio(s.get("ratio")), fmt_spread(s.get("ours_spread")),
                     fmt_spread(s.get("baseline_spread"))))
    return lines + table(("workload", "ours", "baseline", "ratio", "ours spread", "baseline spread"), rows)


def headline(section: Mapping[str, Any]) -> list[HeadlineRow]:
    return [(f"streaming {key}: records/s", fmt(section[key].get("ours_records_per_s")),
             fmt(section[key].get("baseline_records_per_s")), fmt_ratio(section[key].get("ratio")))
            for key in _scales(section)]


BENCHMARK = register(Benchmark(
    name="streaming",
    measures="records/s of `transformation.handler` on Firehose batches against the lab's three HTTP calls per "
             "record to the inference Function URL, same PostgreSQL + pgvector, same sessions",
    main=main, full_args=("--runs", str(RUNS)), quick_args=("--quick",), timeout_s=3600,
    summarize=summarize, render=render, headline=headline, profile_focus=run_ours,
    goals=(
        Goal("streaming.scale1.ratio", ">=", 50, "streaming: ours / lab-style at scale 1"),
        Goal("streaming.scale100.ratio", ">=", 50, "streaming: ours / lab-style at scale 100"),
        # The transformation runs in one process with numpy on one thread: records/s is per core.
        Goal("streaming.scale1.ours_records_per_s", ">=", 5_000, "streaming: records/s per core at scale 1"),
    ),
))


if __name__ == "__main__":
    sys.exit(main())
