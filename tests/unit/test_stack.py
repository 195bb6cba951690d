"""Pure parts of the lifecycle commands: `--source-url` parsing, output masking, the exports of `harness env`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands import stack

SERVICES = {
    "moto": {"host": "127.0.0.1", "port": 5001, "pid": 1, "log_path": "/x/moto.log"},
    "postgres": {"host": "127.0.0.1", "port": 5002, "user": "postgres", "password": "pg-admin", "dbname": "postgres",
                 "pid": 2, "data_dir": "/x/pg", "log_path": "/x/pg.log"},
    "mariadb": {"host": "127.0.0.1", "port": 5003, "user": "admin", "password": "maria-admin", "pid": 3,
                "socket": "/x/sock", "data_dir": "/x/maria", "log_path": "/x/maria.log"},
}


def test_a_source_url_gives_host_port_database_and_credentials() -> None:
    parsed = stack.parse_source_url("mysql://admin:p%40ss@db.example.com:3307/classicmodels")
    assert parsed == stack.SourceDatabase(host="db.example.com", port=3307, database="classicmodels",
                                          username="admin", password="p@ss")
    assert stack.parse_source_url("mysql://u:p@h/db").port == 3306


@pytest.mark.parametrize(("url", "message"), [
    ("postgres://u:p@h/db", "--source-url must start with mysql:// (got 'postgres')"),
    ("mysql://u@h/db", "--source-url is missing the password"),
    ("mysql://u:p@h", "--source-url is missing the database"),
    ("mysql://u:p@h:notaport/db", "--source-url has an invalid port"),
])
def test_a_bad_source_url_says_what_is_missing(url: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        stack.parse_source_url(url)
    assert str(refused.value).startswith(message)
    assert "mysql://admin:PASSWORD@" in str(refused.value)  # an example of the right form


def test_secret_outputs_are_masked_unless_asked() -> None:
    outputs = {"vector_db_master_password": {"value": "s3cret", "secret": True},
               "vector_db_port": {"value": 5432, "secret": False}}
    assert stack.format_outputs(outputs, show_secrets=False) == {"vector_db_master_password": "[secret]",
                                                                 "vector_db_port": 5432}
    assert stack.format_outputs(outputs, show_secrets=True)["vector_db_master_password"] == "s3cret"


def test_env_points_psql_at_the_vector_database_and_mysql_at_the_programs_source(tmp_path: Path) -> None:
    state = {
        "services": SERVICES,
        "outputs": {
            "vector_db_host": {"value": "127.0.0.1", "secret": False},
            "vector_db_port": {"value": 6001, "secret": False},
            "vector_db_master_username": {"value": "postgres", "secret": False},
            "vector_db_master_password": {"value": "vec-pw", "secret": True},
            "vector_db_name": {"value": "postgres", "secret": False},
            "source_db_host": {"value": "127.0.0.1", "secret": False},
            "source_db_port": {"value": 6002, "secret": False},
            "source_db_username": {"value": "admin", "secret": False},
            "source_db_password": {"value": "src-pw", "secret": True},
            "source_db_name": {"value": "classicmodels", "secret": False},
        },
        "daemon": {"lambda_endpoint": "http://127.0.0.1:6003"},
    }
    exported = dict(stack.env_exports(state, tmp_path))
    assert exported["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5001"
    assert exported["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:6003"
    assert (exported["PGPORT"], exported["PGPASSWORD"]) == ("6001", "vec-pw")
    assert (exported["MYSQL_TCP_PORT"], exported["MYSQL_PWD"], exported["MYSQL_DATABASE"]) == (
        "6002", "src-pw", "classicmodels")
    assert exported["MYSQL_HOME"] == str(tmp_path / "mysql")


def test_env_before_any_deploy_points_at_the_stacks_own_servers(tmp_path: Path) -> None:
    exported = dict(stack.env_exports({"services": SERVICES}, tmp_path))
    assert (exported["PGPORT"], exported["PGUSER"], exported["PGPASSWORD"]) == ("5002", "postgres", "pg-admin")
    assert (exported["MYSQL_TCP_PORT"], exported["MYSQL_USER"], exported["MYSQL_PWD"]) == ("5003", "admin",
                                                                                          "maria-admin")


def test_up_for_a_stack_without_a_config_file_says_which_stacks_exist_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[Path] = []
    monkeypatch.setattr(stack, "ensure_services", lambda state_dir: started.append(state_dir))
    with pytest.raises(stack.StackError) as refused:
        stack.bring_up(tmp_path, "no-such-stack")
    assert "no stack config file Pulumi.no-such-stack.yaml" in str(refused.value)
    assert "Stacks with a config file:" in str(refused.value)
    assert started == []


def test_the_output_listing_shows_whole_values_like_pulumi_stack_output() -> None:
    bucket = "de-c1w4-local-123456789012-us-east-1-recommendations"
    listing = stack.output_listing({"recommendations_bucket_id": bucket, "vector_db_port": 5432})

    assert listing.splitlines() == [
        "Current stack outputs (2):",
        "    OUTPUT                     VALUE",
        f"    recommendations_bucket_id  {bucket}",
        "    vector_db_port             5432",
    ]
