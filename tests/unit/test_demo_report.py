"""The demo's report: the keys the issue promises, read from what the stages returned, and a readable sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.workflows import demo


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
    path = demo.write_report(tmp_path, finished_report())
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
    written = json.loads(demo.write_report(tmp_path, report).read_text())
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


def test_a_missing_stage_module_is_a_skip_not_a_failure() -> None:
    try:
        demo.stage_function("harness.not_landed_yet", "run")
    except demo.StageSkipped as skipped:
        assert str(skipped) == "harness.not_landed_yet is not available yet"
    else:
        raise AssertionError("expected StageSkipped")


def test_stage_results_are_read_from_mappings_and_dataclasses() -> None:
    assert demo.field_of({"rows": 3}, "rows") == 3
    assert demo.field_of(demo.StageOutcome("done", 1.0, "x"), "detail") == "x"


# ---- the load stage after a re-seed --------------------------------------------------------------------------------

def test_a_catalogue_the_demo_made_itself_is_loaded_with_force_after_the_loader_refuses_it() -> None:
    deploys: list[str] = []
    events: list[dict[str, Any]] = []

    def deploy() -> None:
        deploys.append("up")
        if len(deploys) == 1:  # as the engine reports a failed post-deploy Invocation of the loader
            raise RuntimeError("the invocation of embeddings-loader failed: ReplacementRefused: item_emb: refusing to "
                               "replace the live table (111 rows) with s3://.../item_embeddings.csv (40 rows)")

    forced = demo.deploy_and_load(deploy, events.append, say=lambda text: None)

    assert forced and events == [{"force": True}] and deploys == ["up", "up"]


def test_any_other_load_failure_is_the_stage_s_and_nothing_is_forced() -> None:
    events: list[dict[str, Any]] = []

    def deploy() -> None:
        raise RuntimeError("the invocation of embeddings-loader failed: OperationalError: connection refused")

    with pytest.raises(RuntimeError, match="connection refused"):
        demo.deploy_and_load(deploy, events.append, say=lambda text: None)
    assert events == []
    assert demo.deploy_and_load(lambda: None, events.append, say=lambda text: None) is False and events == []
