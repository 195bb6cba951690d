"""The emulator's fault injector against a real PostgreSQL: the vector database goes down and comes back on its own
port with its record updated, as an RDS reboot; an outage cut short (the soak interrupted) is mended by `heal()`."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.emulator import services
from harness.emulator.faults import LocalFaultInjector, stop_vector_db, vector_db_running
from harness.emulator.materializers.databases import rds_dir
from harness.workflows.soak.faults import FaultOutcome


@pytest.fixture
def vector_db(tmp_path: Path) -> Iterator[tuple[Path, services.PostgresService]]:
    """A PostgreSQL server recorded as the RDS materializer records the vector database's."""
    server = services.start_postgres(tmp_path / "rds")
    record = rds_dir(tmp_path) / "vectors" / "service.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps(dataclasses.asdict(server)))
    try:
        yield record, server
    finally:
        services.stop_postgres(services.PostgresService(**json.loads(record.read_text())))


def injector(state_dir: Path, port: int) -> LocalFaultInjector:
    return LocalFaultInjector(state_dir, transformation_function="t", delivery_stream="d", vector_db_port=port)


def test_a_db_outage_stops_the_server_and_starts_it_again_on_its_port(
        tmp_path: Path, vector_db: tuple[Path, services.PostgresService]) -> None:
    record, server = vector_db
    seen_down = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if not services.port_open(server.port):
                seen_down.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    outcome = FaultOutcome("db_outage", 0.0)
    try:
        injector(tmp_path, server.port).inject("db_outage", 1.0, outcome, slot_s=30.0, stop=threading.Event())
    finally:
        done.set()
        watcher.join()

    after = services.PostgresService(**json.loads(record.read_text()))
    assert seen_down.is_set()
    assert outcome.injected and outcome.detail == (f"vector database down 1.0 s, back on port {server.port} "
                                                   f"(pid {after.pid})")
    assert after == dataclasses.replace(server, pid=after.pid) and after.pid != server.pid
    assert services.postgres_healthy(after)
    assert record.stat().st_mode & 0o077 == 0  # the record holds the master password


def test_heal_starts_a_server_a_cut_short_fault_left_stopped(
        tmp_path: Path, vector_db: tuple[Path, services.PostgresService]) -> None:
    record, server = vector_db
    faults = injector(tmp_path, server.port)
    stop_vector_db(record)
    assert not vector_db_running(record)

    faults.heal()

    assert vector_db_running(record)
    assert services.postgres_healthy(services.PostgresService(**json.loads(record.read_text())))
