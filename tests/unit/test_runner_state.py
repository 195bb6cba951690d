"""The runner's saved state: when it applies to the stream being read, and when a checkpoint cannot be resumed from.

Pure functions, no emulator: the runner-level behaviour against moto is in test_firehose_runner.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.emulator import runner_state as rs

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sessions"
THEN = rs.StreamIdentity(ARN, "2026-12-01T10:00:00.123000+00:00")
NOW = rs.StreamIdentity(ARN, "2026-12-04T15:22:23.113000+00:00")


def saved(identity: rs.StreamIdentity | None) -> rs.SavedState:
    return rs.SavedState(identity=identity, checkpoints={"shardId-000000000000": "50"},
                         counters={"records_delivered": 50})


def never_asked(sequence: str) -> str | None:
    raise AssertionError(f"first_at({sequence!r}) should not be needed")


def test_a_state_of_the_same_incarnation_is_adopted_whole() -> None:
    adopted = rs.adopt(saved(NOW), NOW)
    assert adopted == rs.Adopted(checkpoints={"shardId-000000000000": "50"}, counters={"records_delivered": 50})


def test_a_state_of_a_stream_re_created_under_the_same_arn_is_discarded_with_both_creation_times() -> None:
    adopted = rs.adopt(saved(THEN), NOW)
    assert (adopted.checkpoints, adopted.counters) == ({}, {})
    assert adopted.discarded == [
        f"checkpoint of {ARN} created 2026-12-01T10:00:00.123000+00:00 ignored: the stream was re-created "
        "(now created 2026-12-04T15:22:23.113000+00:00); reading it from its oldest record, counters restart"]


def test_a_state_of_another_stream_or_of_an_unknown_incarnation_is_discarded() -> None:
    other = rs.adopt(saved(rs.StreamIdentity(ARN + "-old", THEN.created)), NOW)
    assert other.checkpoints == {} and f"the stream is not {ARN}-old" in other.discarded[0]
    legacy = rs.adopt(saved(None), NOW)
    assert legacy.checkpoints == {} and "older format" in legacy.discarded[0]
    assert rs.adopt(None, NOW) == rs.Adopted()


def test_a_checkpoint_for_a_shard_the_stream_does_not_have_is_refused() -> None:
    assert rs.checkpoint_problem("shardId-000000000009", "4", None, never_asked) == (
        "checkpoint 4 for shardId-000000000009 ignored: the stream has no such shard")


@pytest.mark.parametrize("checkpoint", ["abc", "", "²", "-3", "1e3"])
def test_a_checkpoint_that_is_not_a_sequence_number_is_refused(checkpoint: str) -> None:
    problem = rs.checkpoint_problem("shardId-000000000000", checkpoint, {"ShardId": "shardId-000000000000"},
                                    never_asked)
    assert problem == (f"checkpoint {checkpoint!r} for shardId-000000000000 ignored: not a sequence number; "
                       "reading from TRIM_HORIZON")


@pytest.mark.parametrize(("checkpoint", "beyond"), [("40", False), ("39", False), ("41", True), ("4000", True)])
def test_a_closed_shard_s_checkpoint_is_compared_with_its_ending_sequence_number(checkpoint: str, beyond: bool) -> None:
    shard = {"ShardId": "shardId-000000000000",
             "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "40"}}
    problem = rs.checkpoint_problem("shardId-000000000000", checkpoint, shard, never_asked)
    assert problem == (f"checkpoint {checkpoint} for shardId-000000000000 ignored: beyond the closed shard's last "
                       "sequence number 40; reading from TRIM_HORIZON" if beyond else None)


@given(records=st.lists(st.integers(1, 10**6), unique=True, max_size=30), checkpoint=st.integers(0, 10**6 + 5))
def test_an_open_shard_s_checkpoint_is_refused_exactly_when_no_record_is_at_or_after_it(
    records: list[int], checkpoint: int,
) -> None:
    """An open shard's range has no end, so the shard is asked; moto and Kinesis answer AT_SEQUENCE_NUMBER with the
    first record at or after the number."""
    asked: list[str] = []

    def first_at(sequence: str) -> str | None:
        asked.append(sequence)
        later = [r for r in records if r >= int(sequence)]
        return str(min(later)) if later else None

    shard = {"ShardId": "shardId-000000000000", "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
    problem = rs.checkpoint_problem("shardId-000000000000", str(checkpoint), shard, first_at)
    assert asked == [str(checkpoint)]
    if any(r >= checkpoint for r in records):
        assert problem is None
    else:
        assert problem is not None and "beyond its latest sequence number" in problem


def test_resume_points_keep_the_valid_checkpoints_and_name_the_others() -> None:
    shards: dict[str, dict[str, Any]] = {f"shardId-00000000000{i}": {"SequenceNumberRange": {}} for i in (0, 1)}
    tails = {"shardId-000000000000": 12, "shardId-000000000001": 3}

    def first_at(shard_id: str, sequence: str) -> str | None:
        return sequence if int(sequence) <= tails[shard_id] else None

    resume, problems = rs.resume_points(
        {"shardId-000000000000": "12", "shardId-000000000001": "50", "shardId-000000000002": "1"}, shards, first_at)
    assert resume == {"shardId-000000000000": "12"}
    assert [p.split(" ignored")[0] for p in problems] == [
        "checkpoint 50 for shardId-000000000001", "checkpoint 1 for shardId-000000000002"]


def test_a_saved_state_reads_back_with_its_identity(tmp_path: Path) -> None:
    path = tmp_path / "firehose" / "delivery.json"
    stats = {"checkpoints": {"shardId-000000000000": "7", "shardId-000000000001": None}, "records_buffered": 0}
    rs.write_state(path, rs.state_document(NOW, stats, {"events_read": 7, "records_delivered": 7}))
    state, problem = rs.read_state(path)
    assert problem is None
    assert state == rs.SavedState(identity=NOW, checkpoints={"shardId-000000000000": "7"},
                                  counters={"events_read": 7, "records_delivered": 7})
    assert json.loads(path.read_text())["source_stream_arn"] == ARN  # `harness stream status` matches on it
    assert not path.with_suffix(".tmp").exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"checkpoints": 3}', '{"counters": {"events_read": "x"}}'])
def test_a_damaged_state_file_is_a_problem_to_report_not_an_exception(tmp_path: Path, content: Any) -> None:
    path = tmp_path / "delivery.json"
    path.write_text(content)
    state, problem = rs.read_state(path)
    assert state is None
    assert problem is not None and problem.startswith(f"ignored unreadable checkpoint file {path}: ")


def test_no_state_file_is_a_fresh_start_not_a_problem(tmp_path: Path) -> None:
    assert rs.read_state(tmp_path / "missing.json") == (None, None)
