"""`harness seed`: arguments checked before any work (exit 2, one line), the workflow called with them, `--json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.cli import app as cli
from harness.workflows import seed as seeding

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mysqlsampledatabase-excerpt.sql"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """`seed_stack` recorded instead of run; the environment of a user pointed at a real account."""
    recorded: list[dict[str, Any]] = []

    def seed_stack(handle: Any, **kwargs: Any) -> seeding.SeedSummary:
        recorded.append({"stack": handle.name, **kwargs})
        if kwargs.get("seed") == 13:
            raise seeding.SeedError("the seeder function f failed, the source database is unchanged: boom")
        return seeding.SeedSummary(target="classicmodels through f", scale=kwargs["scale"], seed=kwargs["seed"],
                                   counts={"customers": 7, "ratings": 22}, seconds=1.5,
                                   classicmodels_dump="s3://b/seed/mysqlsampledatabase.sql"
                                   if kwargs["classicmodels_dump"] else None)

    monkeypatch.setattr(seeding, "seed_stack", seed_stack)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECSYS_LOCAL_DIR", str(tmp_path / "state"))
    return recorded


def run(tmp_path: Path, *args: str) -> Any:
    outputs = tmp_path / "dev.json"
    outputs.write_text(json.dumps({"source_seeder_function_name": "f", "artifacts_bucket_id": "b"}))
    cli._register_commands()
    return CliRunner().invoke(cli.app, ["seed", "--outputs", str(outputs), *args], env={"COLUMNS": "80"})


@pytest.mark.parametrize(("args", "message"), [
    (["--scale", "0"], "scale must be a whole number from 1 to 1000 (got 0); 1 is the size of the classicmodels "
                       "sample, N multiplies customers, products and orders"),
    (["--classicmodels-dump", "/nowhere/mysqlsampledatabase.sql"],
     "/nowhere/mysqlsampledatabase.sql: no such file; download mysqlsampledatabase.sql from mysqltutorial.org"),
    (["--classicmodels-dump", str(FIXTURE), "--scale", "3"],
     "--scale 3 does not apply to --classicmodels-dump: the dump has the sample's own size"),
    (["--classicmodels-dump", str(Path(__file__))],
     f"{Path(__file__)} holds no INSERT into any classicmodels table: expected mysqlsampledatabase.sql from "
     "mysqltutorial.org (the classicmodels sample's CREATE TABLE and INSERT statements)"),
])
def test_bad_arguments_exit_2_with_one_line_before_any_work(calls: list[dict[str, Any]], tmp_path: Path,
                                                            args: list[str], message: str) -> None:
    result = run(tmp_path, *args, "--yes")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: {message}"]
    assert calls == []


def test_the_dump_and_the_seed_reach_the_workflow_and_json_is_the_summary(calls: list[dict[str, Any]],
                                                                          tmp_path: Path) -> None:
    result = run(tmp_path, "--classicmodels-dump", str(FIXTURE), "--seed", "5", "--json", "--yes")

    assert result.exit_code == 0, result.output
    assert calls == [{"stack": "dev", "scale": 1, "seed": 5, "classicmodels_dump": FIXTURE,
                      "on_progress": calls[0]["on_progress"], "overwrite_external": False}]
    assert json.loads(result.stdout) == {
        "stack": "dev", "target": "classicmodels through f", "scale": 1, "seed": 5,
        "counts": {"customers": 7, "ratings": 22}, "seconds": 1.5,
        "classicmodels_dump": "s3://b/seed/mysqlsampledatabase.sql"}


def test_the_summary_names_where_the_rows_went(calls: list[dict[str, Any]], tmp_path: Path) -> None:
    result = run(tmp_path, "--scale", "2", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "seeded classicmodels through f (scale 2, seed 42) in 1.5 s"
    assert "ratings" in result.stdout and "22" in result.stdout


def test_a_failed_seed_exits_1_with_the_workflows_line(calls: list[dict[str, Any]], tmp_path: Path) -> None:
    result = run(tmp_path, "--seed", "13", "--yes")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: the seeder function f failed, the source database is unchanged: boom"]
