"""How the harness turns a deployed Glue job into a local run: arguments, credentials, errors, and the run record."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.workflows import etl as local

CONNECTION = {"Connection": {"Name": "src", "ConnectionProperties": {
    "JDBC_CONNECTION_URL": "jdbc:mysql://127.0.0.1:3306/classicmodels", "SECRET_ID": "de-c1w4-source-db"}}}


def test_the_run_gets_the_jobs_arguments_plus_local_jdbc_arguments_and_no_password() -> None:
    source = local.SourceConnection("jdbc:mysql://127.0.0.1:3306/classicmodels", None, "admin", "pa55word")
    run_arguments = {"--target_path": "s3://lake/ratings-ml-training/", "--catalog_database": "cat",
                     "--connection_name": "src", "--enable-metrics": "true"}

    argv = local.local_arguments(run_arguments, "etl-job", "jr_1", source, Path("/state/etl/staging"))

    assert argv[:4] == ["--JOB_NAME", "etl-job", "--JOB_RUN_ID", "jr_1"]
    pairs = dict(zip(argv[::2], argv[1::2], strict=True))
    assert pairs["--target_path"] == "s3://lake/ratings-ml-training/"
    assert pairs["--jdbc_url"] == "jdbc:mysql://127.0.0.1:3306/classicmodels"
    assert pairs["--jdbc_user"] == "admin"
    assert pairs["--local_output"] == "/state/etl/staging"
    assert "pa55word" not in " ".join(argv)
    assert "--jdbc_password" not in argv


def test_a_plaintext_connection_password_travels_in_the_environment_not_the_command_line() -> None:
    source = local.SourceConnection("jdbc:mysql://h/db", None, "admin", "pa55word")

    env = local.child_environment(local.AwsEndpoint("http://127.0.0.1:5000"), source)

    assert env["RATINGS_ETL_JDBC_PASSWORD"] == "pa55word"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert "mariadb-java-client.jar" in env["PYSPARK_SUBMIT_ARGS"]
    assert env["PYSPARK_SUBMIT_ARGS"].endswith("pyspark-shell")


def test_a_connection_with_a_secret_is_read_through_the_secret() -> None:
    source = local.source_connection(CONNECTION)

    assert (source.jdbc_url, source.secret_id, source.password) == (
        "jdbc:mysql://127.0.0.1:3306/classicmodels", "de-c1w4-source-db", None)
    argv = local.local_arguments({}, "etl-job", "jr_1", source, Path("/s"))
    assert argv[argv.index("--jdbc_secret_id") + 1] == "de-c1w4-source-db"


def test_a_connection_without_credentials_is_refused_before_spark_starts() -> None:
    bare = {"Connection": {"Name": "src", "ConnectionProperties": {"JDBC_CONNECTION_URL": "jdbc:mysql://h/db"}}}

    with pytest.raises(local.EtlError, match="Glue connection 'src' has neither SECRET_ID nor USERNAME/PASSWORD"):
        local.source_connection(bare)


def test_the_error_is_the_scripts_own_reason_when_it_gave_one() -> None:
    stdout = ["2026-01-01 INFO ratings_etl stage read: reading customers, products, ratings",
              "2026-01-01 ERROR ratings_etl ratings ETL stopped: cannot read source table 'customers': Access denied"]

    assert local.error_message(stdout, "Traceback ...\nValueError: other", 1) == (
        "cannot read source table 'customers': Access denied")


def test_otherwise_the_error_is_the_last_exception_line_of_the_driver_log() -> None:
    log = "Traceback (most recent call last):\n  File x\npy4j.protocol.Py4JJavaError: An error occurred\n  at x\n"

    assert local.error_message([], log, 1) == "py4j.protocol.Py4JJavaError: An error occurred"
    assert local.error_message([], "nothing useful", 137) == "the job script exited with status 137"


def test_runs_are_recorded_and_the_latest_is_found_without_an_id(tmp_path: Path) -> None:
    for run_id, state in (("jr_a", "FAILED"), ("jr_b", "SUCCEEDED")):
        local.save_record(tmp_path, local.JobRunRecord(Id=run_id, JobName="job", JobRunState=state,
                                                       StartedOn="2026-01-01T00:00:00+00:00", Arguments={}))

    assert local.load_record(tmp_path).Id == "jr_b"
    assert local.load_record(tmp_path, "jr_a").JobRunState == "FAILED"
    assert [r.Id for r in local.list_records(tmp_path)] == ["jr_a", "jr_b"]
    with pytest.raises(local.EtlError, match="no ETL run 'jr_zzz' recorded"):
        local.load_record(tmp_path, "jr_zzz")


def test_without_a_deployed_stack_the_error_says_to_run_up_first(tmp_path: Path) -> None:
    with pytest.raises(local.EtlError, match=r"run `python -m harness up`"):
        local.stack_endpoint(tmp_path)


def test_staging_left_by_killed_runs_is_removed_on_s3_but_the_own_run_and_the_table_stay(
    etl: ModuleType, aws: dict[str, Any]
) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    for key in ("_staging/ratings-ml-training/jr_old/customerNumber=1/p.parquet",
                "_staging/ratings-ml-training/jr_now/customerNumber=1/p.parquet",
                "ratings-ml-training/customerNumber=1/p.parquet"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    target = etl.parse_s3_uri(f"s3://{bucket}/ratings-ml-training/")
    staged = etl.StagedRun(s3, s3_location=etl.staging_location(target, "jr_now"))

    removed = staged.remove_leftovers()

    assert removed == [f"s3://{bucket}/_staging/ratings-ml-training/jr_old/"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["_staging/ratings-ml-training/jr_now/customerNumber=1/p.parquet",
                    "ratings-ml-training/customerNumber=1/p.parquet"]


def test_staging_left_by_killed_runs_is_removed_locally(etl: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "jr_old" / "customerNumber=1").mkdir(parents=True)
    (tmp_path / "jr_now").mkdir()

    etl.StagedRun(None, local_dir=tmp_path / "jr_now").remove_leftovers()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["jr_now"]


def test_a_run_is_found_by_a_unique_prefix_of_its_id_and_an_ambiguous_prefix_is_refused(tmp_path: Path) -> None:
    for run_id in ("jr_abc1", "jr_abc2", "jr_def"):
        local.save_record(tmp_path, local.JobRunRecord(Id=run_id, JobName="job", JobRunState="SUCCEEDED",
                                                       StartedOn="2026-01-01T00:00:00+00:00", Arguments={}))

    assert local.load_record(tmp_path, "jr_d").Id == "jr_def"
    with pytest.raises(local.EtlError, match="'jr_abc' matches 2 runs; give more of the id"):
        local.load_record(tmp_path, "jr_abc")


def test_a_run_left_running_by_a_process_that_is_gone_reads_as_failed(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])  # reaped by wait(): its pid no longer names a process
    gone.wait()
    local.save_record(tmp_path, local.JobRunRecord(Id="jr_killed", JobName="job", JobRunState="RUNNING",
                                                   StartedOn="2026-01-01T00:00:00+00:00", Arguments={},
                                                   HarnessPid=gone.pid))
    local.save_record(tmp_path, local.JobRunRecord(Id="jr_live", JobName="job", JobRunState="RUNNING",
                                                   StartedOn="2026-01-01T00:00:00+00:00", Arguments={},
                                                   HarnessPid=os.getpid()))

    killed = local.load_record(tmp_path, "jr_killed")
    assert killed.JobRunState == "FAILED"
    assert f"(pid {gone.pid}) that ran this job exited without recording an end state" in (killed.ErrorMessage or "")
    assert local.load_record(tmp_path, "jr_live").JobRunState == "RUNNING"


def test_on_glue_a_run_staged_on_s3_is_copied_into_the_table_prefix_and_its_staging_removed(
    etl: ModuleType, aws: dict[str, Any]
) -> None:
    s3, bucket = aws["s3"], aws["bucket"]
    target = etl.parse_s3_uri(f"s3://{bucket}/ratings-ml-training/")
    staged = etl.StagedRun(s3, s3_location=etl.staging_location(target, "jr_new"))
    for key, body in (("customerNumber=103/part-new.snappy.parquet", b"new-103"), ("_SUCCESS", b"")):
        s3.put_object(Bucket=bucket, Key=f"{staged.s3_location.prefix}{key}", Body=body)
    for key in ("customerNumber=103/part-old.snappy.parquet", "customerNumber=999/part-old.snappy.parquet"):
        s3.put_object(Bucket=bucket, Key=f"ratings-ml-training/{key}", Body=b"old")

    plan = etl.plan_publish(etl.list_keys(s3, target), staged.keys())
    etl.apply_publish(s3, plan, staged, target)
    staged.remove()

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["ratings-ml-training/customerNumber=103/part-new.snappy.parquet"]
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert body == b"new-103"


def test_a_missing_job_argument_is_reported_as_such() -> None:
    log = "usage: ratings_etl-0123.py [-h] --JOB_NAME JOB_NAME\nratings_etl-0123.py: error: the following arguments " \
          "are required: --target_path\n"

    assert local.error_message([], log, 2) == (
        "bad job arguments: ratings_etl-0123.py: error: the following arguments are required: --target_path")
