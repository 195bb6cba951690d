"""Soak: drive the local stack at a steady rate for minutes, inject faults, then prove nothing was lost or doubled.

`run_soak` sends shoppers' sessions to the stack's Kinesis stream at a steady rate (sessions from `recsys.events`, made
from the source database's customers and products, every one with a fresh session_id). With faults on, a second
thread, at random moments (seeded), one at a time and every kind at least once:

- `postgres_restart`: stops the vector database's server (`pg_ctl stop -m fast`: open connections are cut, in-flight
  queries fail) for a few seconds and starts it again on the same port, as an RDS reboot or failover does;
- `worker_kill`: SIGKILLs the transformation function's worker process while it is busy (its CPU time is seen
  rising: mid-batch), as a Lambda sandbox that dies mid-invocation;
- `runner_pause`: SIGSTOPs the local control plane (the process that runs the delivery-stream runner and the Lambda
  API) for a few seconds, then SIGCONTs it, as a stalled Firehose: records pile up in Kinesis meanwhile.

The faults are injected from outside, through pids the stack records (`state.json`, the daemon's status API, the RDS
server's `service.json`), because the daemon has no control endpoint for them.

Then it waits until every session it sent shows up in the recommendations bucket and reconciles by session_id: each
one must be in exactly one delivered record (with recommendations) or exactly one error-output record (Firehose's
`processing-failed` documents, whose `rawData` is the original event). A session found nowhere is lost, one found twice
is a duplicate: either makes the soak fail. Objects written before the soak started are not read, and records of
other producers (the demo, earlier soaks) are counted as foreign and otherwise ignored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import json
import math
import os
import pwd
import random
import shlex
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from harness import state as st
from harness import stream as streaming

FaultKind = Literal["postgres_restart", "worker_kill", "runner_pause"]
FAULT_KINDS: tuple[FaultKind, ...] = ("postgres_restart", "worker_kill", "runner_pause")
ObjectKind = Literal["delivered", "error"]

REPORT_FILE = "soak-report.json"
MAX_MINUTES = 24 * 60
MAX_RATE = 2_000.0
# Faults stay out of the first and last seconds of the run: the first records show the stack works before anything
# breaks, and the last fault has ended before production stops.
QUIET_EDGE_S = 5.0
FAULT_DURATION_S = (3.0, 8.0)
WORKER_BUSY_POLL_S = 0.01
DEFAULT_DRAIN_TIMEOUT_S = 240.0
COLLECT_INTERVAL_S = 3.0
PUT_ATTEMPTS = 5


class SoakError(RuntimeError):
    """A user-facing problem before or while soaking (stack not ready, bad option): printed as one message."""


# ---------------------------------------------------------------------------------------------------------------------
# options (pure)


def parse_minutes(value: float) -> float:
    if not math.isfinite(value) or value <= 0 or value > MAX_MINUTES:
        raise SoakError(f"--minutes must be more than 0 and at most {MAX_MINUTES} (a day), got {value:g}")
    return float(value)


def parse_soak_rate(text: str) -> float:
    """`20/s` or `20` -> 20.0; a soak holds a steady rate, so `max` is refused."""
    try:
        rate = streaming.parse_rate(text)
    except ValueError as err:
        raise SoakError(str(err)) from None
    if rate is None:
        raise SoakError(f"--rate must be a steady rate in events per second, e.g. 20/s (got {text!r}): a soak "
                        "measures what the stack sustains, `max` would only measure how fast Kinesis accepts")
    if not 0 < rate <= MAX_RATE:
        raise SoakError(f"--rate must be more than 0 and at most {MAX_RATE:g}/s, got {rate:g}/s")
    return rate


# ---------------------------------------------------------------------------------------------------------------------
# the fault plan (pure)


@dataclass(frozen=True)
class PlannedFault:
    at_s: float  # seconds after the start of production
    kind: FaultKind
    duration_s: float  # how long PostgreSQL stays down / the runner stays paused / we wait for a busy worker
    window_end_s: float  # the fault must be over by then (the next one's slot begins)


def plan_faults(duration_s: float, rng: random.Random) -> list[PlannedFault]:
    """Every kind at least once (once per started minute each, in random order), at random moments, one at a time:
    the run between the quiet edges is cut into one slot per fault and each fault starts at a random point of its slot
    early enough to end inside it."""
    window = duration_s - 2 * QUIET_EDGE_S
    if window <= 0:
        return []
    rounds = max(1, math.ceil(duration_s / 60.0 - 1e-9))
    kinds: list[FaultKind] = []
    for _ in range(rounds):  # shuffled within each round, so every minute sees each kind once
        kinds += rng.sample(FAULT_KINDS, len(FAULT_KINDS))
    slot = window / len(kinds)
    plan = []
    for index, kind in enumerate(kinds):
        start, end = QUIET_EDGE_S + index * slot, QUIET_EDGE_S + (index + 1) * slot
        length = min(rng.uniform(*FAULT_DURATION_S), slot * 0.6)
        at = start + rng.uniform(0.0, max(0.0, slot - length) * 0.5)
        plan.append(PlannedFault(round(at, 2), kind, round(length, 2), round(end, 2)))
    return plan


# ---------------------------------------------------------------------------------------------------------------------
# reading what was delivered (pure)


@dataclass(frozen=True)
class FoundRecord:
    session_id: str | None  # None: the record could not be read as one of the producer's events
    kind: ObjectKind
    has_recommendations: bool = True


def _json_values(text: str) -> Iterator[Any]:
    """Every JSON value in `text`, newline-separated or not (the lab's processor wrote records back to back)."""
    decoder = json.JSONDecoder()
    index, end = 0, len(text)
    while index < end:
        while index < end and text[index] in " \t\r\n":
            index += 1
        if index >= end:
            return
        value, index = decoder.raw_decode(text, index)
        yield value


def records_in_object(body: bytes, kind: ObjectKind) -> list[FoundRecord]:
    """The records of one object: delivered records carry the session itself, error records (Firehose's
    processing-failed documents) carry it base64-encoded in `rawData`."""
    try:
        values = list(_json_values(body.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return [FoundRecord(None, kind)]
    found = []
    for value in values:
        if kind == "error":
            try:
                value = json.loads(base64.b64decode(value["rawData"], validate=True))
            except (KeyError, TypeError, ValueError, binascii.Error):
                found.append(FoundRecord(None, kind))
                continue
        session_id = value.get("session_id") if isinstance(value, dict) else None
        found.append(FoundRecord(
            session_id if isinstance(session_id, str) else None, kind,
            has_recommendations=kind == "error" or (isinstance(value, dict) and "recommended_items" in value)))
    return found


@dataclass(frozen=True)
class Reconciliation:
    sent: int
    delivered: int
    failed: int
    missing: tuple[str, ...]
    duplicated: dict[str, int]
    without_recommendations: tuple[str, ...]
    unreadable: int
    foreign: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.without_recommendations or self.unreadable)

    def problems(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} sent session(s) are in no delivered and no error-output record, e.g. "
                       f"{', '.join(sorted(self.missing)[:3])}")
        if self.duplicated:
            examples = ", ".join(f"{sid} x{n}" for sid, n in sorted(self.duplicated.items())[:3])
            out.append(f"{len(self.duplicated)} session(s) appear more than once, e.g. {examples}")
        if self.without_recommendations:
            out.append(f"{len(self.without_recommendations)} delivered record(s) have no recommended_items, e.g. "
                       f"{', '.join(sorted(self.without_recommendations)[:3])}")
        if self.unreadable:
            out.append(f"{self.unreadable} record(s) in the bucket are not readable as sessions")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "delivered": self.delivered, "failed": self.failed,
                "missing": len(self.missing), "duplicated": len(self.duplicated),
                "without_recommendations": len(self.without_recommendations), "unreadable": self.unreadable,
                "foreign": self.foreign, "ok": self.ok, "missing_examples": sorted(self.missing)[:10],
                "duplicated_examples": dict(sorted(self.duplicated.items())[:10]), "problems": self.problems()}


def reconcile(sent_ids: Iterable[str], found: Iterable[FoundRecord]) -> Reconciliation:
    """Every sent session must be in exactly one delivered or exactly one error-output record."""
    sent = set(sent_ids)
    appearances: Counter[str] = Counter()
    kinds: dict[str, ObjectKind] = {}
    bare: set[str] = set()
    unreadable = foreign = 0
    for record in found:
        if record.session_id is None:
            unreadable += 1
        elif record.session_id not in sent:
            foreign += 1
        else:
            appearances[record.session_id] += 1
            kinds[record.session_id] = record.kind
            if not record.has_recommendations:
                bare.add(record.session_id)
    once = [sid for sid, n in appearances.items() if n == 1]
    return Reconciliation(
        sent=len(sent),
        delivered=sum(1 for sid in once if kinds[sid] == "delivered"),
        failed=sum(1 for sid in once if kinds[sid] == "error"),
        missing=tuple(sorted(sent - appearances.keys())),
        duplicated={sid: n for sid, n in appearances.items() if n > 1},
        without_recommendations=tuple(sorted(bare)),
        unreadable=unreadable,
        foreign=foreign,
    )


# ---------------------------------------------------------------------------------------------------------------------
# the stack's parts the soak touches


@dataclass(frozen=True)
class SoakTarget:
    stream: streaming.StreamTarget
    transformation_function: str
    vector_db: dict[str, Any]  # host, port, user, password, dbname
    error_root: str


def _output(state: st.State, name: str) -> Any:
    entry = (state.get("outputs") or {}).get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def resolve(state_dir: Path) -> SoakTarget:
    try:
        stream_target = streaming.resolve_target(state_dir)
    except streaming.StreamError as err:
        raise SoakError(str(err)) from None
    state = st.load_state(state_dir)
    names = {n: _output(state, n) for n in ("transformation_function_name", "vector_db_host", "vector_db_port",
                                             "vector_db_master_username", "vector_db_master_password")}
    missing = [n for n, v in names.items() if v in (None, "")]
    if missing:
        raise SoakError(f"the stack has no {', '.join(missing)} output: run `python -m harness up` to deploy it")
    firehose = streaming.aws_client(stream_target, "firehose")
    description = firehose.describe_delivery_stream(DeliveryStreamName=stream_target.delivery_stream)
    return SoakTarget(
        stream=stream_target, transformation_function=str(names["transformation_function_name"]),
        vector_db={"host": names["vector_db_host"], "port": int(names["vector_db_port"]),
                   "user": names["vector_db_master_username"], "password": names["vector_db_master_password"],
                   "dbname": _output(state, "vector_db_name") or "postgres"},
        error_root=streaming.error_output_root(description),
    )


def count_item_embeddings(target: SoakTarget) -> int:
    import psycopg2

    try:
        conn = psycopg2.connect(connect_timeout=10, **target.vector_db)
    except psycopg2.Error as err:
        raise SoakError(f"cannot reach the vector database {target.vector_db['host']}:{target.vector_db['port']}: "
                        f"{str(err).strip()}; is the stack up (`python -m harness status`)?") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('item_emb') IS NOT NULL")
            if not cur.fetchone()[0]:
                return 0
            cur.execute("SELECT COUNT(*) FROM item_emb")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _artifacts_ready(state_dir: Path, target: SoakTarget) -> tuple[str, bool]:
    bucket = _output(st.load_state(state_dir), "artifacts_bucket_id")
    if not bucket:
        raise SoakError("the stack has no artifacts_bucket_id output: run `python -m harness up` to deploy it")
    s3 = streaming.aws_client(target.stream, "s3")
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}
    wanted = {"serving/model.safetensors", "serving/preprocessing.json", "embeddings/item_embeddings.csv",
              "embeddings/user_embeddings.csv"}
    return str(bucket), wanted <= keys


def invoke_loader(state_dir: Path, target: SoakTarget, bucket: str) -> None:
    """The embeddings loader with its documented event (docs/ARCHITECTURE.md), through the daemon's Lambda API."""
    import boto3

    from harness.daemon import read_daemon_info

    state = st.load_state(state_dir)
    name = _output(state, "embeddings_loader_function_name")
    info = read_daemon_info(state_dir)
    if not name or info is None:
        raise SoakError("the embeddings loader cannot be invoked (no function output or no running control plane): "
                        "run `python -m harness up`")
    client = boto3.client("lambda", endpoint_url=info.url, region_name=target.stream.region,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    response = client.invoke(FunctionName=name, Payload=json.dumps({
        "bucket": bucket, "item_key": "embeddings/item_embeddings.csv", "user_key": "embeddings/user_embeddings.csv"}))
    payload = response["Payload"].read().decode("utf-8", errors="replace")
    if response.get("FunctionError"):
        raise SoakError(f"the embeddings loader failed: {payload[:500]}")


def ensure_ready(state_dir: Path, *, prepare: bool, say: Callable[[str], None]) -> SoakTarget:
    """The soak needs customers and products in the source, the serving bundle, and embeddings in pgvector. With
    `prepare`, missing parts are made the way the demo makes them (seed, ETL, training, the loader); otherwise the
    message says what to run."""
    target = resolve(state_dir)
    try:
        streaming.load_catalogue(target.stream)
    except streaming.StreamError as err:
        if not prepare:
            raise SoakError(f"{err}; or pass --prepare") from None
        from harness.seed import seed_source

        say("preparing: seeding the source database")
        _preparing("seeding the source", lambda: seed_source(state_dir, scale=1))
    if count_item_embeddings(target) > 0:
        return target
    if not prepare:
        raise SoakError("the vector database holds no item embeddings, so every record would fail: run "
                        "`python -m harness demo` first, or pass --prepare")
    bucket, ready = _artifacts_ready(state_dir, target)
    if not ready:
        from harness.etl import run_etl
        from harness.train import train_and_publish

        say("preparing: running the ETL (Glue job on local Spark)")
        _preparing("the ETL", lambda: run_etl(state_dir))
        say("preparing: training and publishing embeddings")
        _preparing("training", lambda: train_and_publish(state_dir))
    say("preparing: loading the embeddings into pgvector")
    invoke_loader(state_dir, target, bucket)
    if count_item_embeddings(target) == 0:
        raise SoakError("the embeddings loader ran but item_emb is still empty; see the loader's log under "
                        f"{st.logs_dir(state_dir)}")
    return target


def _preparing(stage: str, run: Callable[[], Any]) -> None:
    # The stages raise their own user-facing errors (SeedError, EtlError, ...: RuntimeErrors with a message that says
    # what to do); the soak reports them as its own, one message, no traceback.
    try:
        run()
    except SoakError:
        raise
    except (RuntimeError, ValueError) as err:
        raise SoakError(f"preparing the stack failed at {stage}: {err}") from None


# ---------------------------------------------------------------------------------------------------------------------
# faults, from outside


@dataclass
class FaultOutcome:
    kind: FaultKind
    planned_at_s: float
    started_at_s: float | None = None
    duration_s: float = 0.0
    injected: bool = False
    detail: str = ""


def _postgres_os_user() -> pwd.struct_passwd | None:
    from harness import services

    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(services.POSTGRES_OS_USER)


def vector_db_record(state_dir: Path, port: int) -> Path:
    """The `service.json` of the local server standing for the vector database (written by the RDS materializer)."""
    from harness.materializers.databases import rds_dir

    for record in sorted(rds_dir(state_dir).glob("*/service.json")):
        data = json.loads(record.read_text())
        if "dbname" in data and int(data.get("port", -1)) == port:
            return record
    raise SoakError(f"no local PostgreSQL server on port {port} is recorded under {rds_dir(state_dir)}")


def _ensure_traversable(path: Path) -> None:
    """o+x on every ancestor of the data dir, as `harness.services` sets when it starts the server: when we are root the
    server runs as another user, and a directory whose mode was tightened since (pytest resets its temp root to 0700
    at every session start) would leave pg_ctl and the server unable to reach their own files."""
    if os.geteuid() != 0:
        return
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def stop_postgres(record: Path) -> None:
    from harness import services

    _ensure_traversable(Path(json.loads(record.read_text())["data_dir"]))
    services.stop_postgres(services.PostgresService(**json.loads(record.read_text())))


def start_postgres_same_port(record: Path) -> int:
    """Start the stopped server with the options it last ran with (`postmaster.opts`: same port, same settings), so
    the functions' VECTOR_DB_PORT stays right; records the new pid. `harness.services.start_postgres` always picks a
    new free port, which would strand every client."""
    from harness import services

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
    from harness import services

    data = json.loads(record.read_text())
    return services.pid_alive(int(data["pid"])) and services.port_open(int(data["port"]))


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime + stime


def daemon_status(state_dir: Path) -> dict[str, Any]:
    from harness.daemon import DaemonClient, read_daemon_info

    info = read_daemon_info(state_dir)
    if info is None:
        raise SoakError("the local control plane is not running: run `python -m harness up`")
    return DaemonClient(info.url).status()


def daemon_pid(state_dir: Path) -> int:
    from harness.daemon import read_daemon_info

    info = read_daemon_info(state_dir)
    if info is None:
        raise SoakError("the local control plane is not running: run `python -m harness up`")
    return info.pid


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
        stop_postgres(self._pg_record)
        self._pg_stopped = True
        outcome.injected = True
        self.stop.wait(fault.duration_s)
        pid = start_postgres_same_port(self._pg_record)
        self._pg_stopped = False
        outcome.detail = (f"stopped {'mid-batch' if busy else 'between batches'}, down {fault.duration_s:.1f} s, "
                          f"back on port {self.target.vector_db['port']} (pid {pid})")

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

    def restore(self) -> None:
        if self._paused_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._paused_pid, signal.SIGCONT)
            self._paused_pid = None
        if self._pg_stopped or not postgres_running(self._pg_record):
            start_postgres_same_port(self._pg_record)
            self._pg_stopped = False


# ---------------------------------------------------------------------------------------------------------------------
# producing


@dataclass
class ProducedLog:
    sent_ids: list[str] = field(default_factory=list)
    refused: int = 0


def put_tracked(kinesis: Any, stream_name: str, sessions: Sequence[Mapping[str, Any]], log: ProducedLog,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """PutRecords, re-sending only what Kinesis refused; the log holds exactly the session_ids Kinesis accepted."""
    pending = [(str(s["session_id"]), json.dumps(s, separators=(",", ":")).encode()) for s in sessions]
    for attempt in range(PUT_ATTEMPTS):
        response = kinesis.put_records(StreamName=stream_name, Records=[
            {"Data": data, "PartitionKey": session_id} for session_id, data in pending])
        refused = []
        for (session_id, data), result in zip(pending, response.get("Records", []), strict=True):
            if result.get("ErrorCode"):
                refused.append((session_id, data))
            else:
                log.sent_ids.append(session_id)
        if not refused:
            return
        pending = refused
        if attempt + 1 < PUT_ATTEMPTS:
            sleep(min(0.1 * 2**attempt, 2.0))
    log.refused += len(pending)


# ---------------------------------------------------------------------------------------------------------------------
# collecting what was delivered


class Collector:
    """Reads each object of the recommendations bucket once (objects are immutable), newer than the soak's start."""

    def __init__(self, target: SoakTarget, since: datetime) -> None:
        self.target = target
        self.since = since
        self.s3 = streaming.aws_client(target.stream, "s3")
        self.records: list[FoundRecord] = []
        self.objects: dict[ObjectKind, int] = {"delivered": 0, "error": 0}
        self._seen: set[str] = set()

    def kind_of(self, key: str) -> ObjectKind:
        root = self.target.error_root
        return "error" if (key.startswith(root) if root else "processing-failed" in key) else "delivered"

    def collect(self) -> None:
        bucket = self.target.stream.bucket
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key in self._seen or obj["LastModified"] < self.since:
                    continue
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                if key.endswith(".gz"):
                    body = gzip.decompress(body)
                kind = self.kind_of(key)
                self.records.extend(records_in_object(body, kind))
                self.objects[kind] += 1
                self._seen.add(key)


# ---------------------------------------------------------------------------------------------------------------------
# the run


@dataclass
class SoakProgress:
    elapsed_s: float = 0.0
    sent: int = 0
    found: int = 0
    phase: str = "starting"
    fault: str = ""


@dataclass
class SoakReport:
    started_at: str
    minutes: float
    rate: float
    faults_enabled: bool
    seed: int
    production_s: float
    achieved_rate: float
    refused_by_kinesis: int
    drain_s: float
    drain_timed_out: bool
    objects: dict[str, int]
    faults: list[dict[str, Any]]
    fault_errors: str | None
    reconciliation: dict[str, Any]
    runner: dict[str, Any]
    ok: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def runner_counters(target: SoakTarget) -> dict[str, Any]:
    stats = streaming.runner_stats(target.stream) or {}
    return {k: stats.get(k) for k in ("events_read", "records_delivered", "records_failed", "records_dropped",
                                      "records_buffered", "invocations", "invocation_failures", "last_error")}


def run_soak(state_dir: Path, *, minutes: float, rate: float, faults: bool, seed: int | None = None,
             prepare: bool = False, drain_timeout_s: float = DEFAULT_DRAIN_TIMEOUT_S,
             progress: Callable[[SoakProgress], None] | None = None,
             say: Callable[[str], None] = lambda text: None) -> SoakReport:
    minutes = parse_minutes(minutes)
    if not 0 < rate <= MAX_RATE:
        raise SoakError(f"--rate must be more than 0 and at most {MAX_RATE:g}/s, got {rate:g}/s")
    target = ensure_ready(state_dir, prepare=prepare, say=say)
    try:
        catalogue = streaming.load_catalogue(target.stream)
    except streaming.StreamError as err:
        raise SoakError(str(err)) from None
    seed = time.time_ns() if seed is None else seed
    rng = random.Random(seed)
    duration_s = minutes * 60.0
    total = max(1, math.ceil(rate * duration_s))
    plan = plan_faults(duration_s, random.Random(rng.getrandbits(64))) if faults else []
    # Fresh session ids per soak (seeded from `seed`): a duplicate can only be the pipeline's doing.
    sessions = streaming.ev.generate_sessions(catalogue, total, seed=rng.getrandbits(64))
    kinesis = streaming.aws_client(target.stream, "kinesis")
    since = datetime.now(UTC).replace(microsecond=0)
    collector = Collector(target, since)
    injector = FaultInjector(state_dir, target, plan) if plan else None
    state = SoakProgress()
    log = ProducedLog()

    def tick(phase: str) -> None:
        state.phase = phase
        state.elapsed_s = time.monotonic() - started
        state.sent = len(log.sent_ids)
        state.fault = injector.current() if injector else ""
        if progress:
            progress(state)

    started = time.monotonic()
    if injector:
        injector.start(started)
    try:
        for offset, count in streaming.pacing(total, rate):
            delay = started + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            put_tracked(kinesis, target.stream.stream_name, [next(sessions) for _ in range(count)], log)
            tick("producing")
        production_s = time.monotonic() - started
        if injector:
            tick("waiting for the last fault to end")
            injector.join()
    finally:
        if injector:
            injector.stop.set()
            injector.join()
            injector.restore()

    drain_started = time.monotonic()
    wanted = set(log.sent_ids)
    timed_out = False
    while True:
        collector.collect()
        found = {r.session_id for r in collector.records if r.session_id in wanted}
        state.found = len(found)
        tick("draining")
        if len(found) >= len(wanted):
            break
        if time.monotonic() - drain_started > drain_timeout_s:
            timed_out = True
            break
        time.sleep(COLLECT_INTERVAL_S)
    # Everything is found; a duplicate could still be in flight. Wait until the runner holds nothing, then read again.
    settle_deadline = time.monotonic() + 60.0
    while time.monotonic() < settle_deadline and (runner_counters(target).get("records_buffered") or 0) > 0:
        tick("settling")
        time.sleep(1.0)
    collector.collect()
    drain_s = time.monotonic() - drain_started
    result = reconcile(log.sent_ids, collector.records)
    outcomes = [asdict(o) for o in injector.outcomes] if injector else []
    not_injected = [o for o in outcomes if not o["injected"]]
    report = SoakReport(
        started_at=since.isoformat(), minutes=minutes, rate=rate, faults_enabled=faults, seed=seed,
        production_s=round(production_s, 2), achieved_rate=round(len(log.sent_ids) / max(production_s, 1e-9), 2),
        refused_by_kinesis=log.refused, drain_s=round(drain_s, 2), drain_timed_out=timed_out,
        objects=dict(collector.objects), faults=outcomes,
        fault_errors=(injector.error if injector else None) or (
            f"{len(not_injected)} planned fault(s) were not injected" if not_injected else None),
        reconciliation=result.as_dict(), runner=runner_counters(target),
        # A soak asked for faults that could not inject them proves less than it claims: it fails too.
        ok=result.ok and log.refused == 0 and not not_injected and not (injector and injector.error),
    )
    write_report(state_dir, report)
    return report


def write_report(state_dir: Path, report: SoakReport) -> Path:
    path = state_dir / REPORT_FILE
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    staging.replace(path)
    return path
