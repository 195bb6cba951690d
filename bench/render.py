"""RESULTS.md: the machine, the goals, each benchmark's section (its own `render`, or a table of its figures), where
the time goes (profiled runs), and which benchmarks the file lacks. Pure: results in, markdown out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bench.registry import Benchmark


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 100):
        return f"{value:,.0f}{unit}"
    if isinstance(value, float):
        return f"{value:,.3g}{unit}" if abs(value) < 1 else f"{value:,.2f}{unit}"
    return f"{value}{unit}"


def fmt_ratio(value: Any) -> str:
    if not isinstance(value, int | float):
        return "–"
    return f"{value:,.1f}x" if abs(value) >= 0.1 else f"{value:.2g}x"  # a slower path must not read as 0.0x


def fmt_spread(s: Mapping[str, Any] | None, unit: str = "") -> str:
    if not s or not s.get("runs"):
        return "–"
    return f"{fmt(s.get('min'), unit)} – {fmt(s.get('max'), unit)} ({s['runs']} runs)"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def command_line(section: Mapping[str, Any]) -> list[str]:
    """The command a section was measured with, when, and how much of a core its process got."""
    if not section.get("command"):
        return []
    line = f"Command: `{section['command']}`; measured {section.get('date') or 'in this run'}"
    process = section.get("process") or {}
    if process.get("cpu_share") is not None:
        line += (f"; load average {process.get('load_average_1m_at_end')} at its end; the benchmark process got "
                 f"{process['cpu_share']:.2f} of a core on average over its "
                 f"{fmt(process.get('wall_s'))} s (CPU {fmt(process.get('cpu_s'))} s; database servers not counted)")
    return [line + ".", ""]


def figures(section: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every number of a section as (dotted key, value), for a benchmark that renders no section of its own."""
    rows: list[tuple[str, Any]] = []
    for key, value in section.items():
        if key in ("process", "quick"):
            continue
        if isinstance(value, Mapping):
            rows += figures(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            rows.append((f"{prefix}{key}", value))
    return rows


def generic_section(benchmark: Benchmark, section: Mapping[str, Any]) -> list[str]:
    lines = ["", f"## {benchmark.name.capitalize()}", "", f"{benchmark.measures}.", ""]
    lines += command_line(section)
    return lines + table(("figure", "value"), ((f"`{key}`", fmt(value)) for key, value in figures(section)))


def profile_sections(name: str, section: Mapping[str, Any]) -> list[str]:
    """Where the time goes in a benchmark's profiled run (`--profile NAME`): its call tree and the top functions."""
    lines: list[str] = []
    for key in sorted(k for k in section if k.startswith("profile")):
        profile = section[key]
        lines += ["", f"## Where the time goes: {name}" + (f" ({key[8:]})" if key != "profile" else ""), "",
                  f"`{profile['command']}` (a separate run: profiling slows the code, so it feeds no figure); "
                  f"{fmt(profile.get('total_s'))} s in the benchmark process."]
        if profile.get("tree"):
            lines += ["", f"The call tree under `{profile['focus']}` (ours), callees of at least 3 % of its time; "
                      "time waiting on the database or a socket shows up under the call that waited:", ""]
            lines += table(("function", "calls", "cumulative s", "share"), (
                ("&nbsp;&nbsp;" * row["depth"] + f"`{row['function']}`", fmt(row["calls"]),
                 fmt(row["cumulative_s"]), f"{row['share'] * 100:.0f} %") for row in profile["tree"]))
        lines += ["", "Whole process, by own time:", ""]
        lines += table(("function", "calls", "own s", "cumulative s"), (
            (f"`{row['function']}`", fmt(row["calls"]), fmt(row["own_s"]), fmt(row["cumulative_s"]))
            for row in profile["by_own_time"]))
    return lines


def render_markdown(results: Mapping[str, Any], benchmarks: Sequence[Benchmark]) -> str:
    machine = results.get("machine") or {}
    lines = [
        "# Benchmark results",
        "",
        f"Measured {results.get('date')} on {machine.get('cores')} cores ({machine.get('cpu_model')}), "
        f"{fmt(machine.get('memory_mb'))} MB memory, load average {machine.get('load_average_1m')} at the start, "
        f"Python {machine.get('python')}. Written by `python -m harness bench`"
        + (" --quick: CI sizes, the figures prove the benchmarks run and mean little." if results.get("quick")
           else "."),
        "",
        "Every figure is the median of the measured runs (after a warm-up); the baseline is measured in the same run "
        "on the same machine, so the ratio is the number to quote: this machine is shared and absolute times drift. "
        "How each benchmark measures: docs/bench.md.",
        "",
        "## Goals",
        "",
    ]
    lines += table(("goal", "target", "measured", "status"), (
        (g["label"], g["target"], fmt(g["value"]), g["status"]) for g in results.get("goals") or []))
    for benchmark in benchmarks:
        section = results.get(benchmark.name)
        if section:
            lines += benchmark.render(section) if benchmark.render else generic_section(benchmark, section)
    for benchmark in benchmarks:
        lines += profile_sections(benchmark.name, results.get(benchmark.name) or {})
    missing = [benchmark.name for benchmark in benchmarks if benchmark.name not in results]
    if missing:
        lines += ["", f"Not measured in this file: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"
