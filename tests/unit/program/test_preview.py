"""`python -m harness preview`: the resource tree and outputs without the Pulumi CLI; secrets hidden unless asked."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from harness.cli import preview


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    preview.register(app)

    @app.callback()
    def main() -> None:
        """Keeps `preview` a subcommand, as under `python -m harness`."""

    return app


@pytest.fixture(scope="module")
def json_preview(cli: typer.Typer) -> dict:
    result = CliRunner().invoke(cli, ["preview", "--stack", "dev", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_preview_lists_every_resource_with_urn_type_name_parent_and_inputs(json_preview: dict) -> None:
    assert set(json_preview) == {"resources", "outputs"}
    assert len(json_preview["resources"]) > 50
    for resource in json_preview["resources"]:
        assert set(resource) == {"urn", "type", "name", "parent", "inputs"}, resource["urn"]
    types = {resource["type"] for resource in json_preview["resources"]}
    assert {"recsys:etl:EtlPipeline", "recsys:database:VectorDatabase", "recsys:streaming:StreamingInference",
            "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream"} <= types


def test_json_preview_hides_secret_outputs_and_secret_inputs(json_preview: dict) -> None:
    assert json_preview["outputs"]["vector_db_master_password"] == "[secret]"
    assert json_preview["outputs"]["source_db_password"] == "[secret]"
    assert json_preview["outputs"]["vector_db_port"] == 5432
    for resource in json_preview["resources"]:
        if resource["type"] == "aws:secretsmanager/secretVersion:SecretVersion":
            assert resource["inputs"]["secretString"] == "[secret]", resource["urn"]
        if resource["type"] == "aws:rds/instance:Instance":
            assert resource["inputs"]["password"] == "[secret]", resource["urn"]


def test_show_secrets_reveals_them(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["preview", "--stack", "dev", "--json", "--show-secrets"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    password = document["outputs"]["vector_db_master_password"]
    assert password != "[secret]" and len(password) == 32
    (vector_secret,) = [r for r in document["resources"] if r["name"] == "vector-db-secret-value"]
    assert json.loads(vector_secret["inputs"]["secretString"])["password"] == password


def test_the_tree_shows_components_their_children_and_the_outputs(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["preview"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "recsys:streaming:StreamingInference streaming" in result.stdout
    assert "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream streaming-delivery-stream" in result.stdout
    assert "vector_db_master_password" in result.stdout and "[secret]" in result.stdout
    assert "resources in" in result.stdout


def test_an_unknown_stack_is_one_clear_error_without_a_traceback(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["preview", "--stack", "nope"])
    assert result.exit_code == 1
    assert "no stack config file Pulumi.nope.yaml for stack 'nope'" in result.output
    assert "Traceback" not in result.output


def test_a_bad_config_value_is_one_clear_error_without_a_traceback(cli: typer.Typer, tmp_path, monkeypatch) -> None:
    from harness.emulator import program

    bad = tmp_path / "Pulumi.broken.yaml"
    bad.write_text("config:\n  recsys:topK: lots\n")
    monkeypatch.setattr(program, "PROJECT_ROOT", tmp_path)
    result = CliRunner().invoke(cli, ["preview", "--stack", "broken"])
    assert result.exit_code == 1
    assert 'recsys:topK is "lots", but it must be a whole number from 1 to 100.' in result.output
    assert "Traceback" not in result.output
