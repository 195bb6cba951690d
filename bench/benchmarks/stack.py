"""Stack benchmark: how long `python -m harness up` and `make demo` take on a warm machine.

    python -m bench.benchmarks.stack [--quick] [--runs 5] [--demo-runs N]

Every run happens in its own fresh temporary state directory (`RECSYS_LOCAL_DIR`), through the real commands in child
processes as a user types them, and is taken down (`harness down`) before the next, so runs do not share services,
ports or data, and the user's `.local/` is never touched. "Warm machine": one warm-up run of each comes first
(Python packages and the Lambda layer build cache read once, the JVM and PostgreSQL binaries in the page cache), then
the measured runs.

- `up_s`: `harness up` from nothing to a deployed stack (services started, every resource of the program created);
- `services_s` (the baseline for `up`): starting the three services alone (moto, PostgreSQL, MariaDB) with
  `harness.emulator.services.start_all`, the floor under any deploy: `up_vs_services` says what deploying adds;
- `demo_s`: `make demo` (bootstrap check, then up, seed, ETL, training, embeddings load, a streaming burst), with
  the stage times from the demo's own report. A demo that fails is reported as failed with its stage and error, and
  gives no time.

Prints one JSON document on stdout; progress on stderr. `--quick` (one `up`, one services start, no demo: the demo
has its own tests and takes minutes) is what CI runs to prove the benchmark works.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.registry import RUNS, Benchmark, HeadlineRow, register
from bench.render import command_line, fmt, fmt_ratio, fmt_spread, table
from bench.stats import ratio, spread

ROOT = Path(__file__).resolve().parents[2]

UP_TIMEOUT_S = 900
DEMO_TIMEOUT_S = 3600
OUTPUT_TAIL_LINES = 25

Say = Callable[[str], None]


class StackBenchError(RuntimeError):
    """A command of the measured run failed; the message carries its output's tail."""


def _env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "RECSYS_LOCAL_DIR": str(state_dir), "COLUMNS": "160", "NO_COLOR": "1"}


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-OUTPUT_TAIL_LINES:])


def _run(argv: list[str], state_dir: Path, timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=_env(state_dir), capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - started, result


def _down(state_dir: Path) -> None:
    subprocess.run([sys.executable, "-m", "harness", "down"], cwd=ROOT, env=_env(state_dir), capture_output=True,
                   text=True, timeout=300)


def time_up(work: Path) -> float:
    state_dir = Path(tempfile.mkdtemp(prefix="up-", dir=work))
    try:
        seconds, result = _run([sys.executable, "-m", "harness", "up"], state_dir, UP_TIMEOUT_S)
        if result.returncode != 0:
            raise StackBenchError(f"`harness up` exited {result.returncode}:\n{_tail(result.stdout + result.stderr)}")
        return seconds
    finally:
        _down(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def time_services(work: Path) -> float:
    from harness.emulator import services

    base = Path(tempfile.mkdtemp(prefix="services-", dir=work))
    try:
        started = time.perf_counter()
        running = services.start_all(base / "data", base / "logs")
        seconds = time.perf_counter() - started
        services.stop_all(running)
        return seconds
    finally:
        shutil.rmtree(base, ignore_errors=True)


def time_demo(work: Path) -> dict[str, Any]:
    """One `make demo` in a fresh state dir: its wall time and stage times, or where it failed."""
    state_dir = Path(tempfile.mkdtemp(prefix="demo-", dir=work))
    try:
        seconds, result = _run(["make", "-s", "demo"], state_dir, DEMO_TIMEOUT_S)
        try:
            report = json.loads((state_dir / "demo-report.json").read_text())
        except (OSError, json.JSONDecodeError):
            report = {}
        stages = report.get("stages") or {}
        failed = {name: stage.get("detail") for name, stage in stages.items() if stage.get("status") != "done"}
        outcome: dict[str, Any] = {"wall_s": seconds, "ok": result.returncode == 0 and not failed,
                                   "stages_s": report.get("timings_s") or {}}
        if not outcome["ok"]:
            outcome["error"] = (f"`make demo` exited {result.returncode}; stages not done: {failed}" if failed else
                                f"`make demo` exited {result.returncode}:\n{_tail(result.stdout + result.stderr)}")
        return outcome
    finally:
        _down(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI size: one up, one services start, no demo")
    parser.add_argument("--runs", type=int, default=None, help="measured runs of `up` (default 5)")
    parser.add_argument("--demo-runs", type=int, default=None, help="measured runs of `make demo` (default: --runs)")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else RUNS)
    demo_runs = 0 if args.quick else (args.demo_runs if args.demo_runs is not None else runs)
    if runs < 1 or demo_runs < 0:
        parser.error("--runs must be at least 1 and --demo-runs at least 0")

    def say(message: str) -> None:
        print(f"[bench stack] {message}", file=sys.stderr, flush=True)

    result: dict[str, Any] = {"quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        work = Path(tmp)
        if not args.quick:
            say("warm-up: services, up")
            time_services(work)
            time_up(work)
        services_s, up_s = [], []
        for i in range(runs):
            say(f"services start {i + 1}/{runs}")
            services_s.append(time_services(work))
            say(f"harness up {i + 1}/{runs}")
            up_s.append(time_up(work))
            say(f"harness up {i + 1}/{runs}: {up_s[-1]:.1f} s (services alone {services_s[-1]:.1f} s)")
        up, services = spread(up_s, digits=2), spread(services_s, digits=2)
        result.update(up_s=up["median"], up_spread=up, services_s=services["median"], services_spread=services,
                      up_vs_services=ratio(up["median"], services["median"]))
        if demo_runs:
            say("warm-up: make demo")
            warm = time_demo(work)
            if not warm["ok"]:
                say(f"make demo failed: {warm['error']}")
                result["demo_error"] = warm["error"]
            else:
                demos = []
                for i in range(demo_runs):
                    say(f"make demo {i + 1}/{demo_runs}")
                    demos.append(time_demo(work))
                    if not demos[-1]["ok"]:
                        result["demo_error"] = demos[-1]["error"]
                        break
                    say(f"make demo {i + 1}/{demo_runs}: {demos[-1]['wall_s']:.1f} s")
                if "demo_error" not in result:
                    demo = spread([d["wall_s"] for d in demos], digits=2)
                    result.update(demo_s=demo["median"], demo_spread=demo, demo_stages_s={
                        name: round(statistics.median(d["stages_s"].get(name, 0.0) for d in demos), 2)
                        for name in demos[0]["stages_s"]})
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(result, indent=2))
    return 0


# ---- its section of results.json (the document's own keys) and RESULTS.md ------------------------------------------
def render(section: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Stack: `harness up` and `make demo` on a warm machine", "",
             "Each run in a fresh temporary state directory after a warm-up run (caches warm: packages, layer "
             "build, page cache). Baseline for `up`: starting the three services alone (moto, PostgreSQL, "
             "MariaDB), the floor any deploy adds to.", ""]
    lines += command_line(section)
    rows = [("`harness up` (services + deploy of every resource)", fmt(section.get("up_s"), " s"),
             fmt(section.get("services_s"), " s"), fmt_ratio(section.get("up_vs_services")),
             fmt_spread(section.get("up_spread"), " s"))]
    if section.get("demo_s") is not None or section.get("demo_spread"):
        stages = ", ".join(f"{name} {fmt(value, ' s')}"
                           for name, value in (section.get("demo_stages_s") or {}).items())
        rows.append((f"`make demo` (up, seed, etl, train, load, stream); stages: {stages or '–'}",
                     fmt(section.get("demo_s"), " s"), "–", "–", fmt_spread(section.get("demo_spread"), " s")))
    elif section.get("demo_error"):
        error = " ".join(str(section["demo_error"]).split())[:300].replace("|", "/")
        rows.append(("`make demo`", "failed, not timed", "–", "–", error))
    else:
        rows.append(("`make demo`", "not measured in this run", "–", "–", "–"))
    return lines + table(("workload", "ours", "baseline", "ratio", "spread"), rows)


def headline(section: Mapping[str, Any]) -> list[HeadlineRow]:
    return [("stack: harness up s", fmt(section.get("up_s")), fmt(section.get("services_s")),
             fmt_ratio(section.get("up_vs_services"))),
            ("stack: make demo s", fmt(section.get("demo_s")), "–", "–")]


BENCHMARK = register(Benchmark(
    name="stack",
    measures="`harness up` from nothing to a deployed stack, and `make demo` end to end, on a warm machine, against "
             "starting the three services alone",
    main=main, full_args=("--runs", str(RUNS)), quick_args=("--quick",), timeout_s=7200,
    render=render, headline=headline,
))


if __name__ == "__main__":
    sys.exit(main())
