"""The benchmarks' shared --scales/--runs: defaults, quick sizes, and usage errors (exit 2) for bad values."""

from __future__ import annotations

import argparse

import pytest

from bench.registry import RUNS, scales_and_runs


def parse(scales: str | None, runs: int | None, quick: bool = False) -> tuple[list[int], int]:
    return scales_and_runs(argparse.ArgumentParser(prog="b"), scales, runs, quick=quick, default_scales="1,10,100",
                           example="1,10,100")


def test_defaults_quick_and_given_values() -> None:
    assert parse(None, None) == ([1, 10, 100], RUNS)
    assert parse(None, None, quick=True) == ([1], 1)
    assert parse("2,3", 4, quick=True) == ([2, 3], 4)


@pytest.mark.parametrize("scales,runs,message", [
    ("1,x", None, "--scales takes comma-separated integers, e.g. --scales 1,10,100"),
    ("0", None, "--runs and every scale must be at least 1"),
    ("1", 0, "--runs and every scale must be at least 1"),
    ("1", -2, "--runs and every scale must be at least 1"),
])
def test_bad_values_are_usage_errors(scales: str, runs: int | None, message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(scales, runs)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
