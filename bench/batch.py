"""Batch benchmark: the deployed Glue script on local Spark at seeder scales 1, 10 and 100.

    python bench/batch.py [--quick] [--scales 1,10,100] [--runs 5]

For each scale, on a throwaway MariaDB and moto server (temp dirs, free ports, `harness.emulator.services`): the
source is seeded
by `harness.workflows.seed` (the classicmodels-shaped data at that scale), the Glue job is set up in the emulator as
the program
deploys it (script in a scripts bucket, JDBC connection whose credentials are in Secrets Manager, default arguments),
and `harness.workflows.etl.run_job` runs it the way `harness etl run` does: local[2] Spark in a child process, MariaDB
Connector/J, staged publish to the data lake bucket and the catalog. One warm-up run, then `--runs` measured runs (each
a re-run over the previous output: the steady state of a nightly job). Per run: wall time, rows written, partitions,
and the Parquet files under the target prefix.

Baseline, measured in the same process: the same join executed by MariaDB itself and streamed to a client (no Spark,
no Parquet, no publish). The ratio says what the platform's batch path costs over the bare query.

Prints one JSON document on stdout (`batch.scale1.{rows, wall_s, ...}`); progress goes to stderr. `--quick` (scale 1,
one run, no warm-up) is what CI runs to prove the benchmark works.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "lambda_src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

SCRIPT = ROOT / "glue_scripts" / "ratings_etl.py"
TARGET_PREFIX = "ratings-ml-training/"
CATALOG_TABLE = "ratings_ml_training"
SOURCE_DATABASE = "classicmodels"
# The Glue job's join, as the source database runs it (the baseline).
JOIN_SQL = """
SELECT r.customerNumber, c.city, c.state, c.postalCode, c.country, c.creditLimit, r.productCode, p.productLine,
       p.productScale, p.quantityInStock, p.buyPrice, p.MSRP, r.productRating
FROM ratings r JOIN customers c ON c.customerNumber = r.customerNumber JOIN products p ON p.productCode = r.productCode
WHERE r.productRating BETWEEN 1 AND 5
"""

Say = Callable[[str], None]


@dataclass(frozen=True)
class GlueSetup:
    endpoint: Any  # harness.workflows.etl.AwsEndpoint
    job_name: str
    datalake: str


def deploy_job(endpoint: Any, maria: Any, database: str) -> GlueSetup:
    """The Glue job, connection, secret and buckets, as the program creates them (see docs/ARCHITECTURE.md)."""
    suffix = uuid.uuid4().hex[:8]
    s3, glue, secrets = endpoint.client("s3"), endpoint.client("glue"), endpoint.client("secretsmanager")
    scripts, datalake = f"bench-scripts-{suffix}", f"bench-datalake-{suffix}"
    for bucket in (scripts, datalake):
        s3.create_bucket(Bucket=bucket)
    key = "glue/ratings_etl-bench.py"
    s3.upload_file(str(SCRIPT), scripts, key)
    secret = f"bench-source-{suffix}"
    secrets.create_secret(Name=secret, SecretString=json.dumps({
        "engine": "mysql", "host": maria.host, "port": maria.port, "dbname": database, "username": maria.user,
        "password": maria.password}))
    catalog = f"bench_catalog_{suffix}"
    glue.create_database(DatabaseInput={"Name": catalog})
    connection = f"bench-source-{suffix}"
    glue.create_connection(ConnectionInput={"Name": connection, "ConnectionType": "JDBC", "ConnectionProperties": {
        "JDBC_CONNECTION_URL": f"jdbc:mysql://{maria.host}:{maria.port}/{database}", "SECRET_ID": secret,
        "JDBC_ENFORCE_SSL": "false"}})
    job = f"bench-etl-{suffix}"
    glue.create_job(
        Name=job, Role="arn:aws:iam::123456789012:role/bench-glue", GlueVersion="5.0", Timeout=120,
        Command={"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": f"s3://{scripts}/{key}"},
        Connections={"Connections": [connection]},
        DefaultArguments={"--job-language": "python", "--connection_name": connection, "--catalog_database": catalog,
                          "--catalog_table": CATALOG_TABLE, "--target_path": f"s3://{datalake}/{TARGET_PREFIX}"},
    )
    return GlueSetup(endpoint, job, datalake)


def parquet_files(setup: GlueSetup) -> int:
    s3 = setup.endpoint.client("s3")
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=setup.datalake, Prefix=TARGET_PREFIX):
        count += sum(1 for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
    return count


def run_glue_once(setup: GlueSetup, state_dir: Path) -> dict[str, Any]:
    from harness.workflows import etl

    started = time.perf_counter()
    record = etl.run_job(setup.endpoint, setup.job_name, state_dir)
    wall = time.perf_counter() - started
    if record.JobRunState != "SUCCEEDED" or record.Summary is None:
        raise RuntimeError(f"Glue run {record.Id} {record.JobRunState}: {record.ErrorMessage} (log {record.LogPath})")
    return {"wall_s": wall, "rows": int(record.Summary["rows"]), "partitions": int(record.Summary["partitions"]),
            "objects_published": int(record.Summary.get("objects_published", 0)), "output_files": parquet_files(setup)}


def run_join_once(maria: Any, database: str) -> tuple[float, int]:
    import pymysql.cursors

    conn = maria.connect(database, cursorclass=pymysql.cursors.SSCursor)
    try:
        started = time.perf_counter()
        rows = 0
        with conn.cursor() as cur:
            cur.execute(JOIN_SQL)
            while batch := cur.fetchmany(10_000):
                rows += len(batch)
        return time.perf_counter() - started, rows
    finally:
        conn.close()


def spread(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3),
            "runs": len(values)}


def bench_scale(scale: int, *, runs: int, warmup: bool, work: Path, maria: Any, endpoint: Any, say: Say
                ) -> dict[str, Any]:
    from harness.workflows.seed import SeedTarget, seed_target

    database = f"{SOURCE_DATABASE}_{scale}"
    say(f"scale {scale}: seeding {database}")
    seeded = seed_target(SeedTarget(maria.host, maria.port, maria.user, maria.password, database, external=False),
                         scale=scale)
    setup = deploy_job(endpoint, maria, database)
    state_dir = work / f"state-{scale}"
    if warmup:
        say(f"scale {scale}: Glue warm-up run")
        run_glue_once(setup, state_dir)
    measured = []
    for i in range(runs):
        say(f"scale {scale}: Glue run {i + 1}/{runs}")
        measured.append(run_glue_once(setup, state_dir))
    rows = {m["rows"] for m in measured}
    if len(rows) != 1:
        raise RuntimeError(f"scale {scale}: the runs wrote different row counts {sorted(rows)} from the same source")
    say(f"scale {scale}: baseline (the join in MariaDB)")
    run_join_once(maria, database)  # warm the buffer pool the way Spark's warm-up run did
    joins = [run_join_once(maria, database) for _ in range(max(runs, 1))]
    if {n for _, n in joins} != rows:
        raise RuntimeError(f"scale {scale}: MariaDB's join gives {joins[0][1]} rows, the Glue job wrote {rows}")
    wall = spread([m["wall_s"] for m in measured])
    base = spread([seconds for seconds, _ in joins])
    n_rows = measured[0]["rows"]
    ours_rate, base_rate = n_rows / wall["median"], n_rows / base["median"]
    return {
        "scale": scale, "source_counts": seeded.counts, "rows": n_rows,
        "partitions": measured[-1]["partitions"], "output_files": measured[-1]["output_files"],
        "objects_published": measured[-1]["objects_published"],
        "wall_s": wall["median"], "rows_per_s": round(ours_rate, 1), "wall_spread": wall,
        "baseline_wall_s": base["median"], "baseline_rows_per_s": round(base_rate, 1), "baseline_spread": base,
        "ratio": round(ours_rate / base_rate, 4), "warmup": warmup,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI size: scale 1, one run, no warm-up")
    parser.add_argument("--scales", default=None, help="comma-separated seeder scales (default 1,10,100)")
    parser.add_argument("--runs", type=int, default=None, help="measured runs per scale (default 5)")
    args = parser.parse_args(argv)
    try:
        scales = [int(s) for s in (args.scales or ("1" if args.quick else "1,10,100")).split(",")]
    except ValueError:
        parser.error("--scales takes comma-separated integers, e.g. --scales 1,10,100")
    runs = args.runs or (1 if args.quick else 5)
    if runs < 1 or any(s < 1 for s in scales):
        parser.error("--runs and every scale must be at least 1")

    def say(message: str) -> None:
        print(f"[bench batch] {message}", file=sys.stderr, flush=True)

    from harness.emulator import services
    from harness.workflows import etl

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        say("starting moto and MariaDB")
        moto = services.start_moto(work / "moto")
        try:
            maria = services.start_mariadb(work / "maria")
            try:
                endpoint = etl.AwsEndpoint(moto.endpoint_url)
                for scale in scales:
                    r = results[f"scale{scale}"] = bench_scale(scale, runs=runs, warmup=not args.quick, work=work,
                                                               maria=maria, endpoint=endpoint, say=say)
                    say(f"scale {scale}: {r['rows']:,} rows in {r['wall_s']:.1f} s ({r['rows_per_s']:,.0f} rows/s), "
                        f"{r['partitions']:,} partitions, {r['output_files']:,} files; MariaDB join "
                        f"{r['baseline_wall_s']:.2f} s")
            finally:
                services.stop_mariadb(maria)
        finally:
            services.stop_moto(moto)
    print(json.dumps({**results, "quick": args.quick, "runs": runs,
                      "date": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
