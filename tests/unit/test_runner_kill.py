"""`FirehoseRunner.crash()`, the soak's `runner_kill`: the crashed runner writes nothing more, not even from a poll
already under way, returns from `run` without the flush a clean stop does, and its successor, built from the same
state file, delivers every record the crashed one held in memory."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from harness.emulator import firehose_runner as fr
from tests.unit.test_firehose_runner import FakeClock, Processor, drain
from tests.unit.test_firehose_runner import stack as stack  # noqa: F401 - the fixture


def test_a_crashed_runner_writes_nothing_more_and_its_successor_delivers_what_it_held(stack: Any,
                                                                                     tmp_path: Path) -> None:
    s = stack(processor={"BufferIntervalInSeconds": "0"}, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 300})
    state = tmp_path / "delivery.json"
    clock, processor = FakeClock(), Processor()
    crashed = s.runner(processor, clock, state_path=state)
    s.put([f"before-{i}".encode() for i in range(30)])
    crashed.poll_once()  # processed, waiting in the destination buffer
    assert crashed.records_buffered == 30 and s.objects() == {}
    invocations = len(processor.events)

    crashed.crash()
    with pytest.raises(fr.RunnerCrashed):
        crashed.poll_once(flush=True)  # a poll under way when the kill lands writes nothing
    crashed.run(threading.Event())  # returns at once, without the flush of a clean stop
    assert s.objects() == {} and len(processor.events) == invocations

    restarted = s.runner(processor, clock, state_path=state)
    s.put([f"after-{i}".encode() for i in range(10)])
    drain(restarted, clock, step=100)

    expected = sorted([f"BEFORE-{i}".encode() for i in range(30)] + [f"AFTER-{i}".encode() for i in range(10)])
    assert sorted(s.delivered_lines()) == expected
    assert restarted.records_delivered == 40
