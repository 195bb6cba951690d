"""`python -m harness demo`: the whole platform end to end on the local stack, then a short report.

Stages, in order: up (services + deploy), seed (the source database), etl (the Glue job on local Spark), train (the
reference trainer publishes embeddings to the artifacts bucket), load (a second deploy: the loader invocation's triggers
changed, so it loads the embeddings into pgvector), stream (a burst of sessions through Kinesis -> Firehose ->
transformation Lambda -> S3, waiting for delivery). A stage whose module has not landed is skipped and says so; a
stage that fails stops the stages that depend on it. The numbers in the report are read back from the stores themselves
(row counts in PostgreSQL, a delivered object in S3), not copied from what a stage said it did.

The stack stays up afterwards; a second demo attaches to it and runs the stages again (every stage is re-runnable).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.emulator import state as st

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
            "timings_s": {name: round(outcome.seconds, 2) for name, outcome in self.stages.items()},
            "stages": {name: {"status": outcome.status, "detail": outcome.detail}
                       for name, outcome in self.stages.items()},
        }


class StageSkipped(Exception):
    """The stage's module has not landed yet (or lacks the function the demo calls)."""


def stage_function(module_name: str, function_name: str) -> Callable[..., Any]:
    if importlib.util.find_spec(module_name) is None:
        raise StageSkipped(f"{module_name} is not available yet")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if function is None:
        raise StageSkipped(f"{module_name}.{function_name} is not available yet")
    return function


def field_of(result: Any, name: str) -> Any:
    """A stage result's field, whether the stage returned a mapping or a dataclass."""
    if isinstance(result, Mapping):
        return result.get(name)
    return getattr(result, name, None)


def output_value(state: st.State, name: str) -> Any:
    entry = (state.get("outputs") or {}).get(name)
    return entry.get("value") if isinstance(entry, dict) else None


# ---------------------------------------------------------------------------------------------------------------------
# what the stores hold (read back, not reported by the stages)


def count_embeddings(state: st.State) -> dict[str, int]:
    import psycopg2

    host, port = output_value(state, "vector_db_host"), output_value(state, "vector_db_port")
    user, password = output_value(state, "vector_db_master_username"), output_value(state, "vector_db_master_password")
    if not (host and port and user and password):
        raise RuntimeError("the stack outputs lack the vector database's address or credentials")
    conn = psycopg2.connect(host=host, port=port, user=user, password=password,
                            dbname=output_value(state, "vector_db_name") or "postgres", connect_timeout=10)
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


def describe_products(state: st.State, items: list[dict[str, Any]]) -> None:
    """Add each recommended product's name and line from the source database, so the sample reads as products."""
    from harness.workflows.seed import SeedError, resolve_target

    codes = [str(item.get("id")) for item in items]
    if not codes:
        return
    try:
        target = resolve_target(state, allow_external=True)
    except SeedError:
        return
    import pymysql

    conn = pymysql.connect(host=target.host, port=target.port, user=target.user, password=target.password,
                           database=target.database, connect_timeout=10)
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


def deploy_and_load(deploy: Callable[[], Any], invoke_loader: Callable[[dict[str, Any]], Any], *,
                    say: Callable[[str], None]) -> bool:
    """The demo's load stage: a second deploy, whose post-deploy Invocation loads the new embeddings. The demo re-seeded
    the source with its own --scale/--seed and retrained, so a catalogue that drops live ids is what it asked for: when
    the loader refuses one (`ReplacementRefused`), the demo loads it with `force` and finishes the deploy. Any other
    failure is the stage's. Returns whether the load was forced."""
    from harness.workflows.loader import is_refusal

    try:
        deploy()
        return False
    except Exception as err:
        if not is_refusal(err):
            raise
    say("the loader refused to replace the live catalogue (this demo's --scale/--seed made a different one): "
        "loading it with force=true")
    invoke_loader({"force": True})
    deploy()  # the Invocation runs again, finds the files loaded and completes the deploy
    return True


def run_demo(state_dir: Path, *, stack: str = "local", scale: int = 1, seed: int = 42, events: int = DEFAULT_EVENTS,
             console: Console | None = None) -> DemoReport:
    console = console or Console()
    report = DemoReport(stack=stack)

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
        except StageSkipped as skipped:
            report.stages[name] = StageOutcome("skipped", time.monotonic() - started, str(skipped))
            console.print(f"[yellow]- {name}: skipped ({escape(str(skipped))})[/yellow]")
            return
        except Exception as err:  # the report must still be written, saying where and why it stopped
            report.stages[name] = StageOutcome("failed", time.monotonic() - started, f"{type(err).__name__}: {err}")
            console.print(f"[red]x {name} failed:[/red] {escape(str(err))}")
            return
        report.stages[name] = StageOutcome("done", time.monotonic() - started, detail)
        console.print(f"[green]ok[/green] {name}: {escape(detail)} ({report.stages[name].seconds:.1f} s)")

    def up() -> str:
        from harness.cli.stack import bring_up, engine_available

        with st.locked(state_dir, "up.lock"):
            outputs = bring_up(state_dir, stack)
        if not engine_available():
            return "services only: harness/emulator/engine.py is not available yet, nothing deployed"
        return f"{len(outputs)} stack outputs"

    def seed_stage() -> str:
        from harness.workflows.seed import seed_source

        summary = seed_source(state_dir, scale=scale, seed=seed)
        counts = summary.counts
        report.source = {"customers": counts["customers"], "products": counts["products"],
                         "ratings": counts["ratings"]}
        return (f"{counts['customers']:,} customers, {counts['products']:,} products, {counts['ratings']:,} ratings "
                f"into {summary.target}")

    def etl() -> str:
        run_etl = stage_function("harness.workflows.etl", "run_etl")
        with console.status("ETL: starting the Glue job on local Spark") as spinner:
            result = run_etl(state_dir, on_stage=lambda stage, message: spinner.update(f"ETL: {stage}: {message}"))
        report.etl = {"rows": int(field_of(result, "rows")), "partitions": int(field_of(result, "partitions")),
                      "prefix": str(field_of(result, "prefix"))}
        return f"{report.etl['rows']:,} rows in {report.etl['partitions']:,} partitions under {report.etl['prefix']}"

    def train() -> str:
        train_and_publish = stage_function("harness.workflows.train", "train_and_publish")
        with console.status("training") as spinner:
            result = train_and_publish(state_dir, on_epoch=lambda epoch, *losses: spinner.update(
                f"training: epoch {epoch} (" + ", ".join(f"{loss:.3f}" for loss in losses) + ")"))
        # The trainer's own held-out evaluation, when it reports one: a model that does not beat predicting the mean
        # rating has learnt nothing, whatever the embedding counts say.
        report.training = {name: field_of(result, name) for name in ("rows", "test_rmse", "baseline_rmse")
                           if field_of(result, name) is not None} or None
        return (f"{field_of(result, 'items')} item and {field_of(result, 'users')} user embeddings of dimension "
                f"{field_of(result, 'dim')} published")

    def load() -> str:
        from harness.cli.stack import bring_up
        from harness.workflows.loader import invoke_loader

        with st.locked(state_dir, "up.lock"):
            forced = deploy_and_load(lambda: bring_up(state_dir, stack), lambda event: invoke_loader(state_dir, event),
                                     say=lambda text: console.print(f"[yellow]{escape(text)}[/yellow]"))
        forced_note = " (catalogue replaced with force)" if forced else ""
        report.embeddings = count_embeddings(st.load_state(state_dir))
        if report.embeddings["items"] == 0 or report.embeddings["users"] == 0:
            raise RuntimeError(f"the loader ran but pgvector holds {report.embeddings}")
        return (f"pgvector holds {report.embeddings['items']:,} item and {report.embeddings['users']:,} user "
                f"embeddings (dim {report.embeddings['dim']}){forced_note}")

    def stream() -> str:
        produce = stage_function("harness.workflows.stream", "produce")
        wait_for_delivery = stage_function("harness.workflows.stream", "wait_for_delivery")
        with console.status(f"streaming {events} sessions") as spinner:
            sent = produce(state_dir, events, None,
                           progress=lambda done, total: spinner.update(f"sent {done}/{total} sessions"))
            delivered = wait_for_delivery(state_dir, sent, DELIVERY_TIMEOUT_S, progress=lambda done, total:
                                          spinner.update(f"delivered {done}/{total} records"))
        report.stream = {"events_sent": int(sent),
                         "records_delivered": int(field_of(delivered, "records_delivered")),
                         "records_failed": int(field_of(delivered, "records_failed")),
                         "objects": int(field_of(delivered, "objects"))}
        latest = stage_function("harness.workflows.stream", "latest_record")
        report.sample_recommendation = summarize_recommendation(latest(state_dir))
        if report.sample_recommendation:
            describe_products(st.load_state(state_dir), report.sample_recommendation["recommended_items"])
        return (f"{sent} events sent, {report.stream['records_delivered']} delivered, "
                f"{report.stream['records_failed']} failed, {report.stream['objects']} objects")

    stages: dict[StageName, Callable[[], str]] = {"up": up, "seed": seed_stage, "etl": etl, "train": train,
                                                  "load": load, "stream": stream}
    for name in STAGES:
        run(name, stages[name])
    return report


def write_report(state_dir: Path, report: DemoReport) -> Path:
    path = state_dir / REPORT_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def print_report(report: DemoReport, report_path: Path, console: Console) -> None:
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
    console.print("The stack is still up. Explore it:\n"
                  '  eval "$(python -m harness env)"   # then aws s3 ls, psql, mariadb classicmodels\n'
                  "  python -m harness output --show-secrets\n"
                  "  python -m harness status\n"
                  "Stop it (and delete its data):\n"
                  "  python -m harness down")
