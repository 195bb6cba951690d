"""Faults during a soak: what a fault injector is (`FaultInjector`, implemented by whoever can break the stack: the
emulator for the local stack, `harness.emulator.faults`), and `FaultSchedule`, which runs the plan through one in its
own thread. The workflow never breaks anything itself, so it imports nothing of the emulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from harness.workflows.soak.plan import FaultKind, PlannedFault, SoakError


@dataclass
class FaultOutcome:
    kind: FaultKind
    planned_at_s: float
    started_at_s: float | None = None
    duration_s: float = 0.0
    injected: bool = False
    detail: str = ""


class FaultInjector(Protocol):
    """Breaks one part of a stack on request, as the real failure would, and mends it."""

    def supported(self) -> frozenset[FaultKind]:
        """The kinds this injector can cause on its stack."""
        ...

    def inject(self, kind: FaultKind, duration_s: float, outcome: FaultOutcome, *, slot_s: float,
               stop: threading.Event) -> None:
        """Cause `kind` now and end it after `duration_s` (sooner once `stop` is set). `slot_s`: the seconds left in
        the fault's slot, how long it may wait for its moment (a busy worker). Sets `outcome.injected` as soon as the
        fault is in effect and `outcome.detail` to what happened; raises when it cannot inject or end the fault."""
        ...

    def heal(self) -> None:
        """Undo whatever is still broken (a stopped server, a paused or killed process); idempotent."""
        ...


def unsupported(injector: FaultInjector | None, kinds: Sequence[FaultKind]) -> list[FaultKind]:
    """The kinds of `kinds` the injector cannot cause (all of them without one), in their order."""
    supported = injector.supported() if injector is not None else frozenset()
    return [kind for kind in kinds if kind not in supported]


class FaultSchedule:
    """Runs the plan through an injector in its own thread, one fault at a time; `restore()` mends whatever is still
    broken (also on Ctrl-C)."""

    def __init__(self, injector: FaultInjector, plan: Sequence[PlannedFault], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.injector = injector
        self.plan = list(plan)
        self.clock = clock
        self.outcomes = [FaultOutcome(f.kind, f.at_s) for f in plan]
        self.stop = threading.Event()
        self.started_at = 0.0
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self.error: str | None = None
        self.active: FaultKind | None = None

    def start(self, started_at: float) -> None:
        self.started_at = started_at
        self._thread.start()

    def join(self) -> None:
        if self._thread.is_alive():
            self._thread.join()

    def current(self) -> str:
        return self.active or ""

    def restore(self) -> None:
        try:
            self.injector.heal()
        except Exception as exc:  # noqa: BLE001 - whatever the injector raises, the user needs one line
            raise SoakError(f"could not undo the faults ({type(exc).__name__}: {exc}); `harness down` and "
                            "`harness up` bring the stack back") from None

    def _run(self) -> None:
        try:
            for fault, outcome in zip(self.plan, self.outcomes, strict=True):
                delay = self.started_at + fault.at_s - self.clock()
                if delay > 0 and self.stop.wait(delay):
                    return
                outcome.started_at_s = round(self.clock() - self.started_at, 2)
                began = self.clock()
                self.active = fault.kind
                try:
                    self.injector.inject(fault.kind, fault.duration_s, outcome, stop=self.stop,
                                         slot_s=self.started_at + fault.window_end_s - began)
                except Exception as exc:  # noqa: BLE001 - reported in the outcome; the soak and reconciliation go on
                    outcome.detail = f"failed: {type(exc).__name__}: {exc}"
                finally:
                    self.active = None
                    self.restore()
                outcome.duration_s = round(self.clock() - began, 2)
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"
