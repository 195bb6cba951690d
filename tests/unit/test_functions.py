"""`harness.workflows.functions.invoke`: a stack's function named by an output, its JSON answer, and every failure as
one line of the caller's error class."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.workflows import functions
from harness.workflows.handle import AwsEndpoints, StackHandle
from harness.workflows.invoke import FunctionAnswer, InvokeError

HANDLE = StackHandle(name="dev", outputs={"redrive_function_name": "p-dev-redrive"}, aws=AwsEndpoints())


class Failed(RuntimeError):
    pass


class Lambda:
    """Stands in for `invoke_function`: records each call, gives the next prepared answer (or raises it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.answers: list[Any] = []

    def __call__(self, handle: StackHandle, name: str, payload: bytes) -> FunctionAnswer:
        self.calls.append((name, json.loads(payload)))
        outcome = self.answers.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Lambda:
    fake = Lambda()
    monkeypatch.setattr(functions, "invoke_function", fake)
    return fake


def answer(payload: bytes, error: str | None = None) -> FunctionAnswer:
    return FunctionAnswer(status_code=200, function_error=error, payload=payload, log_tail=None)


def test_the_function_the_output_names_gets_the_payload_and_its_json_object_comes_back(calls: Lambda) -> None:
    calls.answers.append(answer(b'{"sent": 3}'))
    assert functions.invoke(HANDLE, "redrive_function_name", {"dry_run": True}, what="the redrive",
                            error=Failed) == {"sent": 3}
    assert calls.calls == [("p-dev-redrive", {"dry_run": True})]


@pytest.mark.parametrize("outcome,message", [
    (answer(b'{"errorType": "OptionsError", "errorMessage": "unknown option(s) dryrun"}', "Unhandled"),
     "the redrive failed: OptionsError: unknown option(s) dryrun"),
    (answer(b"Task timed out after 300.00 seconds", "Unhandled"),
     "the redrive failed: Task timed out after 300.00 seconds"),
    (answer(b"[1, 2]"), "the redrive answered something other than a JSON object: '[1, 2]'"),
    (InvokeError("Lambda did not invoke p-dev-redrive: AccessDenied"),
     "the redrive did not run (Lambda did not invoke p-dev-redrive: AccessDenied)"),
])
def test_each_failure_is_one_line_of_the_callers_error(calls: Lambda, outcome: Any, message: str) -> None:
    calls.answers.append(outcome)
    with pytest.raises(Failed) as raised:
        functions.invoke(HANDLE, "redrive_function_name", {}, what="the redrive", error=Failed)
    assert str(raised.value) == message


def test_a_stack_without_the_output_names_it_and_invokes_nothing(calls: Lambda) -> None:
    with pytest.raises(Failed, match="the stack dev has no `embeddings_loader_function_name` output"):
        functions.invoke(HANDLE, "embeddings_loader_function_name", {}, what="the loader", error=Failed)
    assert calls.calls == []
