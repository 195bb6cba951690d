"""`harness demo`: the whole platform end to end on a deployed stack, then a short report.

Stages, in order: up (the stack: `harness demo` deploys the local one first; `--outputs`/`--pulumi-stack` name one
deployed with `pulumi up`), seed (the source database, through the program's seeder function), etl (the Glue job,
started through the Glue API and waited for), train (the reference trainer publishes embeddings to the artifacts
bucket), load (the embeddings loader invoked with the event the program's post-deploy Invocation sends), stream (a
burst of sessions through Kinesis -> Firehose -> transformation Lambda -> S3, followed into the recommendations bucket
by session id, and the delivered records checked for recommendations). A stage that fails stops the stages that depend
on it. Every stage reaches the stack only through its `StackHandle`, so the same run checks the local stack and one on
AWS. The numbers in the report are read back from the stores themselves (row counts in PostgreSQL when it can be
reached from here, the delivered records in S3), not copied from what a stage said it did.

The stack stays up afterwards; a second demo runs the stages again (every stage is re-runnable).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.workflows.handle import StackHandle

StageName = Literal["up", "seed", "etl", "train", "load", "stream"]
STAGES: tuple[StageName, ...] = ("up", "seed", "etl", "train", "load", "stream")
StageStatus = Literal["done", "skipped", "failed"]
# A stage runs only when the stages it reads from are done.
NEEDS: dict[StageName, tuple[StageName, ...]] = {
    "up": (), "seed": ("up",), "etl": ("seed",), "train": ("etl",), "load": ("train",), "stream": ("load",),
}
REPORT_FILE = "demo-report.json"
DEFAULT_EVENTS = 50
DELIVERY_TIMEOUT_S = 300.0


@dataclass
class StageOutcome:
    status: StageStatus
    seconds: float
    detail: str


@dataclass
class DemoReport:
    stack: str
    stages: dict[str, StageOutcome] = field(default_factory=dict)
    source: dict[str, int] | None = None
    etl: dict[str, Any] | None = None
    embeddings: dict[str, int] | None = None
    training: dict[str, Any] | None = None
    stream: dict[str, int] | None = None
    sample_recommendation: dict[str, Any] | None = None
    # Where the demo wrote, for a report on a real account ("what was created and how to destroy it").
    created: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(outcome.status != "failed" for outcome in self.stages.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "ok": self.ok,
            "source": self.source,
            "etl": self.etl,
            "embeddings": self.embeddings,
            "training": self.training,
            "stream": self.stream,
            "sample_recommendation": self.sample_recommendation,
            "created": self.created,
            "timings_s": {name: round(outcome.seconds, 2) for name, outcome in self.stages.items()},
            "stages": {name: {"status": outcome.status, "detail": outcome.detail}
                       for name, outcome in self.stages.items()},
        }


# ---------------------------------------------------------------------------------------------------------------------
# what the stores hold (read back, not reported by the stages)


class Unreachable(RuntimeError):
    """A database of the stack cannot be reached from here (private on AWS)."""


def count_embeddings(handle: StackHandle) -> dict[str, int]:
    """Rows and dimension of the live pgvector tables; `Unreachable` when the database cannot be reached from here."""
    import psycopg2

    try:
        conn = psycopg2.connect(connect_timeout=10, **handle.vector_db_settings())
    except psycopg2.OperationalError as err:
        raise Unreachable(f"the vector database is not reachable from here ({' '.join(str(err).split())})") from None
    try:
        with conn.cursor() as cur:
            # COUNT(*) always returns one row.
            cur.execute("SELECT COUNT(*) FROM item_emb")
            counted = cur.fetchone()
            assert counted is not None
            (items,) = counted
            cur.execute("SELECT COUNT(*) FROM user_emb")
            counted = cur.fetchone()
            assert counted is not None
            (users,) = counted
            cur.execute("SELECT vector_dims(embedding) FROM item_emb LIMIT 1")
            row = cur.fetchone()
    finally:
        conn.close()
    return {"items": int(items), "users": int(users), "dim": int(row[0]) if row else 0}


def loaded_counts(answer: Mapping[str, Any], dim: int) -> dict[str, int]:
    """The rows the loader reports in its tables (for a vector database this machine cannot reach)."""
    tables = answer.get("tables") or {}
    return {"items": int((tables.get("item_emb") or {}).get("rows") or 0),
            "users": int((tables.get("user_emb") or {}).get("rows") or 0), "dim": dim}


def summarize_recommendation(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The parts of one delivered record a reader cares about (pure)."""
    if not record:
        return None
    return {
        "customer_number": record.get("customer_number"),
        "city": record.get("city"),
        "country": record.get("country"),
        "browsed": [item.get("product_code") for item in record.get("browse_history") or []],
        "recommended_items": list(record.get("recommended_items") or []),
        "similar_items": record.get("similar_items"),
    }


def describe_products(handle: StackHandle, items: list[dict[str, Any]]) -> None:
    """Add each recommended product's name and line from the source database, so the sample reads as products; left
    as ids when the source cannot be reached from here."""
    import pymysql

    codes = [str(item.get("id")) for item in items]
    if not codes:
        return
    try:
        settings = handle.source_db_settings()
        conn = pymysql.connect(connect_timeout=10, **settings)
    except (RuntimeError, pymysql.MySQLError):
        return
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT productCode, productName, productLine FROM products WHERE productCode IN ("
                        + ", ".join(["%s"] * len(codes)) + ")", codes)
            found = {code: (name, line) for code, name, line in cur.fetchall()}
    finally:
        conn.close()
    for item in items:
        name, line = found.get(str(item.get("id")), (None, None))
        item["name"], item["line"] = name, line


# ---------------------------------------------------------------------------------------------------------------------
# the run


def load_with_force(invoke_loader: Callable[[dict[str, Any]], dict[str, Any]], event: dict[str, Any], *,
                    say: Callable[[str], None]) -> tuple[dict[str, Any], bool]:
    """The demo's load: the loader with the program's event. The demo re-seeded the source with its own --scale/--seed
    and retrained, so a catalogue that drops live ids is what it asked for: when the loader refuses one
    (`ReplacementRefused`), the demo loads it with `force` and says so. Any other failure is the stage's. Returns the
    loader's answer and whether the load was forced."""
    from harness.workflows.loader import is_refusal

    try:
        return invoke_loader(event), False
    except Exception as err:
        if not is_refusal(err):
            raise
    say("the loader refused to replace the live catalogue (this demo's --scale/--seed made a different one): "
        "loading it with force=true")
    return invoke_loader({**event, "force": True}), True


def run_demo(connect: Callable[[], StackHandle], *, stack: str = "local", scale: int = 1, seed: int = 42,
             events: int = DEFAULT_EVENTS, artifacts_dir: Path | None = None,
             console: Console | None = None) -> DemoReport:
    """Run every stage on the stack `connect` gives (the "up" stage: it deploys the local stack, or returns a deployed
    one's handle). `artifacts_dir` keeps a copy of the trained artifacts (None: only published)."""
    console = console or Console()
    report = DemoReport(stack=stack)
    handles: list[StackHandle] = []

    def run(name: StageName, body: Callable[[], str]) -> None:
        blocked = [need for need in NEEDS[name] if report.stages.get(need, StageOutcome("skipped", 0, "")).status
                   != "done"]
        if blocked:
            report.stages[name] = StageOutcome("skipped", 0.0, f"needs {', '.join(blocked)}")
            console.print(f"[yellow]- {name}: skipped (needs {', '.join(blocked)})[/yellow]")
            return
        console.rule(f"[bold]{name}")
        started = time.monotonic()
        try:
            detail = body()
        except Exception as err:  # the report must still be written, saying where and why it stopped
            report.stages[name] = StageOutcome("failed", time.monotonic() - started, f"{type(err).__name__}: {err}")
            console.print(f"[red]x {name} failed:[/red] {escape(str(err))}")
            return
        report.stages[name] = StageOutcome("done", time.monotonic() - started, detail)
        console.print(f"[green]ok[/green] {name}: {escape(detail)} ({report.stages[name].seconds:.1f} s)")

    def up() -> str:
        handle = connect()
        handles.append(handle)
        report.stack = handle.name
        return f"{len(handle.outputs)} stack outputs"

    def seed_stage() -> str:
        from harness.workflows.seed import seed_stack

        summary = seed_stack(handles[0], scale=scale, seed=seed)
        counts = summary.counts
        report.source = {"customers": counts["customers"], "products": counts["products"],
                         "ratings": counts["ratings"]}
        report.created.append(f"the source database's classicmodels tables ({counts['ratings']:,} ratings)")
        return (f"{counts['customers']:,} customers, {counts['products']:,} products, {counts['ratings']:,} ratings "
                f"into {summary.target}")

    def etl() -> str:
        from harness.workflows.etl import run_etl

        with console.status("ETL: starting the Glue job") as spinner:
            result = run_etl(handles[0], on_stage=lambda stage, message: spinner.update(f"ETL: {stage}: {message}"))
        report.etl = {"rows": int(result["rows"]), "partitions": int(result["partitions"]),
                      "prefix": str(result["prefix"])}
        report.created.append(f"the ETL output {report.etl['prefix']}")
        return f"{report.etl['rows']:,} rows in {report.etl['partitions']:,} partitions under {report.etl['prefix']}"

    def train() -> str:
        from harness.workflows.train import train_and_publish

        with console.status("training") as spinner:
            result = train_and_publish(handles[0], output_dir=artifacts_dir, on_epoch=lambda epoch, *losses:
                                       spinner.update(f"training: epoch {epoch} ("
                                                      + ", ".join(f"{loss:.3f}" for loss in losses) + ")"))
        # The trainer's own held-out evaluation: a model that does not beat predicting the mean rating has learnt
        # nothing, whatever the embedding counts say.
        report.training = {name: result[name] for name in ("rows", "test_rmse", "baseline_rmse")}
        report.created.append(f"the trained artifacts in {result['published_to']}")
        return (f"{result['items']} item and {result['users']} user embeddings of dimension {result['dim']} "
                "published")

    def load() -> str:
        from harness.workflows.loader import invoke_loader, load_event

        handle = handles[0]
        answer, forced = load_with_force(lambda event: invoke_loader(handle, event), load_event(handle),
                                         say=lambda text: console.print(f"[yellow]{escape(text)}[/yellow]"))
        forced_note = " (catalogue replaced with force)" if forced else ""
        try:
            report.embeddings = count_embeddings(handle)
        except Unreachable as unreachable:
            from harness.workflows.train import EMBEDDING_DIM

            report.embeddings = loaded_counts(answer, EMBEDDING_DIM)
            forced_note += f" (as the loader reported: {unreachable})"
        if report.embeddings["items"] == 0 or report.embeddings["users"] == 0:
            raise RuntimeError(f"the loader ran but pgvector holds {report.embeddings}")
        report.created.append("the embeddings tables in the vector database")
        return (f"pgvector holds {report.embeddings['items']:,} item and {report.embeddings['users']:,} user "
                f"embeddings (dim {report.embeddings['dim']}){forced_note}")

    def stream() -> str:
        from harness.workflows import stream as streaming

        handle = handles[0]
        # At least DELIVERY_TIMEOUT_S (a busy machine), more when the delivery stream buffers longer (AWS's defaults).
        timeout_s = max(DELIVERY_TIMEOUT_S, streaming.resolve_target(handle).delivery_timeout_s)
        with console.status(f"streaming {events} sessions") as spinner:
            produced = streaming.produce(handle, events, None, progress=lambda done, total: spinner.update(
                f"sent {done}/{total} sessions"), say=lambda text: console.print(f"[yellow]{escape(text)}[/yellow]"))
            delivered = streaming.wait_for_delivery(handle, produced, timeout_s, progress=lambda done, total:
                                                    spinner.update(f"settled {done}/{total} sessions"))
        report.stream = {"events_sent": delivered.events_sent, "records_delivered": delivered.records_delivered,
                         "records_failed": delivered.records_failed, "objects": delivered.objects}
        bucket = handle.output("recommendations_bucket_id")
        report.created.append(f"{delivered.objects} objects of recommendations in s3://{bucket}/")
        report.sample_recommendation = summarize_recommendation(delivered.sample)
        if delivered.records_delivered == 0:
            raise RuntimeError(f"none of the {delivered.events_sent} sessions was delivered: "
                               f"{delivered.records_failed} are in the error output ({delivered.failures})")
        if delivered.without_recommendations:
            raise RuntimeError(f"{delivered.without_recommendations} delivered records carry no recommended_items")
        if report.sample_recommendation:
            describe_products(handle, report.sample_recommendation["recommended_items"])
        return (f"{delivered.events_sent} events sent, {delivered.records_delivered} delivered with recommendations, "
                f"{delivered.records_failed} failed, {delivered.objects} objects")

    stages: dict[StageName, Callable[[], str]] = {"up": up, "seed": seed_stage, "etl": etl, "train": train,
                                                  "load": load, "stream": stream}
    for name in STAGES:
        run(name, stages[name])
    return report


def write_report(path: Path, report: DemoReport) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def print_report(report: DemoReport, report_path: Path, console: Console, *, local: bool = True) -> None:
    """The report's tables, then how to explore and stop the local stack, or (`local` False: a stack deployed with
    `pulumi up`) what the demo wrote into it and how to destroy it."""
    console.rule("[bold]demo report")
    stages = Table(title="stages", title_justify="left")
    for column in ("stage", "status", "seconds", "detail"):
        stages.add_column(column)
    colours = {"done": "green", "skipped": "yellow", "failed": "red"}
    for name, outcome in report.stages.items():
        stages.add_row(name, f"[{colours[outcome.status]}]{outcome.status}[/]", f"{outcome.seconds:.1f}",
                       escape(outcome.detail))
    console.print(stages)

    numbers = Table(title="what the stores hold", title_justify="left")
    numbers.add_column("")
    numbers.add_column("", justify="right")
    for label, value in (
        ("source customers / products / ratings", report.source and
         f"{report.source['customers']:,} / {report.source['products']:,} / {report.source['ratings']:,}"),
        ("ETL rows / partitions", report.etl and f"{report.etl['rows']:,} / {report.etl['partitions']:,}"),
        ("ETL output", report.etl and report.etl["prefix"]),
        ("embeddings items / users (dim)", report.embeddings and
         f"{report.embeddings['items']:,} / {report.embeddings['users']:,} ({report.embeddings['dim']})"),
        ("model test RMSE (predicting the mean)", report.training and "test_rmse" in report.training and
         f"{report.training['test_rmse']:.3f} ({report.training.get('baseline_rmse', float('nan')):.3f})"),
        ("stream events sent / delivered / failed", report.stream and
         f"{report.stream['events_sent']} / {report.stream['records_delivered']} / {report.stream['records_failed']}"),
        ("stream objects written", report.stream and str(report.stream["objects"])),
    ):
        numbers.add_row(label, escape(str(value)) if value else "[dim]-[/dim]")
    console.print(numbers)

    sample = report.sample_recommendation
    if sample:
        title = (f"recommendations for customer {sample['customer_number']} ({sample['city']}, {sample['country']}), "
                 f"who browsed {', '.join(map(str, sample['browsed'])) or 'nothing'}")
        console.print(escape(title))
        recs = Table()
        recs.add_column("#", justify="right")
        recs.add_column("product")
        recs.add_column("name")
        recs.add_column("line")
        recs.add_column("score", justify="right")
        for rank, item in enumerate(sample["recommended_items"], start=1):
            score = item.get("score")
            recs.add_row(str(rank), escape(str(item.get("id"))), escape(str(item.get("name") or "")),
                         escape(str(item.get("line") or "")),
                         f"{score:.3f}" if isinstance(score, int | float) else escape(str(score)))
        console.print(recs)

    console.print(f"report written to {report_path}")
    if not local:
        console.print(f"The demo wrote into stack {report.stack}:")
        for created in report.created:
            console.print(f"  - {escape(created)}")
        console.print("It goes with the stack, which keeps costing money while it is up (the databases, the Kinesis "
                      f"shard, the Firehose stream). Destroy it:\n  pulumi destroy --stack {report.stack}")
        return
    console.print("The stack is still up. Explore it:\n"
                  '  eval "$(python -m harness env)"   # then aws s3 ls, psql, mariadb classicmodels\n'
                  "  python -m harness output --show-secrets\n"
                  "  python -m harness status\n"
                  "Stop it (and delete its data):\n"
                  "  python -m harness down")
