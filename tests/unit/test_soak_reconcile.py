"""The soak's reconciliation by session_id (pure): a reconciliation that cannot see a loss or a duplicate fails these
tests rather than passing every soak."""

from __future__ import annotations

import base64
import json
from typing import Any

from harness.workflows import soak


def session(session_id: str, **extra: Any) -> dict[str, Any]:
    return {"session_id": session_id, "customer_number": 103, "city": "Nantes", "country": "France",
            "credit_limit": 21000, "browse_history": [{"product_code": "S10_1678", "quantity": "2",
                                                       "in_shopping_cart": False}], **extra}


def delivered_object(*sessions: dict[str, Any]) -> bytes:
    return b"".join(json.dumps({**s, "recommended_items": [{"id": "S10_1949", "score": 0.8}]}).encode() + b"\n"
                    for s in sessions)


def error_object(*sessions: dict[str, Any]) -> bytes:
    return b"".join(json.dumps({"attemptsMade": 3, "errorCode": "Lambda.FunctionError", "errorMessage": "db down",
                                "rawData": base64.b64encode(json.dumps(s).encode()).decode()}).encode() + b"\n"
                    for s in sessions)


def test_every_session_delivered_or_in_the_error_output_once_reconciles() -> None:
    found = (soak.records_in_object(delivered_object(session("a"), session("b")), "delivered")
             + soak.records_in_object(error_object(session("c")), "error"))

    result = soak.reconcile(["a", "b", "c"], found)

    assert result.ok
    assert (result.sent, result.delivered, result.failed) == (3, 2, 1)


def test_a_session_found_nowhere_is_reported_lost_by_its_id() -> None:
    found = soak.records_in_object(delivered_object(session("a")), "delivered")

    result = soak.reconcile(["a", "lost-one"], found)

    assert not result.ok
    assert result.missing == ("lost-one",)
    assert result.problems() == ["1 sent session(s) are in no delivered and no error-output record, e.g. lost-one"]
    assert result.as_dict()["missing"] == 1 and result.as_dict()["missing_examples"] == ["lost-one"]


def test_a_session_both_delivered_and_failed_is_a_duplicate_not_a_success() -> None:
    found = (soak.records_in_object(delivered_object(session("a")), "delivered")
             + soak.records_in_object(error_object(session("a")), "error"))

    result = soak.reconcile(["a"], found)

    assert not result.ok
    assert result.duplicated == {"a": 2}
    assert result.delivered == 0 and result.failed == 0


def test_after_a_redrive_a_failed_then_delivered_session_is_redriven_and_a_double_delivery_still_fails() -> None:
    found = (soak.records_in_object(delivered_object(session("a"), session("b"), session("d"), session("d")),
                                    "delivered")
             + soak.records_in_object(error_object(session("a"), session("c"), session("c")), "error"))

    result = soak.reconcile(["a", "b", "c", "d"], found, redrive_ran=True)

    # a: failed, redriven, delivered once. b: delivered. c: failed twice (redriven, failed again), never delivered:
    # still in the error output, not lost. d: delivered twice: the pipeline doubled it, a redrive never excuses that.
    assert (result.delivered, result.redriven, result.failed) == (2, 1, 1)
    assert result.duplicated == {"d": 2} and not result.missing
    assert not result.ok
    assert soak.reconcile(["a", "b", "c"], found, redrive_ran=True).ok


def test_records_of_other_producers_are_ignored_and_unreadable_ones_fail() -> None:
    found = soak.records_in_object(delivered_object(session("a"), session("from-the-demo")), "delivered")
    assert soak.reconcile(["a"], found).ok
    assert soak.reconcile(["a"], found).foreign == 1

    broken = soak.records_in_object(b'{"attemptsMade": 1, "rawData": "not base64!"}\n', "error")
    assert [r.session_id for r in broken] == [None]
    assert not soak.reconcile(["a"], found + broken).ok
    assert soak.reconcile(["a"], found + broken).unreadable == 1


def test_a_delivered_record_without_recommendations_fails_the_soak() -> None:
    found = soak.records_in_object(json.dumps(session("a")).encode() + b"\n", "delivered")

    assert soak.reconcile(["a"], found).without_recommendations == ("a",)
    assert not soak.reconcile(["a"], found).ok


def test_records_written_back_to_back_without_newlines_are_all_read() -> None:
    body = delivered_object(session("a"), session("b")).replace(b"\n", b"")

    assert [r.session_id for r in soak.records_in_object(body, "delivered")] == ["a", "b"]


def test_an_object_that_is_not_json_is_one_unreadable_record() -> None:
    assert soak.records_in_object(b"\xff\xfe not json", "delivered") == [soak.FoundRecord(None, "delivered")]
