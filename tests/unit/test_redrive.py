"""The redrive: pure decisions (`recsys.redrive`) with values, and the handler's run (`redrive.run`) against moto's
S3 and Kinesis in process: what is sent, what is skipped as already delivered, what is marked, and that a second run
sends nothing."""

from __future__ import annotations

import base64
import fnmatch
import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redrive
from hypothesis import given, settings
from hypothesis import strategies as st
from recsys import redrive as rd

from components import policies
from harness.emulator import firehose_runner

NOW = datetime(2026, 11, 28, 13, 40, 12, tzinfo=UTC)
ERRORS = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
OUTPUT = "!{timestamp:yyyy/MM/dd/HH}/"
SETTINGS = rd.Settings(bucket="recs", error_template=ERRORS, recommendations_template=OUTPUT,
                       marker_prefix="errors/redriven/", stream_name="sessions")


def session(session_id: str, **extra: Any) -> dict[str, Any]:
    return {"session_id": session_id, "customer_number": 103, "city": "Nantes", "country": "France",
            "credit_limit": 21000, "browse_history": [{"product_code": "S10_1678", "quantity": "2",
                                                       "in_shopping_cart": False}], **extra}


def raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()


def error_line(value: Any, code: str = "Lambda.FunctionError", arrival: datetime = NOW - timedelta(minutes=30)
               ) -> str:
    return json.dumps({"attemptsMade": 3, "arrivalTimestamp": int(arrival.timestamp() * 1000), "errorCode": code,
                       "errorMessage": "m", "attemptEndingTimestamp": 0,
                       "rawData": base64.b64encode(raw(value)).decode(), "lambdaArn": "arn:aws:lambda:f"})


def error_object(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def delivered(*sessions: dict[str, Any]) -> bytes:
    return b"".join(json.dumps({**s, "recommended_items": [], "similar_items": {}}).encode() + b"\n"
                    for s in sessions)


# ---- options and settings -----------------------------------------------------------------------------------------

def test_no_options_means_infrastructure_failures_of_the_last_seven_days_at_most_5000() -> None:
    options = rd.parse_options({}, NOW)
    assert options == rd.Options(False, None, False, 5000, 2 * 1024**3)
    assert options.window_start(NOW) == NOW - timedelta(days=7)
    assert options.wanted() == {"infrastructure"}
    assert rd.parse_options(None, NOW) == options


def test_options_are_read_with_their_types_and_since_in_any_iso_form() -> None:
    options = rd.parse_options({"dry_run": True, "since": "2026-11-28T10:00:00+02:00",
                                "include_processing_failed": True, "max_records": 7}, NOW)
    assert (options.dry_run, options.since, options.max_records) == (True, datetime(2026, 11, 28, 8, tzinfo=UTC), 7)
    assert options.wanted() == {"infrastructure", "processing_failed"}
    assert rd.parse_options({"since": "2026-11-28T08:00:00Z"}, NOW).since == datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert rd.parse_options({"since": "2026-11-28T08:00"}, NOW).since == datetime(2026, 11, 28, 8, tzinfo=UTC)


@pytest.mark.parametrize(("event", "message"), [
    ({"dryrun": True}, "unknown option(s) dryrun; the options are dry_run, since, include_processing_failed"),
    ({"dry_run": "false"}, "'dry_run' must be true or false, got 'false'"),
    ({"max_records": 0}, "'max_records' must be an integer from 1 to 100000, got 0"),
    ({"max_records": True}, "'max_records' must be an integer from 1 to 100000, got True"),
    ({"since": "yesterday"}, "'since' must be an ISO 8601 time such as 2026-11-28T13:00:00Z, got 'yesterday'"),
    ({"since": "2026-11-29T00:00:00Z"}, "'since' (2026-11-29T00:00:00Z) is in the future"),
    ({"since": "2026-01-01T00:00:00Z"}, "'since' may reach back at most 90 days"),
    ([1, 2], "the event must be a JSON object"),
])
def test_a_wrong_option_is_refused_with_what_to_send(event: Any, message: str) -> None:
    with pytest.raises(rd.OptionsError) as raised:
        rd.parse_options(event, NOW)
    assert str(raised.value).startswith(message)


def test_settings_come_from_the_environment_and_a_missing_variable_is_named() -> None:
    env = {"RECOMMENDATIONS_BUCKET": "recs", "ERROR_OUTPUT_PREFIX": ERRORS, "RECOMMENDATIONS_PREFIX": OUTPUT,
           "KINESIS_STREAM_NAME": "sessions"}
    assert rd.settings_from_env(env) == SETTINGS
    assert rd.settings_from_env({**env, "REDRIVEN_PREFIX": "elsewhere/"}).marker_prefix == "elsewhere/"
    with pytest.raises(rd.SettingsError, match="lacks ERROR_OUTPUT_PREFIX, KINESIS_STREAM_NAME: redeploy"):
        rd.settings_from_env({"RECOMMENDATIONS_BUCKET": "recs", "RECOMMENDATIONS_PREFIX": ""})
    with pytest.raises(rd.SettingsError, match="'ww' is not supported"):
        rd.settings_from_env({**env, "RECOMMENDATIONS_PREFIX": "!{timestamp:yyyy/ww}/"})


# ---- prefixes -----------------------------------------------------------------------------------------------------

def test_an_hours_prefix_is_the_template_evaluated_up_to_what_is_finer_than_the_hour() -> None:
    hour = datetime(2026, 3, 4, 5, tzinfo=UTC)
    assert rd.hour_prefix(ERRORS, hour, error_output_type="processing-failed") == \
        "errors/processing-failed/2026/03/04/05/"
    assert rd.hour_prefix(OUTPUT, hour, error_output_type=None) == "2026/03/04/05/"
    assert rd.hour_prefix("", hour, error_output_type=None) == "2026/03/04/05/"
    assert rd.hour_prefix("", hour, error_output_type="processing-failed") == "processing-failed/2026/03/04/05/"
    assert rd.hour_prefix("r/!{timestamp:yyyy/MM/dd/HH/mm}/", hour, error_output_type=None) == "r/2026/03/04/05/"
    assert rd.hour_prefix("r/!{firehose:random-string}/!{timestamp:yyyy}/", hour, error_output_type=None) == "r/"
    assert rd.hour_prefix("r/!{timestamp:'y='yy}/", hour, error_output_type=None) == "r/y=26/"
    assert rd.marker_prefix_for(ERRORS) == "errors/redriven/"
    assert rd.marker_prefix_for("") == "processing-failed/redriven/"


def test_the_hours_to_list_are_each_hour_once_and_a_daily_template_is_listed_once_a_day() -> None:
    start, end = datetime(2026, 3, 4, 22, 30, tzinfo=UTC), datetime(2026, 3, 5, 1, 5, tzinfo=UTC)
    assert rd.listing_prefixes(OUTPUT, start, end, error_output_type=None) == [
        "2026/03/04/22/", "2026/03/04/23/", "2026/03/05/00/", "2026/03/05/01/"]
    assert rd.listing_prefixes("d/!{timestamp:yyyy/MM/dd}/", start, end, error_output_type=None) == [
        "d/2026/03/04/", "d/2026/03/05/"]
    assert rd.listing_prefixes("r/!{firehose:random-string}/", start, end, error_output_type=None) == ["r/"]


@pytest.mark.parametrize("template", [ERRORS, "", "failed/", "!{firehose:error-output-type}/!{timestamp:yyyy}/"])
def test_the_program_and_the_function_put_markers_in_the_same_place(template: str) -> None:
    from components.streaming_inference import redrive_marker_prefix

    assert redrive_marker_prefix(template) == rd.marker_prefix_for(template)


TEMPLATES = [ERRORS, OUTPUT, "", "recs/", "r/!{timestamp:yyyy/MM/dd/HH/mm}/", "d/!{timestamp:yyyy-MM-dd}/x/",
             "r/!{firehose:random-string}/!{timestamp:yyyy}/", "e/!{firehose:error-output-type}/!{timestamp:yy/MM}/",
             "q/!{timestamp:'year='yyyy/'h='HH}/"]


@settings(max_examples=200, deadline=None)
@given(template=st.sampled_from(TEMPLATES), error=st.booleans(),
       when=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)))
def test_every_key_firehose_writes_starts_with_the_hours_prefix_and_both_match_the_iam_pattern(
        template: str, error: bool, when: datetime) -> None:
    kind = "processing-failed" if error else None
    if not error and "error-output-type" in template:
        return
    key = firehose_runner.evaluate_prefix(template or (firehose_runner.DEFAULT_ERROR_PREFIX if error else ""), when,
                                          error_output_type=kind) + firehose_runner.object_name("s", "1", when)
    prefix = rd.hour_prefix(template, rd.floor_hour(when), error_output_type=kind)
    pattern = policies.firehose_prefix_pattern(template, error_output_type=kind)
    assert key.startswith(prefix)
    assert fnmatch.fnmatchcase(key, pattern), "GetObject is allowed on every key"
    assert fnmatch.fnmatchcase(prefix, pattern), "ListBucket's s3:prefix condition allows every listing"


# ---- error documents ----------------------------------------------------------------------------------------------

def test_an_infrastructure_failure_keeps_its_original_bytes_session_and_arrival() -> None:
    record = rd.parse_error_line(3, error_line(session("a"), arrival=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))
    assert record == rd.FailedRecord(3, "infrastructure", "Lambda.FunctionError", 1767323045000, raw(session("a")),
                                     "a")


@pytest.mark.parametrize(("value", "code", "category", "reason"), [
    (session("p"), "Lambda.ProcessingFailed", "processing_failed", None),
    (session("j"), "Lambda.JsonProcessingException", "infrastructure", None),
    (b"not json", "Lambda.FunctionError", "poison", "the record is not valid JSON"),
    (b"\xff\xfe", "Lambda.FunctionError", "poison", "the record is not UTF-8 text"),
    ([session("x")], "Lambda.FunctionError", "poison", "the record is a JSON list, not an object"),
    ({"customer_number": 1}, "Lambda.ProcessingFailed", "poison", "the record has no string 'session_id'"),
    (session(""), "Lambda.FunctionError", "poison", "the record has no string 'session_id'"),
    ({"session_id": 12}, "Lambda.FunctionError", "poison", "the record has no string 'session_id'"),
    (b'{"session_id": "a", "credit_limit": ' + b"9" * 500 + b"}", "Lambda.FunctionError", "poison",
     "the record is an integer literal has 500 digits"),
    (b"[" * 100_000, "Lambda.FunctionError", "poison", "the record is JSON nested too deeply"),
])
def test_each_record_is_classified_and_a_record_without_a_session_id_is_poison(
        value: Any, code: str, category: str, reason: str | None) -> None:
    record = rd.parse_error_line(1, error_line(value, code))
    assert (record.category, record.error_code) == (category, code)
    assert (record.reason or "").startswith(reason or "")
    assert (record.session_id is None) == (category == "poison")


def test_unreadable_error_documents_are_reported_never_raised() -> None:
    assert rd.parse_error_line(1, "{not json").category == "unreadable"
    assert rd.parse_error_line(2, '{"rawData": "###"}').reason == "'rawData' is not base64"
    assert rd.parse_error_line(3, '[1]').reason == "the error document is not an object"
    huge = rd.parse_error_line(4, error_line(session("a")).replace('"arrivalTimestamp": ', '"arrivalTimestamp": 9'
                                                                                           + "9" * 30))
    assert (huge.category, huge.arrival_ms) == ("infrastructure", None)


def test_lines_are_numbered_as_in_the_object_and_gzip_objects_are_read() -> None:
    body = error_object(error_line(session("a")), "", error_line(session("b")))
    assert [(r.line, r.session_id) for r in rd.parse_error_object(body)] == [(1, "a"), (3, "b")]
    assert rd.decompress("k.gz", gzip.compress(body)) == body
    assert rd.decompress("k", body) == body


# ---- choosing, dedup, plan ----------------------------------------------------------------------------------------

def records(*specs: tuple[str | None, str]) -> list[rd.FailedRecord]:
    out = []
    for line, (session_id, category) in enumerate(specs, start=1):
        out.append(rd.FailedRecord(line, category, "c", int((NOW - timedelta(hours=line)).timestamp() * 1000),  # type: ignore[arg-type]
                                   raw(session(session_id or "")), session_id))
    return out


def test_only_wanted_unsettled_records_are_chosen() -> None:
    obj = rd.ErrorObject("k", records(("a", "infrastructure"), ("b", "processing_failed"), (None, "poison"),
                                      ("c", "infrastructure")),
                         rd.Marker(settled={1: "sent"}, open={}))
    assert [(k, r.line) for k, r in rd.choose([obj], frozenset({"infrastructure"}))] == [("k", 4)]
    assert [r.line for _, r in rd.choose([obj], frozenset({"infrastructure", "processing_failed"}))] == [2, 4]


def test_a_session_already_delivered_or_already_sent_in_this_run_is_settled_not_sent() -> None:
    first = rd.ErrorObject("k1", records(("a", "infrastructure"), ("b", "infrastructure")))
    second = rd.ErrorObject("k2", records(("b", "infrastructure"), ("c", "infrastructure"), ("d", "infrastructure")))
    chosen = rd.choose([first, second], frozenset({"infrastructure"}))

    plan = rd.plan(chosen, delivered={"c"}, max_records=10)

    assert [(s.key, s.line, s.session_id) for s in plan.sends] == [("k1", 1, "a"), ("k1", 2, "b"), ("k2", 3, "d")]
    assert plan.skipped == {"k2": {1: "duplicate", 2: "already_delivered"}}
    assert plan.sends[0].entry() == {"Data": raw(session("a")), "PartitionKey": "a"}
    assert (plan.count("duplicate"), plan.count("already_delivered"), plan.deferred) == (1, 1, 0)


def test_max_records_defers_the_rest_to_the_next_run_without_settling_them() -> None:
    obj = rd.ErrorObject("k", records(*[(f"s{i}", "infrastructure") for i in range(5)]))
    plan = rd.plan(rd.choose([obj], frozenset({"infrastructure"})), set(), max_records=2)
    assert [s.session_id for s in plan.sends] == ["s0", "s1"] and plan.deferred == 3 and plan.skipped == {}
    assert rd.updated_marker(obj, {1: "sent", 2: "sent"}).open == {"infrastructure": 3}


def test_the_delivered_output_is_read_from_the_hour_before_the_earliest_chosen_arrival() -> None:
    chosen = rd.choose([rd.ErrorObject("k", records(("a", "infrastructure"), ("b", "infrastructure")))],
                       frozenset({"infrastructure"}))
    assert rd.scan_start(chosen, NOW, NOW - timedelta(days=7)) == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert rd.scan_start([], NOW, NOW) is None


def test_only_the_wanted_session_ids_are_taken_from_delivered_output() -> None:
    body = delivered(session("a"), session("b"), session("z")) + b"not json\n[1]\n"
    assert rd.delivered_ids_in(body, {"a", "z", "q"}) == {"a", "z"}


def test_a_marker_round_trips_and_counts_what_is_still_open_by_category() -> None:
    obj = rd.ErrorObject("errors/processing-failed/2026/11/28/12/x", records(
        ("a", "infrastructure"), ("b", "processing_failed"), (None, "poison")))
    marker = rd.updated_marker(obj, {1: "sent"})
    assert marker == rd.Marker(settled={1: "sent"}, open={"processing_failed": 1, "poison": 1})
    assert rd.parse_marker(rd.marker_body(obj.key, marker, run_id="r", now=NOW)) == marker
    assert not marker.needs_reading(frozenset({"infrastructure"}))
    assert marker.needs_reading(frozenset({"infrastructure", "processing_failed"}))
    assert rd.parse_marker(b"{}") is None and rd.parse_marker(b"\xff") is None
    assert rd.marker_key(SETTINGS, obj.key) == "errors/redriven/processing-failed/2026/11/28/12/x.json"


sessions_ = st.sampled_from([f"s{i}" for i in range(12)])
categories_ = st.sampled_from(rd.CATEGORIES)


@settings(max_examples=200, deadline=None)
@given(objects=st.lists(st.lists(st.tuples(sessions_, categories_), max_size=8), max_size=5),
       delivered_ids=st.sets(sessions_), max_records=st.integers(1, 20), include_pf=st.booleans())
def test_a_plan_sends_each_session_at_most_once_never_a_delivered_one_and_accounts_for_every_choice(
        objects: list[list[tuple[str, str]]], delivered_ids: set[str], max_records: int, include_pf: bool) -> None:
    errors = [rd.ErrorObject(f"k{i}", [
        rd.FailedRecord(line, c, "c", 0, b"x", None if c in ("poison", "unreadable") else s)  # type: ignore[arg-type]
        for line, (s, c) in enumerate(specs, start=1)]) for i, specs in enumerate(objects)]
    wanted = rd.Options(include_processing_failed=include_pf).wanted()
    chosen = rd.choose(errors, wanted)

    plan = rd.plan(chosen, delivered_ids, max_records)

    sent = [s.session_id for s in plan.sends]
    assert len(sent) == len(set(sent)) <= max_records
    assert not set(sent) & delivered_ids
    skipped = sum(len(lines) for lines in plan.skipped.values())
    assert len(plan.sends) + skipped + plan.deferred == len(chosen)
    assert all(r.category in wanted for _, r in chosen)
    wanted_ids = {r.session_id for _, r in chosen} - delivered_ids
    assert set(sent) == wanted_ids or len(sent) == max_records, "nothing wanted is left out below the budget"


# ---- the run, against moto's S3 and Kinesis ---------------------------------------------------------------------

@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    import boto3
    from moto import mock_aws

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3, kinesis = boto3.client("s3"), boto3.client("kinesis")
        s3.create_bucket(Bucket="recs")
        kinesis.create_stream(StreamName="sessions", ShardCount=1)
        yield s3, kinesis


def stream_records(kinesis: Any) -> list[tuple[str, bytes]]:
    iterator = kinesis.get_shard_iterator(StreamName="sessions", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [(r["PartitionKey"], bytes(r["Data"])) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


def put_error_object(s3: Any, hour: str, *lines: str) -> str:
    key = f"errors/processing-failed/{hour}/d-1-2026-11-28-12-00-00-{uuid.uuid4()}"
    s3.put_object(Bucket="recs", Key=key, Body=error_object(*lines))
    return key


def go(s3: Any, kinesis: Any, now: datetime = NOW, **options: Any) -> dict[str, Any]:
    return redrive.run(rd.parse_options(options, now), SETTINGS, s3, kinesis, now=now, run_id="test")


def test_a_redrive_sends_each_failed_session_once_skips_delivered_and_poison_and_a_second_run_sends_nothing(
        aws: tuple[Any, Any]) -> None:
    s3, kinesis = aws
    first = put_error_object(s3, "2026/11/28/12", error_line(session("a")), error_line(session("b")),
                             error_line(session("p"), "Lambda.ProcessingFailed"), error_line(b"garbage"))
    second = put_error_object(s3, "2026/11/28/13", error_line(session("c")), error_line(session("a")))
    # "b" reached the output anyway (read again by Firehose after a restart, say): it must not arrive twice.
    s3.put_object(Bucket="recs", Key="2026/11/28/12/d-1-2026-11-28-12-01-00-x", Body=delivered(session("b")))

    report = go(s3, kinesis)

    assert stream_records(kinesis) == [("a", raw(session("a"))), ("c", raw(session("c")))]
    assert (report["error_objects"], report["chosen"], report["sent"], report["already_delivered"],
            report["duplicates"], report["left_processing_failed"], report["poison"],
            report["objects_marked"]) == (2, 4, 2, 1, 1, 1, 1, 2)
    assert report["poison_records"] == [{"key": first, "line": 4, "error_code": "Lambda.FunctionError",
                                         "reason": "the record is not valid JSON (Expecting value at position 0)"}]
    marker = json.loads(s3.get_object(Bucket="recs", Key=rd.marker_key(SETTINGS, first))["Body"].read())
    assert marker["settled"] == {"1": "sent", "2": "already_delivered"}
    assert marker["open"] == {"poison": 1, "processing_failed": 1}
    assert json.loads(s3.get_object(Bucket="recs", Key=rd.marker_key(SETTINGS, second))["Body"].read())[
        "settled"] == {"1": "sent", "2": "duplicate"}

    again = go(s3, kinesis, NOW + timedelta(minutes=5))

    assert (again["sent"], again["chosen"], again["objects_read"], again["objects_settled_before"]) == (0, 0, 0, 2)
    assert len(stream_records(kinesis)) == 2, "a second run sends nothing"
    assert (again["left_processing_failed"], again["poison"]) == (1, 1), "still reported from the markers"

    opted = go(s3, kinesis, NOW + timedelta(minutes=10), include_processing_failed=True)
    assert (opted["sent"], opted["objects_read"]) == (1, 1)
    assert stream_records(kinesis)[-1] == ("p", raw(session("p")))
    assert go(s3, kinesis, NOW + timedelta(minutes=15), include_processing_failed=True)["sent"] == 0
    assert "Contents" not in s3.list_objects_v2(Bucket="recs", Prefix="errors/redriven/.lease"), "lease released"


def test_a_dry_run_reports_what_it_would_send_and_changes_nothing(aws: tuple[Any, Any]) -> None:
    s3, kinesis = aws
    put_error_object(s3, "2026/11/28/12", error_line(session("a")), error_line(session("b")))

    report = go(s3, kinesis, dry_run=True)

    assert (report["to_send"], report["sent"], report["objects_marked"]) == (2, 0, 0)
    assert stream_records(kinesis) == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="recs")["Contents"] if "redriven" in o["Key"]] == []
    assert go(s3, kinesis)["sent"] == 2


def test_error_objects_written_before_since_are_left_alone(aws: tuple[Any, Any]) -> None:
    s3, kinesis = aws
    put_error_object(s3, "2026/11/28/12", error_line(session("a")))
    report = go(s3, kinesis, since=(datetime.now(UTC) + timedelta(seconds=5)).isoformat(),
                now=datetime.now(UTC) + timedelta(seconds=10))
    assert (report["error_objects"], report["sent"]) == (0, 0)


def test_a_running_redrive_holds_the_lease_and_an_expired_one_is_taken_over(aws: tuple[Any, Any]) -> None:
    s3, kinesis = aws
    put_error_object(s3, "2026/11/28/12", error_line(session("a")))
    lease = {"run_id": "other", "expires_at": (NOW + timedelta(minutes=3)).isoformat()}
    s3.put_object(Bucket="recs", Key=SETTINGS.lease_key, Body=json.dumps(lease).encode())

    with pytest.raises(redrive.Busy, match=r"another redrive \(run other\) is running until 2026-11-28T13:43:12Z"):
        go(s3, kinesis)
    assert stream_records(kinesis) == []

    assert go(s3, kinesis, NOW + timedelta(minutes=4))["sent"] == 1, "an expired lease is taken over"
    assert "Contents" not in s3.list_objects_v2(Bucket="recs", Prefix=SETTINGS.lease_key)


class RefusingKinesis:
    """Accepts `accept` records, then refuses every record (throttled for good)."""

    def __init__(self, real: Any, accept: int) -> None:
        self.real, self.accept = real, accept

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        taken, self.accept = Records[: self.accept], max(0, self.accept - len(Records))
        if taken:
            self.real.put_records(StreamName=StreamName, Records=taken)
        refused = [{"ErrorCode": "ProvisionedThroughputExceededException"}] * (len(Records) - len(taken))
        return {"Records": [{"SequenceNumber": "1"}] * len(taken) + refused}


def test_when_kinesis_keeps_refusing_what_was_accepted_is_marked_and_the_next_run_sends_only_the_rest(
        aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s3, kinesis = aws
    monkeypatch.setattr(redrive.events, "KINESIS_BATCH", 2)
    monkeypatch.setattr(redrive, "PUT_ATTEMPTS", 2)
    monkeypatch.setattr(redrive.events.time, "sleep", lambda _: None)
    key = put_error_object(s3, "2026/11/28/12", *[error_line(session(f"s{i}")) for i in range(5)])

    with pytest.raises(rd.RedriveError, match="2 of 5 records were sent and marked, run the redrive again"):
        go(s3, RefusingKinesis(kinesis, accept=2))

    marker = json.loads(s3.get_object(Bucket="recs", Key=rd.marker_key(SETTINGS, key))["Body"].read())
    assert marker["settled"] == {"1": "sent", "2": "sent"}
    assert go(s3, kinesis, NOW + timedelta(minutes=1))["sent"] == 3
    assert [pk for pk, _ in stream_records(kinesis)] == ["s0", "s1", "s2", "s3", "s4"]


def test_deduplication_that_would_read_too_much_output_stops_before_sending(aws: tuple[Any, Any]) -> None:
    s3, kinesis = aws
    put_error_object(s3, "2026/11/28/12", error_line(session("a")))
    s3.put_object(Bucket="recs", Key="2026/11/28/13/d-1-x", Body=b"x" * 100)

    with pytest.raises(rd.RedriveError, match=r"would read 100 bytes .* pass a later 'since' or a larger "
                                              "max_scan_bytes; nothing was sent"):
        go(s3, kinesis, max_scan_bytes=99)
    assert stream_records(kinesis) == []


def test_the_handler_reads_its_environment_and_refuses_a_bad_event_in_one_line(
        aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s3, kinesis = aws
    for key, value in {"RECOMMENDATIONS_BUCKET": "recs", "ERROR_OUTPUT_PREFIX": ERRORS,
                       "RECOMMENDATIONS_PREFIX": OUTPUT, "REDRIVEN_PREFIX": "errors/redriven/",
                       "KINESIS_STREAM_NAME": "sessions"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(redrive, "s3_client", lambda: s3)
    monkeypatch.setattr(redrive, "kinesis_client", lambda: kinesis)
    hour = datetime.now(UTC).strftime("%Y/%m/%d/%H")
    put_error_object(s3, hour, error_line(session("a"), arrival=datetime.now(UTC)))

    assert redrive.handler({"dry_run": True}, None)["to_send"] == 1
    assert redrive.handler({}, None)["sent"] == 1
    with pytest.raises(rd.OptionsError, match="unknown option"):
        redrive.handler({"dryrun": True}, None)


def test_harness_redrive_without_a_stack_says_to_bring_it_up_in_one_line(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-m", "harness", "redrive", "--dry-run"], cwd=root, capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "RECSYS_LOCAL_DIR": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200"})
    assert result.returncode == 1
    assert result.stdout.strip() == (f"error: the local stack is not up (nothing runs in {Path(tmp_path).resolve()}): "
                                     "run `harness up` first, or name a deployed stack with --outputs FILE or "
                                     "--pulumi-stack NAME")
    assert "Traceback" not in result.stderr


def test_the_cli_prints_poison_keys_whole_one_per_line() -> None:
    from harness.cli.redrive import poison_lines

    key = "errors/processing-failed/2026/11/28/12/" + "x" * 150
    report = {"poison_records": [{"key": key, "line": 4, "error_code": "Lambda.FunctionError", "reason": "r"}]}
    assert poison_lines(report) == [f"  {key} line 4: Lambda.FunctionError: r"]
