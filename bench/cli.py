"""Run the benchmarks side by side and write `bench/results.json` and a readable `bench/RESULTS.md`.

    python -m bench [--quick] [--only NAME ...] [--out-dir DIR] [--profile NAME ...] [--args NAME=ARGS ...]

`python -m harness bench` (what `make bench` calls) takes the same options and adds a summary table. Exit 0 when every
benchmark ran, 1 when one failed, 2 for a usage mistake.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Sequence
from pathlib import Path

from bench import registry
from bench.runner import run_all


def parse_names(only: Sequence[str] | None) -> list[str]:
    """`--only` values (repeatable, or comma-separated) as benchmark names in the order given; all when none."""
    known = registry.names()
    if not only:
        return list(known)
    names: list[str] = []
    for raw in only:
        for name in filter(None, (part.strip() for part in raw.split(","))):
            if name not in known:
                raise ValueError(f"--only {name!r}: no such benchmark; choose from {', '.join(known)}")
            if name not in names:
                names.append(name)
    return names


def parse_extra_args(items: Sequence[str] | None) -> dict[str, list[str]]:
    """`vectors=--sizes 100000` -> {"vectors": ["--sizes", "100000"]}: arguments passed through to one benchmark."""
    known = registry.names()
    out: dict[str, list[str]] = {}
    for item in items or ():
        name, sep, args = item.partition("=")
        if not sep or name not in known:
            raise ValueError(f"--args {item!r}: write NAME=ARGS with NAME one of {', '.join(known)}, e.g. "
                             "--args 'vectors=--sizes 100000'")
        out.setdefault(name, []).extend(shlex.split(args))
    return out


def main(argv: list[str] | None = None) -> int:
    names = ", ".join(registry.names())
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes: proves each benchmark runs")
    parser.add_argument("--only", action="append", help=f"run only these ({names}); repeatable")
    parser.add_argument("--out-dir", type=Path, default=None, help="where results.json and RESULTS.md go")
    parser.add_argument("--profile", action="append", help="also profile this benchmark (a separate quick run under "
                                                           "cProfile); repeatable")
    parser.add_argument("--args", action="append", help="NAME=ARGS passed to one benchmark, e.g. 'vectors=--sizes "
                                                        "100000'; repeatable")
    args = parser.parse_args(argv)
    try:
        selected = parse_names(args.only)
        extra = parse_extra_args(args.args)
        profiled = parse_names(args.profile) if args.profile else []
    except ValueError as err:
        parser.error(str(err))
    outcome = run_all(selected, quick=args.quick, out_dir=args.out_dir, extra_args=extra, profile=profiled)
    print(json.dumps({"results": str(outcome.json_path), "markdown": str(outcome.md_path), "failed": outcome.failed}))
    return 1 if outcome.failed else 0
