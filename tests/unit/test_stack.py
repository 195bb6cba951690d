"""Pure parts of the lifecycle commands: `--source-url` parsing, output masking, the exports of `harness env`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import stack

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
    assert exported["AWS_ENDPOINT_URL"] == "http://127.0.0.1:6003"  # the control plane's gateway, for every service
    assert "AWS_ENDPOINT_URL_LAMBDA" not in exported
    assert (exported["PGPORT"], exported["PGPASSWORD"]) == ("6001", "vec-pw")
    assert (exported["MYSQL_TCP_PORT"], exported["MYSQL_PWD"], exported["MYSQL_DATABASE"]) == (
        "6002", "src-pw", "classicmodels")
    assert exported["MYSQL_HOME"] == str(tmp_path / "mysql")


def test_env_before_any_deploy_points_at_the_stacks_own_servers(tmp_path: Path) -> None:
    exported = dict(stack.env_exports({"services": SERVICES}, tmp_path))
    assert exported["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5001"  # moto, while no control plane runs
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


# ---- `harness env`'s my.cnf: values as MariaDB's option-file parser reads them -------------------------------------

HOSTILE_PASSWORDS = ["p#ss", "it's", 'say "hi"', "back\\slash", " spaced out ", "semi;colon", "#", "\\", '"', "'",
                     "a\\#b", 'tail\\"', "x\\n", "tab\there", "new\nline"]


def test_option_file_values_are_double_quoted_with_backslash_escapes() -> None:
    assert stack.option_file_value("p#ss") == '"p#ss"'
    assert stack.option_file_value('say "hi"') == '"say \\"hi\\""'
    assert stack.option_file_value("back\\slash") == '"back\\\\slash"'
    assert stack.option_file_value("it's; #1 ") == "\"it's; #1 \""
    assert stack.option_file_value("new\nline\ttab\r\b") == '"new\\nline\\ttab\\r\\b"'


def parsed_by_mariadb(path: Path) -> dict[str, str]:
    """The [client] options as the MariaDB client library reads them from `path` (its own `my_print_defaults`)."""
    printed = subprocess.run(["my_print_defaults", f"--defaults-file={path}", "client"], capture_output=True,
                             check=True).stdout.decode("utf-8")
    # One `--name=value` per option; a value may itself hold a newline, so split on the option names we wrote.
    names = ("host", "port", "user", "password", "protocol")
    pattern = "".join(f"--{name}=(?P<{name}>.*)\n" for name in names)
    match = re.fullmatch(pattern, printed, flags=re.DOTALL)
    assert match is not None, printed
    return match.groupdict()


needs_mariadb_client = pytest.mark.skipif(shutil.which("my_print_defaults") is None,
                                          reason="MariaDB's my_print_defaults is not installed")


@needs_mariadb_client
@pytest.mark.parametrize("password", HOSTILE_PASSWORDS)
def test_the_mariadb_client_reads_back_every_hostile_password_whole(tmp_path: Path, password: str) -> None:
    path = stack.write_mysql_option_file(tmp_path, {"host": "127.0.0.1", "port": "3306", "user": "admin",
                                                    "password": password, "database": "classicmodels"})

    assert parsed_by_mariadb(path) == {"host": "127.0.0.1", "port": "3306", "user": "admin", "password": password,
                                       "protocol": "TCP"}


@needs_mariadb_client
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=st.text(st.one_of(st.sampled_from("#;'\"\\ntbrs= \t\n"),  # the parser's special characters
                                   st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
                         max_size=40),
       user=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12))
def test_any_password_and_user_survive_the_option_file(tmp_path: Path, password: str, user: str) -> None:
    path = stack.write_mysql_option_file(tmp_path, {"host": "127.0.0.1", "port": "3306", "user": user,
                                                    "password": password, "database": "classicmodels"})

    parsed = parsed_by_mariadb(path)

    assert (parsed["user"], parsed["password"]) == (user, password)


@needs_mariadb_client
def test_a_password_with_every_awkward_character_logs_in_with_the_real_client(
        tmp_path: Path, mariadb_service: Any) -> None:
    password = "a#b'c\"d\\e f;g\\n\\\\#"
    admin = mariadb_service.connect(autocommit=True)
    with admin.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS env_login")
        cur.execute("CREATE OR REPLACE USER 'env_login'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute("GRANT ALL ON env_login.* TO 'env_login'@'%'")
    admin.close()
    path = stack.write_mysql_option_file(tmp_path, {"host": mariadb_service.host, "port": str(mariadb_service.port),
                                                    "user": "env_login", "password": password,
                                                    "database": "env_login"})

    result = subprocess.run(["mariadb", f"--defaults-file={path}", "-N", "-e", "select current_user(), database()"],
                            capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["env_login@%", "env_login"]


# ---- the stack's config is validated before any service starts ----------------------------------------------------

@pytest.fixture
def stack_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write `Pulumi.<stack>.yaml` (in a temp dir, never the repository) for a throwaway stack; returns its name."""
    from harness.emulator import program

    def write(config_yaml: str) -> str:
        path = tmp_path / "Pulumi.typo-test.yaml"
        path.write_text(config_yaml)
        monkeypatch.setattr(program, "stack_config_path", lambda stack: path)
        return "typo-test"

    return write


def no_services(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    started: list[Path] = []

    def record(state_dir: Path) -> Any:
        started.append(state_dir)
        raise AssertionError("a service was started before the config was validated")

    monkeypatch.setattr(stack, "ensure_services", record)
    return started


@pytest.mark.parametrize(("config_yaml", "message"), [
    ("config:\n  recsys:topKk: '5'\n",
     "recsys:topKk is not a setting of this program. Did you mean recsys:topK?"),
    ("config:\n  recsys:processorRetries: 'three'\n", "recsys:processorRetries"),
    ("config:\n  aws:region: mars-north-1x\n", 'aws:region is "mars-north-1x", but it must be an AWS region name'),
    ("config: [unclosed\n", "is not valid YAML"),
])
def test_a_config_mistake_stops_up_with_the_programs_message_before_any_service_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_file: Callable[[str], str], config_yaml: str,
        message: str) -> None:
    started = no_services(monkeypatch)
    name = stack_file(config_yaml)

    with pytest.raises(stack.StackConfigError) as refused:
        stack.bring_up(tmp_path / "state", name)

    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert started == []
    assert not (tmp_path / "state" / "state.json").exists()


def test_the_config_is_validated_as_the_deploy_reads_it_with_the_local_overrides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_file: Callable[[str], str]) -> None:
    # The recorded external source fills sourceDbHost & co, as the engine's local_config does for the deploy.
    name = stack_file("config:\n  recsys:prefix: de-c1w4\n")
    external = {"external": True, "host": "db.example.com", "port": 3306, "database": "classicmodels",
                "username": "admin", "password": "p"}
    stack.validate_stack_config(name, tmp_path, external)

    with pytest.raises(stack.StackConfigError) as refused:
        stack.validate_stack_config(name, tmp_path, {**external, "database": "class-icmodels"})
    assert "recsys:sourceDbName" in str(refused.value)


def test_up_with_a_config_typo_exits_2_with_one_line_and_starts_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack_file: Callable[[str], str]) -> None:
    from typer.testing import CliRunner

    from harness.cli import app as cli

    started = no_services(monkeypatch)
    name = stack_file("config:\n  recsys:topKk: '5'\n")
    monkeypatch.setenv("RECSYS_LOCAL_DIR", str(tmp_path / "state"))
    cli._register_commands()

    result = CliRunner().invoke(cli.app, ["up", "--stack", name], env={"COLUMNS": "60"})

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: recsys:topKk is not a setting of this program. Did you mean recsys:topK? Remove it with: pulumi "
        "config rm recsys:topKk (all settings: docs/program.md)"]
    assert started == []


# ---- `down` leaves nothing of the stack's runner state behind ------------------------------------------------------

def test_down_deletes_the_delivery_runners_checkpoints_and_counters_and_keeps_the_logs(tmp_path: Path) -> None:
    from harness.emulator.control_plane import control_plane_dir

    checkpoints = control_plane_dir(tmp_path) / "firehose"
    checkpoints.mkdir(parents=True)
    (checkpoints / "de-c1w4-delivery.json").write_text(
        '{"checkpoints": {"shardId-000000000000": "49650000000000000000000000000000000000000000000050"}, '
        '"counters": {"events_read": 50, "records_delivered": 50}}')
    (control_plane_dir(tmp_path) / "function_urls.json").write_text('{"inference": {"port": 40001}}')
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "daemon.log").write_text("kept\n")

    stack.bring_down(tmp_path)

    assert not control_plane_dir(tmp_path).exists()
    assert (tmp_path / "logs" / "daemon.log").read_text() == "kept\n"
