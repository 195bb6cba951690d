"""Fixtures for the program's unit tests: the program under recording mocks, no network, no Pulumi CLI.

The Lambda dependency layer is built by pip for the Lambda platform, which needs PyPI; these tests are about the
resources the program declares, so the layer cache is pre-filled with a small zip (packaging's own tests cover pip).
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import hypothesis  # noqa: F401 - see below
import pytest

from components import packaging

# Imported at collection on purpose: CPython 3.11.7 can report "AST constructor recursion depth mismatch" when pytest
# first rewrites hypothesis at session end, after the Pulumi runs' worker threads have compiled modules.
from harness.emulator.program import ProgramRun, RecordingMocks, run_program

ProgramRunner = Callable[..., ProgramRun]


@pytest.fixture(scope="session", autouse=True)
def isolated_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    build = tmp_path_factory.mktemp("build")
    previous = os.environ.get("RECSYS_BUILD_DIR")
    os.environ["RECSYS_BUILD_DIR"] = str(build)
    for architecture in ("x86_64", "arm64"):
        layer = packaging.layer_cache_path(packaging.LAMBDA_SRC / "requirements.txt", architecture, build)
        layer.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(layer, "w") as archive:
            archive.writestr("python/placeholder.txt", f"test layer for {architecture}\n")
    yield build
    if previous is None:
        os.environ.pop("RECSYS_BUILD_DIR", None)
    else:
        os.environ["RECSYS_BUILD_DIR"] = previous


def config_of(settings: Mapping[str, str], region: str | None = None) -> dict[str, str]:
    """Short keys (`prefix`) become `recsys:prefix`; `aws:region` when given."""
    raw = {key if ":" in key else f"recsys:{key}": value for key, value in settings.items()}
    if region is not None:
        raw["aws:region"] = region
    return raw


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the trainer writes: two embeddings files, a serving bundle and the lab's extra artifacts."""
    root = tmp_path_factory.mktemp("artifacts")
    (root / "embeddings").mkdir()
    vector = "[" + ",".join(["0.1"] * 32) + "]"
    (root / "embeddings" / "item_embeddings.csv").write_text(f'id,embedding\nS10_1678,"{vector}"\n')
    (root / "embeddings" / "user_embeddings.csv").write_text(f'id,embedding\n103,"{vector}"\n')
    (root / "serving").mkdir()
    (root / "serving" / "preprocessing.json").write_text('{"format": "recsys-serving/1"}')
    return root


# A run takes a second or more: tests that ask for the same stack and settings share one (results are read-only).
# Tests that change files the program reads between runs pass fresh=True.
@functools.lru_cache(maxsize=128)
def _cached(stack: str, settings: tuple[tuple[str, str], ...], region: str | None) -> ProgramRun:
    return run_program(stack, config_of(dict(settings), region), RecordingMocks(region=region or "us-east-1"))


def program_run(stack: str = "dev", settings: Mapping[str, str] | None = None, region: str | None = None,
                fresh: bool = False) -> ProgramRun:
    if fresh:
        return run_program(stack, config_of(settings or {}, region), RecordingMocks(region=region or "us-east-1"))
    return _cached(stack, tuple(sorted((settings or {}).items())), region)


# Every optional feature at once, with non-default values (shared by several test files, so run once).
OPTIONAL_FEATURES = {
    "vectorDbAllowedCidrs": "203.0.113.0/24", "producerSchedule": "rate(1 minute)", "producerEventsPerInvocation": "12",
    "glueSchedule": "cron(0 3 * * ? *)", "lambdaArchitecture": "arm64", "inferenceAuth": "NONE",
    "processorBufferSizeMb": "0.2", "processorRetries": "0", "firehoseBufferIntervalSeconds": "0",
    "ephemeral": "false", "logRetentionDays": "30",
}


@pytest.fixture()
def run() -> ProgramRunner:
    return program_run
