"""The local stack's services: real servers on free loopback ports, password-protected, stoppable, and honest when
they fail to start (the error carries the service's own log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest

from harness.emulator import services


def test_postgres_accepts_its_password_and_can_create_the_vector_extension(
    postgres_service: services.PostgresService,
) -> None:
    conn = postgres_service.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("create extension if not exists vector")
            cur.execute("select '[1,2,3]'::vector <-> '[1,2,4]'::vector")
            assert cur.fetchone() == (1.0,)
            cur.execute("show listen_addresses")
            assert cur.fetchone() == ("127.0.0.1",)
    finally:
        conn.close()


def test_postgres_rejects_a_wrong_password(postgres_service: services.PostgresService) -> None:
    import psycopg2

    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=postgres_service.host, port=postgres_service.port, user=postgres_service.user,
                         password="not-the-password", dbname="postgres", connect_timeout=5)


def test_mariadb_admin_can_create_a_database_and_a_wrong_password_is_refused(
    mariadb_service: services.MariaDBService,
) -> None:
    conn = mariadb_service.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("create database if not exists services_probe")
            cur.execute("show databases like 'services_probe'")
            assert cur.fetchone() == ("services_probe",)
            cur.execute("drop database services_probe")
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(host=mariadb_service.host, port=mariadb_service.port, user=mariadb_service.user,
                        password="not-the-password", connect_timeout=5)
    assert refused.value.args[0] == 1045  # access denied


def test_mariadb_root_cannot_log_in_over_tcp(mariadb_service: services.MariaDBService) -> None:
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host=mariadb_service.host, port=mariadb_service.port, user="root", password="",
                        connect_timeout=5)


def test_moto_server_answers_the_s3_api(moto_service: services.MotoService) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_service.endpoint_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="services-probe")
    assert "services-probe" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_stopped_service_releases_its_port_and_process(tmp_path: Path) -> None:
    moto = services.start_moto(tmp_path)
    assert services.moto_healthy(moto)
    services.stop_moto(moto)
    assert not services.pid_alive(moto.pid)
    assert not services.port_open(moto.port)
    assert not services.moto_healthy(moto)


def test_postgres_restarts_on_its_data_dir_with_the_same_password_and_data(tmp_path: Path) -> None:
    first = services.start_postgres(tmp_path)
    conn = first.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create table kept (x int)")
        cur.execute("insert into kept values (42)")
    conn.close()
    services.stop_postgres(first)
    assert not services.pid_alive(first.pid)

    second = services.start_postgres(tmp_path)
    try:
        assert second.password == first.password
        conn = second.connect()
        with conn.cursor() as cur:
            cur.execute("select x from kept")
            assert cur.fetchall() == [(42,)]
        conn.close()
    finally:
        services.stop_postgres(second)


def test_a_service_that_cannot_start_reports_its_log_tail(tmp_path: Path) -> None:
    healthy = services.start_postgres(tmp_path)
    services.stop_postgres(healthy)
    conf = Path(healthy.data_dir) / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nshared_buffers = 'a lot'\n")

    with pytest.raises(services.ServiceError) as failed:
        services.start_postgres(tmp_path)

    message = str(failed.value)
    assert message.startswith("postgres: pg_ctl start failed")
    assert "last lines of" in message
    assert "shared_buffers" in message  # PostgreSQL's own complaint, from its log


# ---- the lifecycle commands, on the whole local stack (`python -m harness up` once per session) ----------------------

LAB_OUTPUTS = ("data_lake_bucket_id", "scripts_bucket_id", "vector_db_host", "vector_db_port",
               "vector_db_master_username", "vector_db_master_password", "recommendations_bucket_id")


def parse_exports(text: str) -> dict[str, str]:
    import shlex

    exported: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        exported[name] = value
    return exported


def test_up_records_healthy_services_and_the_labs_outputs(local_stack: Any) -> None:
    assert services.health(local_stack.services) == {"moto": True, "postgres": True, "mariadb": True}
    outputs = local_stack.state()["outputs"]
    for name in LAB_OUTPUTS:
        assert name in outputs, name
    assert outputs["vector_db_master_password"]["secret"] is True
    assert local_stack.state_dir.joinpath("state.json").stat().st_mode & 0o077 == 0  # passwords inside


def test_a_second_up_attaches_to_the_running_services(local_stack: Any) -> None:
    before = local_stack.state()["services"]
    result = local_stack.run("up")
    assert "attached to" in result.stdout + result.stderr
    assert local_stack.state()["services"] == before


def test_env_exports_what_boto3_psql_and_mysql_need(local_stack: Any) -> None:
    import psycopg2

    exported = parse_exports(local_stack.run("env").stdout)
    s3 = boto3.client("s3", endpoint_url=exported["AWS_ENDPOINT_URL"], region_name=exported["AWS_DEFAULT_REGION"],
                      aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"])
    assert local_stack.output("data_lake_bucket_id") in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    conn = psycopg2.connect(host=exported["PGHOST"], port=exported["PGPORT"], user=exported["PGUSER"],
                            password=exported["PGPASSWORD"], dbname=exported["PGDATABASE"], connect_timeout=5)
    conn.close()
    conn = pymysql.connect(host=exported["MYSQL_HOST"], port=int(exported["MYSQL_TCP_PORT"]),
                           user=exported["MYSQL_USER"], password=exported["MYSQL_PWD"], connect_timeout=5)
    conn.close()
    option_file = Path(exported["MYSQL_HOME"]) / "my.cnf"
    # Values are written double-quoted, as MariaDB's option-file parser reads them (a '#' in a password survives).
    assert f'port="{exported["MYSQL_TCP_PORT"]}"' in option_file.read_text()
    assert option_file.stat().st_mode & 0o077 == 0


def test_output_hides_secrets_unless_asked(local_stack: Any) -> None:
    import json

    hidden = json.loads(local_stack.run("output", "--json").stdout)
    shown = json.loads(local_stack.run("output", "--json", "--show-secrets").stdout)
    assert hidden["vector_db_master_password"] == "[secret]"
    assert shown["vector_db_master_password"] == local_stack.output("vector_db_master_password")
    assert local_stack.output("vector_db_master_password") not in local_stack.run("output").stdout
    assert local_stack.run("output", "vector_db_port").stdout.strip() == str(local_stack.output("vector_db_port"))


def test_status_reports_every_service_healthy(local_stack: Any) -> None:
    import json

    status = json.loads(local_stack.run("status", "--json").stdout)
    assert {name: s["healthy"] for name, s in status["services"].items()} == {
        "moto": True, "postgres": True, "mariadb": True}


def test_down_stops_the_services_and_removes_their_data(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from harness.emulator import state as st

    running = services.start_all(st.data_dir(tmp_path), st.logs_dir(tmp_path))
    st.update_state(tmp_path, lambda s: s.update(stack="local", services=running.to_dict()))
    env = {**os.environ, st.ENV_VAR: str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "harness", "down"], cwd=Path(__file__).resolve().parents[2],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in services.SERVICE_NAMES:
        assert not services.pid_alive(getattr(running, name).pid), name
    assert not st.data_dir(tmp_path).exists()
    assert not st.state_path(tmp_path).exists()
    assert st.logs_dir(tmp_path).joinpath("postgres.log").exists()  # logs are kept for a post-mortem


def test_up_with_an_unreachable_source_url_says_so_and_starts_nothing(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from harness.emulator import state as st

    port = services.free_port()
    env = {**os.environ, st.ENV_VAR: str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "harness", "up", "--source-url",
                             f"mysql://admin:pw@127.0.0.1:{port}/classicmodels"],
                            cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert f"cannot connect to --source-url admin@127.0.0.1:{port}/classicmodels" in result.stderr
    assert "Traceback" not in result.stderr
    assert "services" not in st.load_state(tmp_path)
