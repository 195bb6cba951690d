"""The machine a benchmark ran on: results.json records it once per run, and a benchmark run by hand prints it."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def machine_description() -> dict[str, Any]:
    """Cores, memory, CPU model and the load when the run started (a busy shared machine explains odd figures)."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_mb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cores": os.cpu_count() or 0, "memory_mb": memory_mb, "cpu_model": cpu,
            "load_average_1m": round(load[0], 2), "python": platform.python_version(),
            "platform": platform.platform()}


ONE_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_core_for_numpy() -> None:
    """Hold numpy's BLAS to one thread (unless the user set otherwise): a benchmark measures what one Lambda, on one
    core, does. Call it before numpy is imported: BLAS reads these once, when it loads."""
    for var in ONE_THREAD_ENV:
        os.environ.setdefault(var, "1")
