"""Lifecycle of the local stack: `up`, `down`, `status`, `env`, `output`.

`up` starts the services detached (they outlive the command), records them in `state.json`, then runs the engine
(`harness.emulator.engine.deploy`), which materializes the Pulumi program's resources in them. A second `up` attaches
to the
running services and deploys again (an update). `down` stops everything; moto keeps its state in memory, so the AWS side
of the stack lives exactly as long as the services, and `down` also removes the databases' data and the daemon's state
(the delivery runners' checkpoints and counters) so the next `up` starts from the same clean slate. The stack's config
is validated before any service starts.
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.emulator import control_plane, endpoints, engine
from harness.emulator import services as svc
from harness.emulator import state as st

console = Console(stderr=True)
SECRET_MASK = "[secret]"


class StackError(RuntimeError):
    """A user-facing problem with the local stack: printed as one message, no traceback."""


class StackConfigError(StackError):
    """`Pulumi.<stack>.yaml` is missing, unreadable or holds a value the program refuses: a usage error (exit 2)."""


# ---------------------------------------------------------------------------------------------------------------------
# pure parts


@dataclass(frozen=True)
class SourceDatabase:
    host: str
    port: int
    database: str
    username: str
    password: str

    def as_state(self) -> dict[str, Any]:
        return {"external": True, "host": self.host, "port": self.port, "database": self.database,
                "username": self.username, "password": self.password}


def parse_source_url(url: str) -> SourceDatabase:
    """`mysql://user:password@host[:port]/database` -> SourceDatabase, or ValueError saying what is wrong."""
    example = "mysql://admin:PASSWORD@my-db.abc.us-east-1.rds.amazonaws.com:3306/classicmodels"
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"--source-url must start with mysql:// (got {parts.scheme or 'no scheme'!r}); e.g. {example}")
    try:
        port = parts.port or 3306
    except ValueError as err:
        raise ValueError(f"--source-url has an invalid port ({err}); e.g. {example}") from None
    missing = [name for name, value in (("user", parts.username), ("password", parts.password),
                                        ("host", parts.hostname), ("database", parts.path.strip("/"))) if not value]
    if missing:
        raise ValueError(f"--source-url is missing the {', '.join(missing)}; e.g. {example}")
    assert parts.username is not None and parts.password is not None and parts.hostname is not None
    return SourceDatabase(host=parts.hostname, port=port, database=unquote(parts.path.strip("/")),
                          username=unquote(parts.username), password=unquote(parts.password))


def output_value(outputs: dict[str, Any], name: str) -> Any:
    entry = outputs.get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def env_exports(state: st.State, state_dir: Path) -> list[tuple[str, str]]:
    """The variables the standard clients read (boto3/aws CLI, psql, mariadb/mysql) to reach this stack."""
    running = svc.RunningServices.from_dict(state["services"])
    outputs: dict[str, Any] = state.get("outputs", {})
    # boto3 and the aws CLI: every AWS API through the control plane's gateway (moto before it runs).
    pairs: list[tuple[str, str]] = list(endpoints.aws_environment(state_dir, state).items())
    # psql: the program's vector database once deployed, the server's superuser before that.
    pg_user = output_value(outputs, "vector_db_master_username")
    pg_password = output_value(outputs, "vector_db_master_password")
    if pg_user and pg_password:
        pairs += [("PGHOST", str(output_value(outputs, "vector_db_host") or running.postgres.host)),
                  ("PGPORT", str(output_value(outputs, "vector_db_port") or running.postgres.port)),
                  ("PGUSER", str(pg_user)), ("PGPASSWORD", str(pg_password)),
                  ("PGDATABASE", str(output_value(outputs, "vector_db_name") or "postgres"))]
    else:
        pg = running.postgres
        pairs += [("PGHOST", pg.host), ("PGPORT", str(pg.port)), ("PGUSER", pg.user), ("PGPASSWORD", pg.password),
                  ("PGDATABASE", pg.dbname)]
    mysql = mysql_client_settings(state)
    pairs += [("MYSQL_HOST", mysql["host"]), ("MYSQL_TCP_PORT", mysql["port"]), ("MYSQL_USER", mysql["user"]),
              ("MYSQL_PWD", mysql["password"]), ("MYSQL_DATABASE", mysql["database"]),
              # The mariadb client ignores MYSQL_USER; it does read $MYSQL_HOME/my.cnf, which `env` writes.
              ("MYSQL_HOME", str(state_dir / "mysql"))]
    return pairs


def mysql_client_settings(state: st.State) -> dict[str, str]:
    """Where the mysql client should point: the stack's source database, the same one `seed` and the Glue job use."""
    source = state.get("source") or {}
    if source.get("external"):  # `up --source-url`
        return {"host": str(source["host"]), "port": str(source["port"]), "user": str(source["username"]),
                "password": str(source["password"]), "database": str(source["database"])}
    outputs: dict[str, Any] = state.get("outputs") or {}
    if all(output_value(outputs, name) not in (None, "") for name in (
            "source_db_host", "source_db_port", "source_db_username", "source_db_password")):
        # The program's source database (the engine runs it as its own local server): its master user.
        return {"host": str(output_value(outputs, "source_db_host")),
                "port": str(output_value(outputs, "source_db_port")),
                "user": str(output_value(outputs, "source_db_username")),
                "password": str(output_value(outputs, "source_db_password")),
                "database": str(output_value(outputs, "source_db_name") or "classicmodels")}
    # Before the engine has deployed anything: the stack's own MariaDB, through its admin user.
    maria = svc.RunningServices.from_dict(state["services"]).mariadb
    return {"host": maria.host, "port": str(maria.port), "user": maria.user, "password": maria.password,
            "database": "classicmodels"}


def output_listing(shown: dict[str, Any]) -> str:
    """`pulumi stack output`'s layout: whole values, never truncated or wrapped, so they can be copied."""
    width = max([len("OUTPUT"), *map(len, shown)])
    lines = [f"Current stack outputs ({len(shown)}):", f"    {'OUTPUT':<{width}}  VALUE"]
    lines += [f"    {key:<{width}}  {value if isinstance(value, str) else json.dumps(value)}"
              for key, value in shown.items()]
    return "\n".join(lines)


def format_outputs(outputs: dict[str, Any], *, show_secrets: bool) -> dict[str, Any]:
    return {name: (entry.get("value") if show_secrets or not entry.get("secret") else SECRET_MASK)
            for name, entry in sorted(outputs.items())}


# ---------------------------------------------------------------------------------------------------------------------
# lifecycle


def recorded_services(state: st.State) -> svc.RunningServices | None:
    data = state.get("services")
    if not data:
        return None
    try:
        return svc.RunningServices.from_dict(data)
    except (KeyError, TypeError):
        return None


def ensure_services(state_dir: Path) -> tuple[svc.RunningServices, bool]:
    """Attach to the recorded services when all are healthy; otherwise (re)start them. Returns (services, attached)."""
    state = st.load_state(state_dir)
    running = recorded_services(state)
    if running is not None:
        healthy = svc.health(running)
        if all(healthy.values()):
            return running, True
        down = ", ".join(name for name, ok in healthy.items() if not ok)
        console.print(f"[yellow]recorded services not all healthy ({down}): restarting them[/yellow]")
        _stop_control_plane(state_dir, with_databases=not healthy["moto"])
        _stop_quietly(running)

        def forget_aws(s: st.State) -> None:
            # moto's state died with it: what the engine recorded about AWS resources no longer exists.
            if not healthy["moto"]:
                s.pop("resources", None)
                s.pop("outputs", None)
            s.pop("services", None)

        st.update_state(state_dir, forget_aws)
    with console.status("starting moto, PostgreSQL and MariaDB"):
        running = svc.start_all(st.data_dir(state_dir), st.logs_dir(state_dir))
    st.update_state(state_dir, lambda s: s.update(services=running.to_dict()))
    return running, False


def _stop_control_plane(state_dir: Path, *, with_databases: bool) -> bool:
    """Stop the control plane (it holds the old services' addresses; the next deploy starts it again). With
    `with_databases` also the local servers that stand for the program's RDS instances: when moto's state is gone, so
    are they."""
    if with_databases:
        control_plane.stop(state_dir)
    else:
        control_plane.stop_process(state_dir)
    return True


def _stop_quietly(running: svc.RunningServices) -> None:
    try:
        svc.stop_all(running)
    except RuntimeError as err:
        console.print(f"[yellow]{err}[/yellow]")


def check_source(source: SourceDatabase) -> None:
    import pymysql

    try:
        conn = pymysql.connect(host=source.host, port=source.port, user=source.username, password=source.password,
                               database=source.database, connect_timeout=10)
    except pymysql.MySQLError as err:
        raise StackError(f"cannot connect to --source-url {source.username}@{source.host}:{source.port}/"
                         f"{source.database}: {err.args[-1] if err.args else err}") from None
    conn.close()


def validate_stack_config(stack: str, state_dir: Path, source: dict[str, Any] | None) -> None:
    """The stack's config checked as the deploy will read it (`Pulumi.<stack>.yaml`, the local stack's overrides, the
    program's own `parse_config`), before any service starts: a typo is the user's to fix, and found after every service
    was up it left them running. Raises StackConfigError with the program's one-line message."""
    import pulumi

    from components.config import parse_config
    from harness.emulator.engine import local_config
    from harness.emulator.program import read_stack_config

    try:
        parse_config(local_config(read_stack_config(stack), source, state_dir), stack)
    except (pulumi.RunError, ValueError) as err:
        raise StackConfigError(" ".join(str(err).split())) from None


def bring_up(state_dir: Path, stack: str = "local", source_url: str | None = None) -> dict[str, Any]:
    """Start or attach to the services, deploy the program, record the outputs. Returns the outputs (or {})."""
    state = st.load_state(state_dir)
    recorded_stack = state.get("stack")
    if recorded_stack and recorded_stack != stack and state.get("services"):
        raise StackError(f"stack {recorded_stack!r} is up in {state_dir}; run `python -m harness down` first, or use "
                         f"another state directory (RECSYS_LOCAL_DIR) for stack {stack!r}")
    source: dict[str, Any] | None = None
    if source_url is not None:
        try:
            parsed = parse_source_url(source_url)
        except ValueError as err:
            raise StackError(str(err)) from None
        check_source(parsed)
        source = parsed.as_state()

    validate_stack_config(stack, state_dir, source if source is not None else state.get("source"))

    running, attached = ensure_services(state_dir)

    def record(s: st.State) -> None:
        s["stack"] = stack
        if source is not None:
            s["source"] = source
        s.setdefault("source", {"external": False})

    st.update_state(state_dir, record)
    console.print(("attached to" if attached else "started") + f" moto :{running.moto.port}, PostgreSQL "
                  f":{running.postgres.port}, MariaDB :{running.mariadb.port} (state in {state_dir})")
    import pulumi

    try:
        # The engine prints each resource as it lands; on our console, so that output and the spinner do not fight.
        with console.status(f"deploying stack {stack!r} into the local services"):
            outputs = engine.deploy(stack, state_dir, running, console=console)
    except (pulumi.RunError, ValueError) as err:
        raise StackError(f"deploy failed: {err}") from None
    st.update_state(state_dir, lambda s: s.update(outputs=outputs))
    console.print(f"deployed stack {stack!r}: {len(outputs)} outputs (`python -m harness output`)")
    return dict(outputs)


def bring_down(state_dir: Path) -> list[str]:
    """Stop the daemon and the services, delete the databases' data, the daemon's state (runner checkpoints and
    counters: the next stream starts at its first record, the counters at 0) and the recorded state (logs are kept)."""
    stopped: list[str] = []
    state = st.load_state(state_dir)
    if _stop_control_plane(state_dir, with_databases=True):
        stopped.append("daemon")
    running = recorded_services(state)
    if running is not None:
        _stop_quietly(running)
        stopped += list(svc.SERVICE_NAMES)
        Path(running.mariadb.socket).unlink(missing_ok=True)
    shutil.rmtree(st.data_dir(state_dir), ignore_errors=True)
    shutil.rmtree(state_dir / "mysql", ignore_errors=True)
    st.state_path(state_dir).unlink(missing_ok=True)
    return stopped


# What MariaDB's option-file parser (mysys/my_default.c) turns back into a character after a backslash in a value.
_OPTION_FILE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}


def option_file_value(value: str) -> str:
    """`value` written so that the mariadb/mysql clients read back exactly `value` from an option file: in double
    quotes (a `#` or `;` inside is not a comment, spaces at either end are kept), with `\\`, `"` and control characters
    backslash-escaped. Unquoted, a generated password was cut at its first `#`."""
    return '"' + "".join(_OPTION_FILE_ESCAPES.get(char, char) for char in value) + '"'


def mysql_option_file(settings: dict[str, str]) -> str:
    """The text of `$MYSQL_HOME/my.cnf` for these client settings (host, port, user, password, database)."""
    client = "".join(f"{name}={option_file_value(settings[name])}\n" for name in ("host", "port", "user", "password"))
    database = option_file_value(settings["database"])
    return ("# written by `python -m harness env`: the local stack's source database\n"
            f"[client]\n{client}protocol=TCP\n\n[mysql]\ndatabase={database}\n\n[mariadb-client]\ndatabase={database}\n")


def write_mysql_option_file(state_dir: Path, settings: dict[str, str]) -> Path:
    folder = state_dir / "mysql"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / "my.cnf"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(mysql_option_file(settings), encoding="utf-8")
    return path


def require_up(state_dir: Path) -> st.State:
    state = st.load_state(state_dir)
    if not state.get("services"):
        raise StackError(f"the local stack is not up (no services recorded in {state_dir}); run `python -m harness up`")
    return state


# ---------------------------------------------------------------------------------------------------------------------
# commands


def _fail(err: Exception, code: int = 1) -> typer.Exit:
    # One line whatever the terminal's width; the message is text, never markup.
    console.print(f"[red]error:[/red] {escape(str(err))}", soft_wrap=True)
    return typer.Exit(code)


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        stack: str = typer.Option("local", help="Stack name (its config is Pulumi.<stack>.yaml)."),
        source_url: str | None = typer.Option(
            None, help="Use an existing MySQL as the source instead of the local MariaDB: "
                       "mysql://user:password@host:port/classicmodels"),
    ) -> None:
        """Start the local services (or attach to them) and deploy the program into them."""
        state_dir = st.local_dir()
        try:
            with st.locked(state_dir, "up.lock"):  # two concurrent `up`s would start two sets of servers
                bring_up(state_dir, stack, source_url)
        except StackConfigError as err:
            raise _fail(err, code=2) from None
        except (StackError, svc.ServiceError, st.StateError) as err:
            raise _fail(err) from None

    @app.command()
    def down() -> None:
        """Stop the local stack and delete its data (moto's AWS state is in memory and goes with it)."""
        state_dir = st.local_dir()
        try:
            stopped = bring_down(state_dir)
        except st.StateError as err:
            raise _fail(err) from None
        console.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")

    @app.command()
    def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
        """Show the services (pid, port, healthy) and the control plane's counters."""
        state_dir = st.local_dir()
        try:
            state = require_up(state_dir)
        except (StackError, st.StateError) as err:
            raise _fail(err) from None
        running = svc.RunningServices.from_dict(state["services"])
        healthy = svc.health(running)
        plane_status: dict[str, Any] = dict(control_plane.status(state_dir))
        rows = [(name, getattr(running, name).pid, getattr(running, name).port, healthy[name])
                for name in svc.SERVICE_NAMES]
        if as_json:
            print(json.dumps({"stack": state.get("stack"), "state_dir": str(state_dir),
                              "services": {n: {"pid": p, "port": port, "healthy": h} for n, p, port, h in rows},
                              "control_plane": plane_status}, indent=2, default=str))
            if not all(healthy.values()):
                raise typer.Exit(1)
            return
        table = Table(title=f"local stack {state.get('stack', '?')!r} ({state_dir})")
        for column in ("service", "pid", "port", "healthy"):
            table.add_column(column)
        for name, pid, port, ok in rows:
            table.add_row(name, str(pid), str(port), "[green]yes[/green]" if ok else "[red]no[/red]")
        out = Console()
        out.print(table)
        if plane_status:
            counters = Table(title="control plane")
            counters.add_column("counter")
            counters.add_column("value", justify="right")
            for key, value in plane_status.items():
                counters.add_row(escape(key), escape(str(value)))
            out.print(counters)
        out.print(f"{len(state.get('outputs', {}))} stack outputs recorded (`python -m harness output`)")
        if not all(healthy.values()):
            raise typer.Exit(1)

    @app.command()
    def env() -> None:
        """Print `export` lines for boto3/aws CLI, psql and mysql: eval "$(python -m harness env)"."""
        state_dir = st.local_dir()
        try:
            state = require_up(state_dir)
        except (StackError, st.StateError) as err:
            raise _fail(err) from None
        write_mysql_option_file(state_dir, mysql_client_settings(state))
        for name, value in env_exports(state, state_dir):
            print(f"export {name}={shlex.quote(value)}")

    @app.command()
    def output(
        name: str | None = typer.Argument(None, help="One output's name; all outputs when omitted."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        show_secrets: bool = typer.Option(False, "--show-secrets", help="Print secret values instead of \\[secret]."),
    ) -> None:
        """Print the stack outputs recorded by the last `up` (like `pulumi stack output`)."""
        state_dir = st.local_dir()
        try:
            state = st.load_state(state_dir)
        except st.StateError as err:
            raise _fail(err) from None
        outputs: dict[str, Any] = state.get("outputs") or {}
        if not outputs:
            raise _fail(StackError("no stack outputs recorded: run `python -m harness up` (with the engine available)"))
        shown = format_outputs(outputs, show_secrets=show_secrets)
        if name is not None:
            if name not in shown:
                raise _fail(StackError(f"no output named {name!r}; outputs are: {', '.join(shown)}"))
            value = shown[name]
            print(json.dumps(value) if as_json else (value if isinstance(value, str) else json.dumps(value)))
            return
        if as_json:
            print(json.dumps(shown, indent=2))
            return
        print(output_listing(shown))
