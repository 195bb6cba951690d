"""The stack's parts the soak touches, through its `StackHandle` alone, and making them ready (`--prepare`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.workflows import stream as streaming
from harness.workflows.handle import HandleError, StackHandle
from harness.workflows.soak.plan import SoakError


@dataclass(frozen=True)
class SoakTarget:
    handle: StackHandle
    stream: streaming.StreamTarget

    @property
    def error_root(self) -> str:
        """The literal start of the error output's keys (up to the template's first expression)."""
        return self.stream.layout.error_template.split("!{", 1)[0]


def resolve(handle: StackHandle) -> SoakTarget:
    """The stream, the delivery stream and where it writes, as the Firehose API describes them."""
    try:
        return SoakTarget(handle=handle, stream=streaming.resolve_target(handle))
    except streaming.StreamError as err:
        raise SoakError(str(err)) from None


def count_item_embeddings(handle: StackHandle) -> int | None:
    """Rows in the live item embeddings table; None when the vector database cannot be reached from here (it is
    private on AWS)."""
    import psycopg2

    try:
        conn = psycopg2.connect(connect_timeout=10, **handle.vector_db_settings())
    except HandleError as err:
        raise SoakError(str(err)) from None
    except psycopg2.OperationalError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('item_emb') IS NOT NULL")
            exists = cur.fetchone()
            if not exists or not exists[0]:
                return 0
            cur.execute("SELECT COUNT(*) FROM item_emb")
            counted = cur.fetchone()
            return int(counted[0]) if counted else 0
    finally:
        conn.close()


def ensure_ready(handle: StackHandle, *, prepare: bool, say: Callable[[str], None],
                 artifacts_dir: Path | None = None) -> SoakTarget:
    """The soak needs customers and products to make sessions from and embeddings in pgvector. With `prepare`, missing
    parts are made by the demo's own stages (seed, batch, train, load; `artifacts_dir` keeps a copy of what training
    publishes); otherwise the message says what to run."""
    target = resolve(handle)
    try:
        streaming.load_catalogue(handle, say=say)
    except streaming.StreamError as err:
        if not prepare:
            raise SoakError(f"{err}; or pass --prepare") from None
        say("preparing: seeding the source database")
        _preparing("seeding the source", lambda: _seed(handle))
    items = count_item_embeddings(handle)
    if items is None:
        say("the vector database is not reachable from here: not checking that it holds embeddings (records fail "
            "into the error output if it holds none)")
        return target
    if items > 0:
        return target
    if not prepare:
        raise SoakError("the vector database holds no item embeddings, so every record would fail: run "
                        "`harness demo` first, or pass --prepare")
    _prepare_embeddings(handle, say, artifacts_dir)
    if not count_item_embeddings(handle):
        raise SoakError("the embeddings loader ran but item_emb is still empty: see the embeddings loader's log")
    return target


def _seed(handle: StackHandle) -> None:
    from harness.workflows.seed import seed_stack

    seed_stack(handle, scale=1)


def embeddings_published(handle: StackHandle) -> bool:
    """Whether the files the loader's event names are in the artifacts bucket (the trainer published them)."""
    from botocore.exceptions import ClientError

    from harness.workflows.loader import load_event

    event = load_event(handle)
    s3 = handle.client("s3")
    try:
        for key in (event["item_key"], event["user_key"]):
            s3.head_object(Bucket=event["bucket"], Key=key)
    except ClientError:
        return False
    return True


def _prepare_embeddings(handle: StackHandle, say: Callable[[str], None], artifacts_dir: Path | None) -> None:
    from harness.workflows.etl import run_etl
    from harness.workflows.loader import invoke_loader, load_event
    from harness.workflows.train import train_and_publish

    if not embeddings_published(handle):
        say("preparing: running the batch job (Glue)")
        _preparing("the batch job", lambda: run_etl(handle))
        say("preparing: training and publishing embeddings")
        _preparing("training", lambda: train_and_publish(handle, output_dir=artifacts_dir))
    say("preparing: loading the embeddings into pgvector")
    _preparing("loading the embeddings", lambda: invoke_loader(handle, load_event(handle)))


def _preparing(stage: str, run: Callable[[], object]) -> None:
    # The stages raise their own user-facing errors (SeedError, EtlError, ...: RuntimeErrors with a message that says
    # what to do); the soak reports them as its own, one message, no traceback.
    try:
        run()
    except SoakError:
        raise
    except (RuntimeError, ValueError) as err:
        raise SoakError(f"preparing the stack failed at {stage}: {err}") from None
