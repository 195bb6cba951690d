"""Batch benchmark: the deployed Glue script on local Spark at seeder scales 1, 10 and 100.

    python -m bench.benchmarks.batch [--quick] [--scales 1,10,100] [--runs 5]

For each scale, on a throwaway MariaDB and moto server (temp dirs, free ports, `harness.emulator.services`): the
source is seeded by `harness.workflows.seed` (the classicmodels-shaped data at that scale), the Glue job is set up in
the emulator as the program deploys it (script in a scripts bucket, JDBC connection whose credentials are in Secrets
Manager, default arguments), and the ETL workflow (`harness.workflows.etl`, called from `run_etl` alone) runs it the
way `harness etl run` does: local[2] Spark in a child process, MariaDB Connector/J, staged publish to the data lake
bucket and the catalog. One warm-up run, then `--runs` measured runs (each a re-run over the previous output: the
steady state of a nightly job). Per run: wall time, rows written, partitions, and the Parquet files under the target
prefix.

Baseline, measured in the same process: the same join executed by MariaDB itself and streamed to a client (no Spark,
no Parquet, no publish). The ratio says what the platform's batch path costs over the bare query.

Prints one JSON document on stdout (`batch.scale1.{rows, wall_s, ...}`); progress goes to stderr. `--quick` (scale 1,
one run, no warm-up) is what CI runs to prove the benchmark works.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.registry import RUNS, Benchmark, HeadlineRow, register, scales_and_runs
from bench.render import command_line, fmt, fmt_ratio, fmt_spread, table
from bench.stats import ratio, spread
from harness.emulator import endpoints
from harness.workflows.handle import AwsEndpoints, StackHandle

ROOT = Path(__file__).resolve().parents[2]
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


def emulator_endpoints(moto_url: str) -> AwsEndpoints:
    """The benchmark's own moto server, with the local stack's region and credentials."""
    return AwsEndpoints.from_environment({"AWS_ENDPOINT_URL": moto_url, "AWS_REGION": endpoints.DEFAULT_REGION,
                                          **endpoints.CREDENTIALS_ENV})


def deploy_job(aws: AwsEndpoints, maria: Any, database: str) -> StackHandle:
    """The Glue job, connection, secret and buckets, as the program creates them (see docs/ARCHITECTURE.md); the
    stack's outputs name them as the program's do."""
    suffix = uuid.uuid4().hex[:8]
    stack = StackHandle(name=f"bench-batch-{suffix}", aws=aws, outputs={
        "scripts_bucket_id": f"bench-scripts-{suffix}", "data_lake_bucket_id": f"bench-datalake-{suffix}",
        "glue_catalog_database": f"bench_catalog_{suffix}", "glue_connection_name": f"bench-source-{suffix}",
        "glue_job_name": f"bench-etl-{suffix}"})
    scripts, datalake = stack.output("scripts_bucket_id"), stack.output("data_lake_bucket_id")
    catalog, connection = stack.output("glue_catalog_database"), stack.output("glue_connection_name")
    s3, glue, secrets = stack.client("s3"), stack.client("glue"), stack.client("secretsmanager")
    for bucket in (scripts, datalake):
        s3.create_bucket(Bucket=bucket)
    key = "glue/ratings_etl-bench.py"
    s3.upload_file(str(SCRIPT), scripts, key)
    secret = f"bench-source-{suffix}"
    secrets.create_secret(Name=secret, SecretString=json.dumps({
        "engine": "mysql", "host": maria.host, "port": maria.port, "dbname": database, "username": maria.user,
        "password": maria.password}))
    glue.create_database(DatabaseInput={"Name": catalog})
    glue.create_connection(ConnectionInput={"Name": connection, "ConnectionType": "JDBC", "ConnectionProperties": {
        "JDBC_CONNECTION_URL": f"jdbc:mysql://{maria.host}:{maria.port}/{database}", "SECRET_ID": secret,
        "JDBC_ENFORCE_SSL": "false"}})
    glue.create_job(
        Name=stack.output("glue_job_name"), Role="arn:aws:iam::123456789012:role/bench-glue", GlueVersion="5.0",
        Timeout=120, Command={"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": f"s3://{scripts}/{key}"},
        Connections={"Connections": [connection]},
        DefaultArguments={"--job-language": "python", "--connection_name": connection, "--catalog_database": catalog,
                          "--catalog_table": CATALOG_TABLE, "--target_path": f"s3://{datalake}/{TARGET_PREFIX}"},
    )
    return stack


def run_etl(stack: StackHandle, state_dir: Path) -> Mapping[str, Any]:
    """One run of the stack's Glue job as `harness etl run` has it run: started through the emulator's job-run service
    (in this process: the benchmark has moto but no control plane), the script on local Spark; the summary (rows,
    partitions, objects_published) read from the run's CloudWatch log as the ETL workflow reads it. Raises when the run
    did not succeed. The benchmark's only call into the ETL (a change there touches this function alone)."""
    from harness.emulator.glue_runs import GlueRunService
    from harness.workflows import etl

    job = str(stack.output("glue_job_name"))
    service = GlueRunService(state_dir, str(stack.aws.default_url), stack.aws.region)
    try:
        run = service.wait_for(job, service.start_job_run(job))
    finally:
        service.close()
    progress = etl.Progress()
    progress.read(etl.LogTail(stack.client("logs"), etl.output_log_group(run), str(run["Id"])).new_lines())
    if run["JobRunState"] != "SUCCEEDED" or progress.summary is None:
        raise RuntimeError(f"{etl.error_for(run)} (log {state_dir / 'logs' / ('glue-' + str(run['Id']) + '.log')})")
    return progress.summary


def parquet_files(stack: StackHandle) -> int:
    s3 = stack.client("s3")
    count = 0
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.output("data_lake_bucket_id"),
                                                         Prefix=TARGET_PREFIX)
    for page in pages:
        count += sum(1 for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
    return count


def run_glue_once(stack: StackHandle, state_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    summary = run_etl(stack, state_dir)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "rows": int(summary["rows"]), "partitions": int(summary["partitions"]),
            "objects_published": int(summary.get("objects_published", 0)), "output_files": parquet_files(stack)}


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


def bench_scale(scale: int, *, runs: int, warmup: bool, work: Path, maria: Any, aws: AwsEndpoints, say: Say
                ) -> dict[str, Any]:
    from harness.workflows.seed import SeedTarget, seed_target

    database = f"{SOURCE_DATABASE}_{scale}"
    say(f"scale {scale}: seeding {database}")
    seeded = seed_target(SeedTarget(maria.host, maria.port, maria.user, maria.password, database, external=False),
                         scale=scale)
    stack = deploy_job(aws, maria, database)
    state_dir = work / f"state-{scale}"
    if warmup:
        say(f"scale {scale}: Glue warm-up run")
        run_glue_once(stack, state_dir)
    measured = []
    for i in range(runs):
        say(f"scale {scale}: Glue run {i + 1}/{runs}")
        measured.append(run_glue_once(stack, state_dir))
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
        "ratio": ratio(ours_rate, base_rate, digits=4), "warmup": warmup,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI size: scale 1, one run, no warm-up")
    parser.add_argument("--scales", default=None, help="comma-separated seeder scales (default 1,10,100)")
    parser.add_argument("--runs", type=int, default=None, help="measured runs per scale (default 5)")
    args = parser.parse_args(argv)
    scales, runs = scales_and_runs(parser, args.scales, args.runs, quick=args.quick, default_scales="1,10,100",
                                   example="1,10,100")

    def say(message: str) -> None:
        print(f"[bench batch] {message}", file=sys.stderr, flush=True)

    from harness.emulator import services

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        say("starting moto and MariaDB")
        moto = services.start_moto(work / "moto")
        try:
            maria = services.start_mariadb(work / "maria")
            try:
                aws = emulator_endpoints(moto.endpoint_url)
                for scale in scales:
                    r = results[f"scale{scale}"] = bench_scale(scale, runs=runs, warmup=not args.quick, work=work,
                                                               maria=maria, aws=aws, say=say)
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


# ---- its section of results.json (the document's own keys) and RESULTS.md ------------------------------------------
def _scales(section: Mapping[str, Any]) -> list[str]:
    return sorted((k for k in section if k.startswith("scale")), key=lambda k: int(k[5:]))


def render(section: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Batch: the Glue script on local Spark", "",
             "The deployed script run by `harness.workflows.etl.run_job` (local[2] Spark, MariaDB source over "
             "JDBC, "
             "publish to S3 in the emulator) at seeder scales. Baseline: the same join run by MariaDB itself and "
             "read to a client (no Spark, no Parquet, no publish): what the work costs without the platform.", ""]
    lines += command_line(section)
    rows = []
    for key in _scales(section):
        b = section[key]
        rows.append((f"scale {key[5:]}: {fmt(b.get('rows'))} rows, {fmt(b.get('partitions'))} partitions, "
                     f"{fmt(b.get('output_files'))} files", f"{fmt(b.get('wall_s'))} s "
                     f"({fmt(b.get('rows_per_s'))} rows/s)", f"{fmt(b.get('baseline_wall_s'))} s "
                     f"({fmt(b.get('baseline_rows_per_s'))} rows/s)", fmt_ratio(b.get("ratio")),
                     fmt_spread(b.get("wall_spread"), " s")))
    return lines + table(("workload", "ours (wall, rows/s)", "baseline (wall, rows/s)", "ratio (rows/s)",
                          "ours spread"), rows)


def headline(section: Mapping[str, Any]) -> list[HeadlineRow]:
    return [(f"batch {key}: wall s ({fmt(section[key].get('rows'))} rows)", fmt(section[key].get("wall_s")),
             fmt(section[key].get("baseline_wall_s")), fmt_ratio(section[key].get("ratio")))
            for key in _scales(section)]


BENCHMARK = register(Benchmark(
    name="batch",
    measures="the deployed Glue script on local Spark at seeder scales (wall time, rows/s, partitions, files) "
             "against the same join run by MariaDB and read to a client",
    main=main, full_args=("--runs", str(RUNS)), quick_args=("--quick",), timeout_s=7200,
    render=render, headline=headline, profile_focus=run_glue_once,
))


if __name__ == "__main__":
    sys.exit(main())
