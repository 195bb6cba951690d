"""`harness down` then `harness up`, then traffic: every record sent to the new stack is read and ends in the
recommendations (or the error output), and the delivery runner's counters start again from 0.

Before the fix the runner's checkpoint survived `down`: the recreated stream's first records (as many as the old stack
had read) were never read, never delivered, never counted. The stack here is its own (it goes down and up again), in
a temporary state directory, with a tiny serving bundle and embeddings in its artifacts directory so that `up` loads
them and every valid session gets recommendations without running the ETL and the trainer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.cli.target import local_handle
from harness.emulator import state as st
from harness.emulator.control_plane import ControlPlaneClient, control_plane_dir, read_info
from harness.workflows import soak
from harness.workflows.soak.run import Collector, ProducedLog, put_tracked
from harness.workflows.train import embedding_csv
from tests.integration.conftest import run_harness, tail
from tests.integration.test_streaming import CITIES, COUNTRIES, ITEMS, item_vectors, write_bundle

FIRST_WAVE = 30
SECOND_WAVE = 40
UP_TIMEOUT_S = 900
DELIVERY_TIMEOUT_S = 240


def write_artifacts(directory: Path) -> None:
    """What `harness train` would publish, tiny: the serving bundle and both embeddings files."""
    write_bundle(directory / "serving")
    (directory / "embeddings").mkdir(parents=True)
    (directory / "embeddings" / "item_embeddings.csv").write_text(embedding_csv(ITEMS, item_vectors()))
    (directory / "embeddings" / "user_embeddings.csv").write_text(
        embedding_csv([100 + i for i in range(5)], item_vectors()[:5]))


def sessions(count: int, wave: str) -> list[dict[str, Any]]:
    """Valid sessions (the event contract) with fresh session ids."""
    return [{"session_id": f"{wave}-{uuid.uuid4()}", "customer_number": 100 + i % 5, "city": CITIES[i % 4],
             "country": COUNTRIES[i % 4], "credit_limit": 20000 + 1000 * i,
             "browse_history": [{"product_code": ITEMS[i % len(ITEMS)], "quantity": str(1 + i % 3),
                                 "in_shopping_cart": i % 2 == 0}]} for i in range(count)]


def harness(state_dir: Path, *args: str) -> None:
    result = run_harness(state_dir, *args, timeout=UP_TIMEOUT_S)
    if result.returncode != 0:
        pytest.fail(f"`python -m harness {' '.join(args)}` exited {result.returncode}:\n{tail(result)}", pytrace=False)


def runner(state_dir: Path) -> dict[str, Any]:
    info = read_info(state_dir)
    assert info is not None, "the control plane is not running"
    streams = ControlPlaneClient(info.url).status()["delivery_streams"]
    assert len(streams) == 1, streams
    return dict(next(iter(streams.values())))


def send_and_collect(state_dir: Path, batch: list[dict[str, Any]]) -> tuple[soak.Reconciliation, dict[str, Any]]:
    """Put the sessions into the stack's stream, wait until each is in the bucket (or the time is up); what was found,
    reconciled by session_id, and the runner's counters once it holds nothing."""
    target = soak.resolve(local_handle(state_dir))
    kinesis = target.handle.client("kinesis")
    log = ProducedLog()
    put_tracked(kinesis, target.stream.stream_name, batch, log)
    assert (len(log.sent_ids), log.refused) == (len(batch), 0)
    collector = Collector(target, since=datetime(2000, 1, 1, tzinfo=UTC))
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        collector.collect()
        found = {record.session_id for record in collector.records}
        counters = runner(state_dir)
        if (found >= set(log.sent_ids) and counters.get("records_buffered") == 0) or time.monotonic() > deadline:
            return soak.reconcile(log.sent_ids, collector.records), counters
        time.sleep(2)


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("down-up")
    write_artifacts(state_dir / "artifacts")
    try:
        yield state_dir
    finally:
        run_harness(state_dir, "down", timeout=120)


def test_after_down_and_up_every_record_is_read_and_delivered_and_the_counters_restart(stack_dir: Path) -> None:
    harness(stack_dir, "up")
    first, first_counters = send_and_collect(stack_dir, sessions(FIRST_WAVE, "before-down"))
    assert first.ok and first.delivered == FIRST_WAVE, first.problems()
    assert first_counters["events_read"] == FIRST_WAVE

    harness(stack_dir, "down")
    assert not control_plane_dir(stack_dir).exists()  # checkpoints and counters went with the stack
    assert not st.state_path(stack_dir).exists()
    harness(stack_dir, "up")
    second, counters = send_and_collect(stack_dir, sessions(SECOND_WAVE, "after-up"))

    # Every one of the new stack's records is read and ends with recommendations; nothing is missing or doubled.
    assert second.ok, second.problems()
    assert (second.sent, second.delivered, second.failed, second.foreign) == (SECOND_WAVE, SECOND_WAVE, 0, 0)
    # The runner counts the new stream's records from 0, not on top of the old stack's.
    assert (counters["events_read"], counters["records_delivered"], counters["records_failed"]) == (
        SECOND_WAVE, SECOND_WAVE, 0)
