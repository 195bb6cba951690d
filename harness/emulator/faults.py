"""The soak's faults on the local stack: the emulator's `FaultInjector` (the protocol is the soak's,
`harness.workflows.soak.faults`; `harness soak` builds this one for the local stack and passes it in).

Each fault strikes from outside, through what the stack records (`state.json`, the control plane's status API, the RDS
server's `service.json`), as the real failure would:

- `postgres_restart`, `db_outage`: the PostgreSQL server standing for the vector database stopped (`pg_ctl stop -m
  fast`: open connections are cut) and started again on the same port (`services.restart_postgres`), as an RDS reboot;
  `postgres_restart` waits for the transformation worker to be busy first, so a batch's queries fail mid-statement;
- `worker_kill`: SIGKILL to the transformation function's worker once its CPU time rises (mid-batch);
- `runner_pause`: SIGSTOP, then SIGCONT, to the control plane, as a stalled Firehose;
- `runner_kill`: the delivery runner dies without a flush (the control plane's `runner-crash` endpoint);
- `control_plane_kill`: SIGKILL to the whole control plane, then started again for the recorded services, as `up` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.emulator import services
from harness.emulator import state as st
from harness.emulator.control_plane import ControlPlaneClient, read_info
from harness.emulator.control_plane import start as start_control_plane
from harness.emulator.materializers.databases import rds_dir
from harness.workflows.handle import StackHandle
from harness.workflows.soak.faults import FaultOutcome
from harness.workflows.soak.plan import FAULT_KINDS, WORKER_BUSY_POLL_S, FaultKind

# What the soak's producer and collector call while the faults strike. On AWS they do not stop with Firehose; here the
# control plane's gateway, which passes them to moto, is what runner_pause and control_plane_kill stop.
DATA_PLANE_SERVICES = ("kinesis", "s3", "firehose", "cloudwatch")
KILL_TIMEOUT_S = 10.0


class FaultError(RuntimeError):
    """A fault cannot be set up or undone on this stack: one line saying what to do."""


# ---------------------------------------------------------------------------------------------------------------------
# the vector database's server


def vector_db_record(state_dir: Path, port: int) -> Path:
    """The `service.json` of the local server standing for the vector database (written by the RDS materializer)."""
    for record in sorted(rds_dir(state_dir).glob("*/service.json")):
        data = json.loads(record.read_text())
        if "dbname" in data and int(data.get("port", -1)) == port:
            return record
    raise FaultError(f"no local PostgreSQL server on port {port} is recorded under {rds_dir(state_dir)}: is the "
                     "stack up (`harness status`)?")


def _server(record: Path) -> services.PostgresService:
    return services.PostgresService(**json.loads(record.read_text()))


def stop_vector_db(record: Path) -> None:
    services.stop_postgres(_server(record))


def start_vector_db(record: Path) -> int:
    """Start the stopped server on its port again and record its new pid; the pid."""
    server = services.restart_postgres(_server(record))
    staging = record.with_suffix(".tmp")
    staging.write_text(json.dumps(dataclasses.asdict(server)))
    staging.chmod(0o600)  # the record holds the master password
    staging.replace(record)
    return server.pid


def vector_db_running(record: Path) -> bool:
    server = _server(record)
    return services.pid_alive(server.pid) and services.port_open(server.port)


# ---------------------------------------------------------------------------------------------------------------------
# the control plane and its workers


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process (/proc/<pid>/stat), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


def control_plane_pid(state_dir: Path) -> int:
    info = read_info(state_dir)
    if info is None:
        raise FaultError("the local control plane is not running: run `harness up`")
    return info.pid


def control_plane(state_dir: Path) -> ControlPlaneClient:
    info = read_info(state_dir)
    if info is None:
        raise FaultError("the local control plane is not running: run `harness up`")
    return ControlPlaneClient(info.url)


def wait_gone(pid: int, timeout_s: float = KILL_TIMEOUT_S) -> None:
    """Wait for a killed process to be gone. A control plane this process restarted is its child: until reaped it is a
    zombie (which `services.pid_alive`, and so `read_info`, already count as gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not services.pid_alive(pid):
            return
        time.sleep(0.05)
    raise FaultError(f"process {pid} did not end within {timeout_s:.0f} s of SIGKILL")


def restart_control_plane(state_dir: Path) -> int:
    """Start the control plane again for the stack's recorded services (as `harness up` does); its pid."""
    state = st.load_state(state_dir)
    try:
        running = services.RunningServices.from_dict(state["services"])
    except (KeyError, TypeError) as err:
        raise FaultError(f"the stack records no services to restart the control plane with ({err}): run "
                         "`harness up`") from None
    return start_control_plane(state_dir, running, region=str(state.get("region") or "us-east-1")).pid


# ---------------------------------------------------------------------------------------------------------------------
# the injector


class LocalFaultInjector:
    """Every fault kind, on the local stack in `state_dir`."""

    def __init__(self, state_dir: Path, *, transformation_function: str, delivery_stream: str, vector_db_port: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.state_dir = state_dir
        self.transformation_function = transformation_function
        self.delivery_stream = delivery_stream
        self.vector_db_port = vector_db_port
        self.clock = clock
        self._pg_record = vector_db_record(state_dir, vector_db_port)
        self._paused_pid: int | None = None
        self._pg_stopped = False
        self._killed_control_plane = False

    @classmethod
    def for_stack(cls, state_dir: Path, outputs: Mapping[str, Any]) -> LocalFaultInjector:
        """The injector for the local stack whose outputs are `outputs`."""
        names = ("transformation_function_name", "delivery_stream_name", "vector_db_port")
        missing = [name for name in names if outputs.get(name) in (None, "")]
        if missing:
            raise FaultError(f"the stack has no {', '.join(missing)} output: run `harness up` to deploy it")
        return cls(state_dir, transformation_function=str(outputs["transformation_function_name"]),
                   delivery_stream=str(outputs["delivery_stream_name"]), vector_db_port=int(outputs["vector_db_port"]))

    def supported(self) -> frozenset[FaultKind]:
        return frozenset(FAULT_KINDS)

    def handle_beside_faults(self, handle: StackHandle) -> StackHandle:
        """`handle` with Kinesis, S3, Firehose and CloudWatch straight at moto, so that producing and collecting go on
        while the control plane is paused or killed, as they do on AWS while Firehose stalls."""
        state = st.load_state(self.state_dir)
        try:
            moto_url = services.RunningServices.from_dict(state["services"]).moto.endpoint_url
        except (KeyError, TypeError) as err:
            raise FaultError(f"the stack records no moto server ({err}): run `harness up`") from None
        urls = {**handle.aws.service_urls, **dict.fromkeys(DATA_PLANE_SERVICES, moto_url)}
        return StackHandle(name=handle.name, outputs=handle.outputs,
                           aws=dataclasses.replace(handle.aws, service_urls=urls))

    def inject(self, kind: FaultKind, duration_s: float, outcome: FaultOutcome, *, slot_s: float,
               stop: threading.Event) -> None:
        if kind == "postgres_restart":
            self._postgres_restart(duration_s, outcome, slot_s=slot_s, stop=stop)
        elif kind == "db_outage":
            # Longer than the processor's retry window: batches that arrive meanwhile fail into the error output, and
            # the soak's redrive after the drain must bring every one of them back.
            pid = self._postgres_down(duration_s, outcome, stop)
            outcome.detail = f"vector database down {duration_s:.1f} s, back on port {self.vector_db_port} (pid {pid})"
        elif kind == "worker_kill":
            self._worker_kill(outcome, slot_s=slot_s, stop=stop)
        elif kind == "runner_pause":
            self._runner_pause(duration_s, outcome, stop)
        elif kind == "runner_kill":
            self._runner_kill(duration_s, outcome, stop)
        elif kind == "control_plane_kill":
            self._control_plane_kill(duration_s, outcome, stop)
        else:
            raise FaultError(f"unknown fault kind {kind!r}")

    def heal(self) -> None:
        if self._killed_control_plane:
            restart_control_plane(self.state_dir)
            self._killed_control_plane = False
        if self._paused_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._paused_pid, signal.SIGCONT)
            self._paused_pid = None
        if self._pg_stopped or not vector_db_running(self._pg_record):
            start_vector_db(self._pg_record)
            self._pg_stopped = False

    # ---- the kinds ----

    def _postgres_restart(self, duration_s: float, outcome: FaultOutcome, *, slot_s: float,
                          stop: threading.Event) -> None:
        # Stopped while a batch is being transformed when one comes along in time: its queries fail mid-statement.
        _, busy = self._busy_worker(budget_s=max(1.0, slot_s - duration_s - 2), slot_s=slot_s, stop=stop)
        pid = self._postgres_down(duration_s, outcome, stop)
        outcome.detail = (f"stopped {'mid-batch' if busy else 'between batches'}, down {duration_s:.1f} s, "
                          f"back on port {self.vector_db_port} (pid {pid})")

    def _postgres_down(self, duration_s: float, outcome: FaultOutcome, stop: threading.Event) -> int:
        """The vector database stopped for `duration_s`, then started on its port again; the new pid."""
        stop_vector_db(self._pg_record)
        self._pg_stopped = True
        outcome.injected = True
        stop.wait(duration_s)
        pid = start_vector_db(self._pg_record)
        self._pg_stopped = False
        return pid

    def _worker(self) -> dict[str, Any]:
        return dict(control_plane(self.state_dir).status()["functions"].get(self.transformation_function) or {})

    def _busy_worker(self, *, budget_s: float, slot_s: float, stop: threading.Event) -> tuple[int | None, bool]:
        """The transformation worker's pid once it is busy (its CPU time moves: it is transforming a batch; an idle
        worker blocks on its pipe), or whatever is known when `budget_s` (or the slot but a second) runs out."""
        now = self.clock()
        deadline = min(now + budget_s, now + slot_s - 1.0)
        pid: int | None = None
        while pid is None and self.clock() < deadline and not stop.is_set():
            pid = self._worker().get("worker_pid")
            if pid is None:
                stop.wait(0.5)
        if pid is None:
            return None, False
        last = cpu_ticks(pid)
        while self.clock() < deadline and not stop.is_set():
            time.sleep(WORKER_BUSY_POLL_S)
            ticks = cpu_ticks(pid)
            if ticks is None:
                return pid, False
            if last is not None and ticks > last:
                return pid, True
            last = ticks
        return pid, False

    def _worker_kill(self, outcome: FaultOutcome, *, slot_s: float, stop: threading.Event) -> None:
        errors_before = int(self._worker().get("errors", 0))
        pid, busy = self._busy_worker(budget_s=slot_s, slot_s=slot_s, stop=stop)
        if pid is None:
            outcome.detail = "not injected: the transformation worker never started in the fault's slot"
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        outcome.injected = True
        time.sleep(1.0)
        errors_after = int(self._worker().get("errors", 0))
        outcome.detail = (f"worker pid {pid} killed " + ("while busy" if busy else "idle (no busy moment in its slot)")
                          + (", its invocation failed (mid-batch)" if errors_after > errors_before else ""))

    def _runner_pause(self, duration_s: float, outcome: FaultOutcome, stop: threading.Event) -> None:
        pid = control_plane_pid(self.state_dir)
        os.kill(pid, signal.SIGSTOP)
        self._paused_pid = pid
        outcome.injected = True
        stop.wait(duration_s)
        os.kill(pid, signal.SIGCONT)
        self._paused_pid = None
        outcome.detail = f"control plane pid {pid} stopped for {duration_s:.1f} s"

    def _runner_kill(self, duration_s: float, outcome: FaultOutcome, stop: threading.Event) -> None:
        # The delivery runner alone dies (the control plane lives on) and a fresh one resumes from its checkpoint.
        result = control_plane(self.state_dir).crash_runner(self.delivery_stream)
        outcome.injected = True
        stop.wait(duration_s)
        outcome.detail = (f"runner of {self.delivery_stream} killed holding {result['records_lost_from_memory']} "
                          "record(s) in memory, restarted from its checkpoint")

    def _control_plane_kill(self, duration_s: float, outcome: FaultOutcome, stop: threading.Event) -> None:
        # SIGKILL: no flush, no checkpoint save, buffered records gone from memory. The restarted control plane must
        # read them again from its last checkpoint (at-least-once: records written but not yet checkpointed come twice).
        pid = control_plane_pid(self.state_dir)
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        self._killed_control_plane = True
        outcome.injected = True
        stop.wait(min(1.0, duration_s))
        started = restart_control_plane(self.state_dir)
        self._killed_control_plane = False
        outcome.detail = f"control plane pid {pid} killed (SIGKILL), restarted as pid {started}"
