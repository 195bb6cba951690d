"""The stack's parts the soak touches, and making them ready (`--prepare`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.emulator import state as st
from harness.workflows import stream as streaming
from harness.workflows.soak.plan import SoakError


@dataclass(frozen=True)
class SoakTarget:
    stream: streaming.StreamTarget
    transformation_function: str
    vector_db: dict[str, Any]  # host, port, user, password, dbname
    error_root: str


def _output(state: st.State, name: str) -> Any:
    entry = (state.get("outputs") or {}).get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def resolve(state_dir: Path) -> SoakTarget:
    try:
        stream_target = streaming.resolve_target(state_dir)
    except streaming.StreamError as err:
        raise SoakError(str(err)) from None
    state = st.load_state(state_dir)
    names = {n: _output(state, n) for n in ("transformation_function_name", "vector_db_host", "vector_db_port",
                                             "vector_db_master_username", "vector_db_master_password")}
    missing = [n for n, v in names.items() if v in (None, "")]
    if missing:
        raise SoakError(f"the stack has no {', '.join(missing)} output: run `python -m harness up` to deploy it")
    firehose = streaming.aws_client(stream_target, "firehose")
    description = firehose.describe_delivery_stream(DeliveryStreamName=stream_target.delivery_stream)
    return SoakTarget(
        stream=stream_target, transformation_function=str(names["transformation_function_name"]),
        vector_db={"host": names["vector_db_host"], "port": int(names["vector_db_port"]),
                   "user": names["vector_db_master_username"], "password": names["vector_db_master_password"],
                   "dbname": _output(state, "vector_db_name") or "postgres"},
        error_root=streaming.error_output_root(description),
    )


def count_item_embeddings(target: SoakTarget) -> int:
    import psycopg2

    try:
        conn = psycopg2.connect(connect_timeout=10, **target.vector_db)
    except psycopg2.Error as err:
        raise SoakError(f"cannot reach the vector database {target.vector_db['host']}:{target.vector_db['port']}: "
                        f"{str(err).strip()}; is the stack up (`python -m harness status`)?") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('item_emb') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute("SELECT COUNT(*) FROM item_emb")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _artifacts_ready(state_dir: Path, target: SoakTarget) -> tuple[str, bool]:
    bucket = _output(st.load_state(state_dir), "artifacts_bucket_id")
    if not bucket:
        raise SoakError("the stack has no artifacts_bucket_id output: run `python -m harness up` to deploy it")
    s3 = streaming.aws_client(target.stream, "s3")
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}
    wanted = {"serving/model.safetensors", "serving/preprocessing.json", "embeddings/item_embeddings.csv",
              "embeddings/user_embeddings.csv"}
    return str(bucket), wanted <= keys


def invoke_loader(state_dir: Path, target: SoakTarget, bucket: str) -> None:
    """The embeddings loader with its documented event (docs/ARCHITECTURE.md), through the daemon's Lambda API."""
    from harness.workflows.loader import LoaderError
    from harness.workflows.loader import invoke_loader as invoke

    try:
        invoke(state_dir, {"bucket": bucket, "item_key": "embeddings/item_embeddings.csv",
                           "user_key": "embeddings/user_embeddings.csv"})
    except LoaderError as err:
        raise SoakError(str(err)) from None


def ensure_ready(state_dir: Path, *, prepare: bool, say: Callable[[str], None]) -> SoakTarget:
    """The soak needs customers and products in the source, the serving bundle, and embeddings in pgvector. With
    `prepare`, missing parts are made the way the demo makes them (seed, ETL, training, the loader); otherwise the
    message says what to run."""
    target = resolve(state_dir)
    try:
        streaming.load_catalogue(target.stream)
    except streaming.StreamError as err:
        if not prepare:
            raise SoakError(f"{err}; or pass --prepare") from None
        from harness.workflows.seed import seed_source

        say("preparing: seeding the source database")
        _preparing("seeding the source", lambda: seed_source(state_dir, scale=1))
    if count_item_embeddings(target) > 0:
        return target
    if not prepare:
        raise SoakError("the vector database holds no item embeddings, so every record would fail: run "
                        "`python -m harness demo` first, or pass --prepare")
    bucket, ready = _artifacts_ready(state_dir, target)
    if not ready:
        from harness.workflows.etl import run_etl
        from harness.workflows.train import train_and_publish

        say("preparing: running the ETL (Glue job on local Spark)")
        _preparing("the ETL", lambda: run_etl(state_dir))
        say("preparing: training and publishing embeddings")
        _preparing("training", lambda: train_and_publish(state_dir))
    say("preparing: loading the embeddings into pgvector")
    invoke_loader(state_dir, target, bucket)
    if count_item_embeddings(target) == 0:
        raise SoakError("the embeddings loader ran but item_emb is still empty; see the loader's log under "
                        f"{st.logs_dir(state_dir)}")
    return target


def _preparing(stage: str, run: Callable[[], Any]) -> None:
    # The stages raise their own user-facing errors (SeedError, EtlError, ...: RuntimeErrors with a message that says
    # what to do); the soak reports them as its own, one message, no traceback.
    try:
        run()
    except SoakError:
        raise
    except (RuntimeError, ValueError) as err:
        raise SoakError(f"preparing the stack failed at {stage}: {err}") from None


