"""Faults injected from outside, through pids the stack records (`state.json`, the daemon's status API, the RDS
server's `service.json`)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.workflows.soak.plan import WORKER_BUSY_POLL_S, FaultKind, PlannedFault, SoakError
from harness.workflows.soak.target import SoakTarget


@dataclass
class FaultOutcome:
    kind: FaultKind
    planned_at_s: float
    started_at_s: float | None = None
    duration_s: float = 0.0
    injected: bool = False
    detail: str = ""


def _postgres_os_user() -> pwd.struct_passwd | None:
    from harness.emulator import services

    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(services.POSTGRES_OS_USER)


def vector_db_record(state_dir: Path, port: int) -> Path:
    """The `service.json` of the local server standing for the vector database (written by the RDS materializer)."""
    from harness.emulator.materializers.databases import rds_dir

    for record in sorted(rds_dir(state_dir).glob("*/service.json")):
        data = json.loads(record.read_text())
        if "dbname" in data and int(data.get("port", -1)) == port:
            return record
    raise SoakError(f"no local PostgreSQL server on port {port} is recorded under {rds_dir(state_dir)}")


def _ensure_traversable(path: Path) -> None:
    """o+x on every ancestor of the data dir, as `harness.emulator.services` sets when it starts the server: when we
    are root the
    server runs as another user, and a directory whose mode was tightened since (pytest resets its temp root to 0700
    at every session start) would leave pg_ctl and the server unable to reach their own files."""
    if os.geteuid() != 0:
        return
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def stop_postgres(record: Path) -> None:
    from harness.emulator import services

    _ensure_traversable(Path(json.loads(record.read_text())["data_dir"]))
    services.stop_postgres(services.PostgresService(**json.loads(record.read_text())))


def start_postgres_same_port(record: Path) -> int:
    """Start the stopped server with the options it last ran with (`postmaster.opts`: same port, same settings), so
    the functions' VECTOR_DB_PORT stays right; records the new pid. `harness.emulator.services.start_postgres` always
    picks a
    new free port, which would strand every client."""
    from harness.emulator import services

    data = json.loads(record.read_text())
    data_dir = Path(data["data_dir"])
    _ensure_traversable(data_dir)
    argv = shlex.split((data_dir / "postmaster.opts").read_text())
    options: list[str] = []
    skip = False
    for arg in argv[1:]:  # argv[0] is the postgres binary; -D <dir> is given to pg_ctl itself
        if skip or arg == "-D":
            skip = not skip
            continue
        options.append(arg)
    os_user = _postgres_os_user()
    kwargs: dict[str, Any] = {}
    if os_user is not None:
        kwargs.update(user=os_user.pw_uid, group=os_user.pw_gid, extra_groups=[])
    result = subprocess.run(
        [str(services.postgres_bin_dir() / "pg_ctl"), "-D", str(data_dir), "-l", data["log_path"], "-w", "-t", "60",
         "-o", shlex.join(options), "start"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90, start_new_session=True, **kwargs)
    if result.returncode != 0:
        raise SoakError(f"PostgreSQL did not start again on port {data['port']}: {result.stderr.strip()[-500:]}\n"
                        f"{services.log_tail(Path(data['log_path']))}")
    pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    data["pid"] = pid
    staging = record.with_suffix(".tmp")
    staging.write_text(json.dumps(data))
    staging.chmod(0o600)
    staging.replace(record)
    return pid


def postgres_running(record: Path) -> bool:
    from harness.emulator import services

    data = json.loads(record.read_text())
    return services.pid_alive(int(data["pid"])) and services.port_open(int(data["port"]))


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def daemon_status(state_dir: Path) -> dict[str, Any]:
    from harness.emulator.control_plane import ControlPlaneClient as DaemonClient
    from harness.emulator.control_plane import read_info as read_daemon_info

    info = read_daemon_info(state_dir)
    if info is None:
        raise SoakError("the local control plane is not running: run `python -m harness up`")
    return DaemonClient(info.url).status()


def daemon_pid(state_dir: Path) -> int:
    from harness.emulator.control_plane import read_info as read_daemon_info

    info = read_daemon_info(state_dir)
    if info is None:
        raise SoakError("the local control plane is not running: run `python -m harness up`")
    return info.pid


def _reap(pid: int) -> None:
    """Wait for a killed process to be gone. A daemon this process restarted is its child: until reaped it is a zombie,
    which `pid_alive` (and so `read_daemon_info`) would take for a live control plane."""
    from harness.emulator import services

    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not services.pid_alive(pid):
            return
        time.sleep(0.05)
    raise SoakError(f"process {pid} did not end within 10 s of SIGKILL")


def restart_daemon(state_dir: Path) -> int:
    """Start the control plane again for the stack's recorded services (as `harness up` does); its pid."""
    from harness.emulator import services
    from harness.emulator import state as st
    from harness.emulator.control_plane import start as start_daemon

    state = st.load_state(state_dir)
    try:
        running = services.RunningServices.from_dict(state["services"])
    except (KeyError, TypeError) as err:
        raise SoakError(f"the stack records no services to restart the control plane with ({err}): run "
                        "`python -m harness up`") from None
    return start_daemon(state_dir, running, region=str(state.get("region") or "us-east-1")).pid


class FaultInjector:
    """Runs the plan in its own thread; `restore()` undoes whatever is still broken (also on Ctrl-C)."""

    def __init__(self, state_dir: Path, target: SoakTarget, plan: Sequence[PlannedFault], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.state_dir = state_dir
        self.target = target
        self.plan = list(plan)
        self.clock = clock
        self.outcomes = [FaultOutcome(f.kind, f.at_s) for f in plan]
        self.stop = threading.Event()
        self.started_at = 0.0
        self._pg_record = vector_db_record(state_dir, int(target.vector_db["port"]))
        self._paused_pid: int | None = None
        self._pg_stopped = False
        self._killed_daemon = False
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self.error: str | None = None
        self.active: FaultKind | None = None

    def start(self, started_at: float) -> None:
        self.started_at = started_at
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def current(self) -> str:
        return self.active or ""

    def _run(self) -> None:
        try:
            for fault, outcome in zip(self.plan, self.outcomes, strict=True):
                delay = self.started_at + fault.at_s - self.clock()
                if delay > 0 and self.stop.wait(delay):
                    return
                outcome.started_at_s = round(self.clock() - self.started_at, 2)
                began = self.clock()
                self.active = fault.kind
                try:
                    getattr(self, f"_{fault.kind}")(fault, outcome)
                except Exception as exc:  # noqa: BLE001 - reported in the outcome; the soak and reconciliation go on
                    outcome.detail = f"failed: {type(exc).__name__}: {exc}"
                finally:
                    self.active = None
                    self.restore()
                outcome.duration_s = round(self.clock() - began, 2)
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"

    def _postgres_restart(self, fault: PlannedFault, outcome: FaultOutcome) -> None:
        # Stopped while a batch is being transformed when one comes along in time: its queries fail mid-statement.
        _, busy = self._busy_worker(fault, budget_s=max(1.0, fault.window_end_s - fault.at_s - fault.duration_s - 2))
        pid = self._postgres_down(fault, outcome)
        outcome.detail = (f"stopped {'mid-batch' if busy else 'between batches'}, down {fault.duration_s:.1f} s, "
                          f"back on port {self.target.vector_db['port']} (pid {pid})")

    def _postgres_down(self, fault: PlannedFault, outcome: FaultOutcome) -> int:
        """The vector database stopped for the fault's duration, then started on its port again; the new pid."""
        stop_postgres(self._pg_record)
        self._pg_stopped = True
        outcome.injected = True
        self.stop.wait(fault.duration_s)
        pid = start_postgres_same_port(self._pg_record)
        self._pg_stopped = False
        return pid

    def _busy_worker(self, fault: PlannedFault, budget_s: float) -> tuple[int | None, bool]:
        """The transformation worker's pid once it is busy (its CPU time moves: it is transforming a batch; an idle
        worker blocks on its pipe), or whatever is known when `budget_s` runs out."""
        name = self.target.transformation_function
        deadline = min(self.clock() + budget_s, self.started_at + fault.window_end_s - 1.0)
        pid: int | None = None
        while pid is None and self.clock() < deadline and not self.stop.is_set():
            pid = (daemon_status(self.state_dir)["functions"].get(name) or {}).get("worker_pid")
            if pid is None:
                self.stop.wait(0.5)
        if pid is None:
            return None, False
        last = _cpu_ticks(pid)
        while self.clock() < deadline and not self.stop.is_set():
            time.sleep(WORKER_BUSY_POLL_S)
            ticks = _cpu_ticks(pid)
            if ticks is None:
                return pid, False
            if last is not None and ticks > last:
                return pid, True
            last = ticks
        return pid, False

    def _worker_kill(self, fault: PlannedFault, outcome: FaultOutcome) -> None:
        name = self.target.transformation_function
        errors_before = int((daemon_status(self.state_dir)["functions"].get(name) or {}).get("errors", 0))
        pid, busy = self._busy_worker(fault, budget_s=fault.window_end_s - fault.at_s)
        if pid is None:
            outcome.detail = "not injected: the transformation worker never started in the fault's slot"
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        outcome.injected = True
        time.sleep(1.0)
        errors_after = int((daemon_status(self.state_dir)["functions"].get(name) or {}).get("errors", 0))
        outcome.detail = (f"worker pid {pid} killed " + ("while busy" if busy else "idle (no busy moment in its slot)")
                          + (", its invocation failed (mid-batch)" if errors_after > errors_before else ""))

    def _runner_pause(self, fault: PlannedFault, outcome: FaultOutcome) -> None:
        pid = daemon_pid(self.state_dir)
        os.kill(pid, signal.SIGSTOP)
        self._paused_pid = pid
        outcome.injected = True
        self.stop.wait(fault.duration_s)
        os.kill(pid, signal.SIGCONT)
        self._paused_pid = None
        outcome.detail = f"control plane pid {pid} stopped for {fault.duration_s:.1f} s"

    def _db_outage(self, fault: PlannedFault, outcome: FaultOutcome) -> None:
        # Longer than the processor's retry window: batches that arrive meanwhile fail into the error output, and the
        # soak's redrive after the drain must bring every one of them back (run.py).
        pid = self._postgres_down(fault, outcome)
        outcome.detail = f"vector database down {fault.duration_s:.1f} s, back on port " \
                         f"{self.target.vector_db['port']} (pid {pid})"

    def _runner_kill(self, fault: PlannedFault, outcome: FaultOutcome) -> None:
        # The delivery runner alone dies (the control plane lives on) and a fresh one resumes from its checkpoint.
        from harness.emulator.control_plane import ControlPlaneClient as DaemonClient
        from harness.emulator.control_plane import read_info as read_daemon_info

        info = read_daemon_info(self.state_dir)
        if info is None:
            raise SoakError("the local control plane is not running: run `python -m harness up`")
        result = DaemonClient(info.url).crash_runner(self.target.stream.delivery_stream)
        outcome.injected = True
        self.stop.wait(fault.duration_s)
        outcome.detail = (f"runner of {self.target.stream.delivery_stream} killed holding "
                          f"{result['records_lost_from_memory']} record(s) in memory, restarted from its checkpoint")

    def _daemon_kill(self, fault: PlannedFault, outcome: FaultOutcome) -> None:
        # SIGKILL: no flush, no checkpoint save, buffered records gone from memory. The restarted control plane must
        # read them again from its last checkpoint (at-least-once: records written but not yet checkpointed come twice).
        pid = daemon_pid(self.state_dir)
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
        self._killed_daemon = True
        outcome.injected = True
        self.stop.wait(min(1.0, fault.duration_s))
        started = restart_daemon(self.state_dir)
        self._killed_daemon = False
        outcome.detail = f"control plane pid {pid} killed (SIGKILL), restarted as pid {started}"

    def restore(self) -> None:
        if self._killed_daemon:
            restart_daemon(self.state_dir)
            self._killed_daemon = False
        if self._paused_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._paused_pid, signal.SIGCONT)
            self._paused_pid = None
        if self._pg_stopped or not postgres_running(self._pg_record):
            start_postgres_same_port(self._pg_record)
            self._pg_stopped = False


