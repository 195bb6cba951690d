"""The local stack's services: real servers on free loopback ports, password-protected, stoppable, and honest when
they fail to start (the error carries the service's own log)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pymysql
import pytest

from harness import services


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
