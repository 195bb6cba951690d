"""The program runs under mocks and exports every output the architecture promises."""

from __future__ import annotations

from pathlib import Path

from tests.unit.program.conftest import ProgramRunner

LAB_OUTPUTS = ("data_lake_bucket_id", "scripts_bucket_id", "vector_db_host", "vector_db_port",
               "vector_db_master_username", "vector_db_master_password", "recommendations_bucket_id")
MORE_OUTPUTS = ("artifacts_bucket_id", "glue_job_name", "glue_catalog_database", "glue_connection_name",
                "kinesis_stream_name", "kinesis_stream_arn", "delivery_stream_name", "inference_function_url",
                "transformation_function_name", "inference_function_name", "embeddings_loader_function_name",
                "redrive_function_name",
                "vector_db_name", "vector_db_secret_arn", "source_db_host", "source_db_port", "source_db_name",
                "source_db_username", "source_db_password", "source_db_secret_arn", "source_seeder_function_name")


def test_the_stack_exports_the_lab_outputs_and_the_architecture_outputs(run: ProgramRunner) -> None:
    result = run("dev")
    assert set(result.outputs) == set(LAB_OUTPUTS + MORE_OUTPUTS)
    assert all(output.value not in (None, "") for output in result.outputs.values()), result.output_values()


def test_password_outputs_are_secret_and_nothing_else_is(run: ProgramRunner) -> None:
    result = run("dev")
    secret = {name for name, output in result.outputs.items() if output.secret}
    assert secret == {"vector_db_master_password", "source_db_password"}


def test_lab_names_keep_the_prefix_and_add_the_stack(run: ProgramRunner) -> None:
    outputs = run("dev").output_values()
    assert outputs["glue_job_name"] == "de-c1w4-dev-etl-job"
    assert outputs["kinesis_stream_name"] == "de-c1w4-dev-kinesis-data-stream"
    assert outputs["delivery_stream_name"] == "de-c1w4-dev-delivery-stream"
    assert outputs["data_lake_bucket_id"] == "de-c1w4-dev-123456789012-us-east-1-datalake"
    assert outputs["inference_function_url"].startswith("https://")


def test_local_stack_config_file_runs(run: ProgramRunner, artifacts_dir: Path) -> None:
    from harness.emulator.program import read_stack_config

    settings = read_stack_config("local")
    settings["recsys:artifactsDir"] = str(artifacts_dir)
    result = run("local", settings)
    assert result.of_type("aws:lambda/invocation:Invocation")


def test_every_config_key_has_a_commented_example_in_the_dev_stack_file_and_a_row_in_the_docs() -> None:
    from components.config import KNOWN_KEYS
    from harness.emulator.program import PROJECT_ROOT

    dev_file = (PROJECT_ROOT / "Pulumi.dev.yaml").read_text()
    docs = (PROJECT_ROOT / "docs" / "program.md").read_text()
    for key in KNOWN_KEYS:
        assert f"# recsys:{key}:" in dev_file, key
        assert f"`recsys:{key}`" in docs or f"`{key}`" in docs, key


def test_a_missing_stack_file_names_the_stacks_that_exist(tmp_path: Path) -> None:
    import pytest

    from harness.emulator.program import StackConfigFileError, read_stack_config

    with pytest.raises(StackConfigFileError, match=r"no stack config file Pulumi\.prod\.yaml for stack 'prod'.*"
                                                   r"Stacks with a config file: .*dev.*local"):
        read_stack_config("prod")


def test_stack_files_give_strings_like_pulumi_and_refuse_encrypted_values(tmp_path: Path) -> None:
    import pytest

    from harness.emulator.program import StackConfigFileError, read_stack_config

    plain = tmp_path / "Pulumi.plain.yaml"
    plain.write_text("config:\n  recsys:ephemeral: true\n  recsys:topK: 7\n  recsys:subnetIds: [subnet-a, subnet-b]\n")
    assert read_stack_config("plain", plain) == {"recsys:ephemeral": "true", "recsys:topK": "7",
                                                 "recsys:subnetIds": '["subnet-a", "subnet-b"]'}
    encrypted = tmp_path / "Pulumi.enc.yaml"
    encrypted.write_text("config:\n  recsys:sourceDbPassword:\n    secure: AAABAKi2\n")
    with pytest.raises(StackConfigFileError, match=r"recsys:sourceDbPassword is encrypted \(secure:\)"):
        read_stack_config("enc", encrypted)


def test_runs_in_one_process_do_not_see_each_other(run: ProgramRunner) -> None:
    first = run("dev-a", {"prefix": "one"}, fresh=True)
    second = run("dev-b", {"prefix": "two"}, fresh=True)
    assert all(r.urn.startswith("urn:pulumi:dev-a::recsys::") for r in first.resources)
    assert all(r.urn.startswith("urn:pulumi:dev-b::recsys::") for r in second.resources)
    assert len(first.resources) == len(second.resources)


def test_a_run_that_fails_half_way_does_not_break_the_next_run(run: ProgramRunner) -> None:
    import pytest

    from harness.emulator.program import RecordingMocks, run_program

    class DatabaseCreationFails(RecordingMocks):
        def new_resource(self, args):  # type: ignore[no-untyped-def]
            if args.typ == "aws:rds/instance:Instance":
                raise RuntimeError("the database could not be created")
            return super().new_resource(args)

    with pytest.raises(RuntimeError, match="could not be created"):
        run_program("dev", {}, DatabaseCreationFails())
    # Without clearing Pulumi's process-wide pending outputs this run fails with "Event loop is closed".
    assert run("dev", {"prefix": "after-failure"}, fresh=True).outputs["glue_job_name"].value == \
        "after-failure-dev-etl-job"
