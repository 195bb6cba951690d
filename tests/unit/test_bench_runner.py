"""The runner: each registered benchmark in its own process (`python -m <its module>`), its document turned into its
section with the command and the CPU it got, a failing one reported while the others run; the arguments of
`python -m bench` and `harness bench`; the profiled run's tables."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bench import cli, registry, runner
from bench.benchmarks import batch
from bench.profiling import profile_table
from bench.registry import Benchmark, Goal
from harness.cli import bench as bench_command
from harness.emulator import endpoints

FAKE_OK = '''
import json, sys

def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    print("a library says hello")
    print(json.dumps({"scale1": {"ratio": 3.5}, "args": args, "quick": "--quick" in args, "machine": {"cores": 1}}))
    return 0

if __name__ == "__main__":
    sys.exit(main())
'''
FAKE_FAILING = '''
import sys

def main(argv=None):
    print("half a document {", flush=True)
    return 3

if __name__ == "__main__":
    sys.exit(main())
'''


@pytest.fixture
def fake_benchmarks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Benchmark, Benchmark]:
    """Two benchmarks whose modules live in a temp dir (importable here and in the runner's child processes)."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "fake_ok_bench.py").write_text(textwrap.dedent(FAKE_OK))
    (modules / "fake_failing_bench.py").write_text(textwrap.dedent(FAKE_FAILING))
    monkeypatch.syspath_prepend(str(modules))
    monkeypatch.setenv("PYTHONPATH", str(modules))
    ok_module, failing_module = (importlib.import_module(name) for name in ("fake_ok_bench", "fake_failing_bench"))
    ok = Benchmark(name="ok", measures="ours against theirs", main=ok_module.main, full_args=("--runs", "5"),
                   timeout_s=60, goals=(Goal("ok.scale1.ratio", ">=", 2, "ok: ratio"),))
    failing = Benchmark(name="failing", measures="nothing", main=failing_module.main, full_args=(), timeout_s=60)
    monkeypatch.setattr(registry, "benchmarks", lambda: (ok, failing))
    monkeypatch.setattr(registry, "names", lambda: ("ok", "failing"))
    return ok, failing


def test_run_all_runs_each_benchmark_in_its_own_process_and_reports_the_failing_one(
        fake_benchmarks: tuple[Benchmark, Benchmark], tmp_path: Path) -> None:
    said: list[str] = []

    outcome = runner.run_all(["ok", "failing"], quick=False, out_dir=tmp_path / "out",
                             extra_args={"ok": ["--scale", "1"]}, say=said.append)

    section = outcome.results["ok"]
    assert section["args"] == ["--runs", "5", "--scale", "1"] and section["scale1"] == {"ratio": 3.5}
    assert section["command"] == "python -m fake_ok_bench --runs 5 --scale 1" and "machine" not in section
    assert set(section["process"]) == {"wall_s", "cpu_s", "cpu_share", "load_average_1m_at_end"}
    assert section["process"]["wall_s"] > 0
    assert list(outcome.failed) == ["failing"] and "failing" not in outcome.results
    assert "`python -m fake_failing_bench` exited 3" in outcome.failed["failing"]
    assert said[0] == "== ok: python -m fake_ok_bench --runs 5 --scale 1"
    written = json.loads(outcome.json_path.read_text())
    assert written["goals"] == [{"key": "ok.scale1.ratio", "label": "ok: ratio", "target": ">= 2", "value": 3.5,
                                 "status": "met"}]
    markdown = outcome.md_path.read_text()
    assert "## Ok\n\nours against theirs." in markdown and "Not measured in this file: failing." in markdown


def test_the_quick_run_passes_the_quick_arguments(fake_benchmarks: tuple[Benchmark, Benchmark],
                                                  tmp_path: Path) -> None:
    outcome = runner.run_all(["ok"], quick=True, out_dir=tmp_path, say=lambda _: None)

    assert outcome.results["ok"]["args"] == ["--quick"] and outcome.results["quick"] is True
    assert outcome.results["ok"]["command"] == "python -m fake_ok_bench --quick"


def test_the_registered_benchmarks_run_as_modules_of_the_package() -> None:
    streaming = dict((b.name, b) for b in registry.benchmarks())["streaming"]

    assert runner.display_command(streaming, runner.benchmark_args(streaming, quick=False)) == \
        "python -m bench.benchmarks.streaming --runs 5"
    assert runner.benchmark_args(streaming, quick=True, extra_args=["--scales", "1"]) == ["--quick", "--scales", "1"]


def test_a_benchmarks_json_is_found_after_noise_a_library_printed() -> None:
    stdout = 'some library says hello\n{"not": "this"} trailing\n{\n  "streaming": {"scale1": {}}\n}\n'

    assert runner.last_json_document(stdout) == {"streaming": {"scale1": {}}}
    with pytest.raises(runner.BenchError, match="printed no JSON document on stdout"):
        runner.last_json_document("no json at all")


def test_names_and_pass_through_arguments_are_checked_before_anything_runs() -> None:
    assert cli.parse_names(None) == ["streaming", "vectors", "batch", "stack"]
    assert cli.parse_names(["stack,streaming", "stack"]) == ["stack", "streaming"]
    assert cli.parse_extra_args(["vectors=--sizes 100000 --m 8"]) == {"vectors": ["--sizes", "100000", "--m", "8"]}
    with pytest.raises(ValueError, match=r"--only 'streeming': no such benchmark; choose from streaming, vectors, "
                                         r"batch, stack"):
        cli.parse_names(["streeming"])
    with pytest.raises(ValueError, match=r"--args 'vectors': write NAME=ARGS with NAME one of streaming"):
        cli.parse_extra_args(["vectors"])


def test_a_usage_mistake_exits_2_with_one_line_and_writes_nothing(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--quick", "--only", "streeming", "--out-dir", str(tmp_path)])
    assert exited.value.code == 2
    assert "--only 'streeming': no such benchmark; choose from streaming, vectors, batch, stack" in \
        capsys.readouterr().err

    app = typer.Typer()
    bench_command.register(app)  # the only command: invoked without its name
    result = CliRunner().invoke(app, ["--quick", "--args", "nothing", "--out-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--args 'nothing': write NAME=ARGS with NAME one of streaming, vectors, batch, stack" in " ".join(
        result.output.split())
    assert not any(tmp_path.iterdir())


def test_a_profile_breaks_the_time_of_our_path_down_by_callee(tmp_path: Path) -> None:
    import cProfile

    def inner() -> int:
        return sum(i * i for i in range(200_000))

    def run_ours() -> None:
        inner()
        inner()

    profiler = cProfile.Profile()
    profiler.runcall(run_ours)
    profiler.dump_stats(tmp_path / "run.prof")

    table = profile_table(tmp_path / "run.prof", "run_ours")

    assert table["tree"][0]["function"].endswith("(run_ours)") and table["tree"][0]["share"] == 1.0
    assert any(row["function"].endswith("(inner)") and row["calls"] == 2 and row["depth"] == 1
               for row in table["tree"])
    assert table["by_own_time"] and all(row["own_s"] >= 0 for row in table["by_own_time"])


def test_the_batch_benchmark_reaches_its_moto_with_the_stacks_region_and_credentials() -> None:
    aws = batch.emulator_endpoints("http://127.0.0.1:5999")

    assert aws.default_url == "http://127.0.0.1:5999" and aws.region == endpoints.DEFAULT_REGION
    assert aws.credentials == (endpoints.ACCESS_KEY_ID, endpoints.SECRET_ACCESS_KEY)


def test_a_lambda_handler_module_is_loaded_from_the_code_root_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.benchmarks import streaming

    monkeypatch.delitem(sys.modules, "inference", raising=False)

    module: Any = streaming.handler_module("inference")

    assert Path(module.__file__) == streaming.LAMBDA_SRC / "inference.py" and callable(module.handler)
    assert streaming.handler_module("inference") is module is sys.modules["inference"]
