"""The demo's report: the keys the issue promises, read from what the stages returned, and a readable sample."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.workflows import demo
from harness.workflows.handle import AwsEndpoints, StackHandle
from harness.workflows.loader import LoaderError


def finished_report() -> demo.DemoReport:
    report = demo.DemoReport(stack="local")
    for name in demo.STAGES:
        report.stages[name] = demo.StageOutcome("done", 1.5, "fine")
    report.source = {"customers": 122, "products": 110, "ratings": 2497}
    report.etl = {"rows": 2497, "partitions": 98, "prefix": "s3://lake/ratings-ml-training/"}
    report.embeddings = {"items": 110, "users": 98, "dim": 32}
    report.training = {"rows": 2497, "test_rmse": 0.71, "baseline_rmse": 0.95}
    report.stream = {"events_sent": 50, "records_delivered": 50, "records_failed": 0, "objects": 2}
    report.sample_recommendation = demo.summarize_recommendation({
        "session_id": "x", "customer_number": 478, "city": "Pasadena", "country": "USA", "credit_limit": 59811,
        "browse_history": [{"product_code": "S12_1108", "quantity": "7", "in_shopping_cart": True}],
        "recommended_items": [{"id": "S18_3232", "score": 0.79, "name": "1992 Ferrari 360 Spider red",
                               "line": "Classic Cars"}],
        "similar_items": {"product_code": "S12_1108", "similar_items": [{"id": "S10_1949", "distance": 0.2}]},
    })
    return report


def test_the_written_report_has_every_key_the_issue_lists(tmp_path: Path) -> None:
    path = demo.write_report(tmp_path / "reports" / "demo-report.json", finished_report())
    written = json.loads(path.read_text())
    assert set(written["source"]) >= {"customers", "products", "ratings"}
    assert set(written["etl"]) >= {"rows", "partitions", "prefix"}
    assert set(written["embeddings"]) >= {"items", "users", "dim"}
    assert set(written["stream"]) >= {"events_sent", "records_delivered", "records_failed", "objects"}
    assert written["sample_recommendation"]["customer_number"] == 478
    assert written["timings_s"] == {name: 1.5 for name in demo.STAGES}
    assert written["ok"] is True


def test_a_failed_stage_makes_the_report_not_ok_and_says_why(tmp_path: Path) -> None:
    report = finished_report()
    report.stages["etl"] = demo.StageOutcome("failed", 0.3, "EtlError: the source is unreachable")
    written = json.loads(demo.write_report(tmp_path / "demo-report.json", report).read_text())
    assert written["ok"] is False
    assert written["stages"]["etl"] == {"status": "failed", "detail": "EtlError: the source is unreachable"}


def test_the_printed_report_shows_the_recommendations_and_how_to_explore_and_stop(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    demo.print_report(finished_report(), tmp_path / "demo-report.json", console)
    text = console.export_text()
    assert "recommendations for customer 478 (Pasadena, USA)" in text
    assert "S18_3232" in text and "0.790" in text and "1992 Ferrari 360 Spider red" in text
    assert "0.710 (0.950)" in text
    assert 'eval "$(python -m harness env)"' in text
    assert "python -m harness output --show-secrets" in text
    assert text.rstrip().endswith("python -m harness down")


def test_on_a_deployed_stack_the_printed_report_says_what_was_created_and_how_to_destroy_it(tmp_path: Path) -> None:
    report = finished_report()
    report.stack = "dev-alice"
    report.created = ["the ETL output s3://lake/ratings-ml-training/", "2 objects of recommendations in s3://recs/"]
    console = Console(record=True, width=160)
    demo.print_report(report, tmp_path / "demo-report.json", console, local=False)
    text = console.export_text()
    assert ("The demo wrote into stack dev-alice:\n  - the ETL output s3://lake/ratings-ml-training/\n  - 2 objects"
            in text)
    assert text.rstrip().endswith("pulumi destroy --stack dev-alice")
    assert "harness down" not in text


def test_a_stage_that_fails_skips_the_stages_that_need_it_and_the_report_says_why() -> None:
    handle = StackHandle(name="dev", outputs={"a": 1, "b": 2}, aws=AwsEndpoints())

    def seed_stack(handle: StackHandle, *, scale: int, seed: int) -> None:
        raise RuntimeError("the seeder function timed out")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("harness.workflows.seed.seed_stack", seed_stack, raising=False)
        report = demo.run_demo(lambda: handle, stack="x", console=Console(file=io.StringIO()))

    assert report.stack == "dev" and not report.ok
    assert {name: (o.status, o.detail) for name, o in report.stages.items()} == {
        "up": ("done", "2 stack outputs"), "seed": ("failed", "RuntimeError: the seeder function timed out"),
        "etl": ("skipped", "needs seed"), "train": ("skipped", "needs etl"), "load": ("skipped", "needs train"),
        "stream": ("skipped", "needs load")}


# ---- the load stage after a re-seed --------------------------------------------------------------------------------

EVENT = {"bucket": "art", "item_key": "embeddings/item_embeddings.csv", "user_key": "embeddings/user_embeddings.csv"}


def test_a_catalogue_the_demo_made_itself_is_loaded_with_force_after_the_loader_refuses_it() -> None:
    events: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        if len(events) == 1:  # as functions.invoke reports the loader's refusal
            raise LoaderError("the embeddings loader failed: ReplacementRefused: item_emb: refusing to replace the "
                              "live table (111 rows) with s3://.../item_embeddings.csv (40 rows)")
        return {"status": "loaded"}

    answer, forced = demo.load_with_force(invoke, EVENT, say=lambda text: None)

    assert (answer, forced) == ({"status": "loaded"}, True)
    assert events == [EVENT, {**EVENT, "force": True}]


def test_any_other_load_failure_is_the_stage_s_and_nothing_is_forced() -> None:
    events: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        raise LoaderError("the embeddings loader failed: OperationalError: connection refused")

    with pytest.raises(LoaderError, match="connection refused"):
        demo.load_with_force(invoke, EVENT, say=lambda text: None)
    assert events == [EVENT]
    assert demo.load_with_force(lambda event: {"status": "unchanged"}, EVENT, say=lambda text: None) == (
        {"status": "unchanged"}, False)


def test_without_a_reachable_vector_database_the_counts_are_the_loaders() -> None:
    answer = {"status": "loaded", "tables": {"item_emb": {"status": "loaded", "rows": 110},
                                             "user_emb": {"status": "unchanged", "rows": 98}}}
    assert demo.loaded_counts(answer, 32) == {"items": 110, "users": 98, "dim": 32}
