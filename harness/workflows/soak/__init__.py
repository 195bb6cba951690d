"""Soak: drive a stack at a steady rate for minutes, inject faults, then prove nothing was lost or doubled.

`run_soak` sends shoppers' sessions to the stack's Kinesis stream at a steady rate (sessions from `recsys.events`, made
from the stack's customers and products, every one with a fresh session_id). With faults on, a second thread, at
random moments (seeded), one at a time, every kind at least once (`--fault KIND` narrows them), has a `FaultInjector`
cause them. The workflow only says what a fault injector is (`faults.FaultInjector`); the local stack's, which breaks
the emulator's processes from outside, is `harness.emulator.faults.LocalFaultInjector`:

- `postgres_restart`: the vector database's server stopped (open connections cut, in-flight queries fail) for a few
  seconds and started again on the same port, as an RDS reboot or failover does;
- `worker_kill`: the transformation function's worker SIGKILLed while it is busy (mid-batch), as a Lambda sandbox that
  dies mid-invocation;
- `runner_pause`: the local control plane (the process that runs the delivery-stream runner and the Lambda API)
  paused for a few seconds, as a stalled Firehose: records pile up in Kinesis meanwhile;
- `runner_kill`: the delivery runner dies without a flush: what it held in memory is gone and its successor reads it
  again from the last checkpoint;
- `control_plane_kill`: the whole control plane (runner, Lambda API, workers) SIGKILLed and started again, as `up`
  would;
- `db_outage`: the vector database down for `--outage-seconds` (15 s by default), longer than the processor's
  retries, so batches fail into the error output: once per run.

On a stack deployed to AWS no injector can cause these (the CLI refuses `--fault` there); a soak without faults runs
on both, through the stack's `StackHandle` alone.

Then it waits until every session it sent shows up in the recommendations bucket or the error output. With faults, it
then runs the stack's own redrive function (the same code as on AWS) over the error output written since the soak
began, waits for the redriven sessions, and reconciles by session_id: each one must be delivered exactly once (with
recommendations; after failing into the error output first, it counts as redriven). A session found nowhere is lost,
one delivered twice a duplicate, a (valid) session still only in the error output after the redrive was not brought
back: each makes the soak fail, except that a session delivered exactly twice after a `runner_kill` or
`control_plane_kill` is Firehose's at-least-once contract (written to S3, not yet checkpointed), counted and reported.
Objects written before the soak started are not read, the redrive's markers are not records, and records of other
producers (the demo, earlier soaks) are counted as foreign and otherwise ignored. The report's `runner` numbers are the
delivery stream's CloudWatch metrics over the soak.

Modules: `plan` (options and the seeded fault plan, pure), `reconcile` (reading objects and reconciling by session_id,
pure), `target` (the stack's parts and `--prepare`), `faults` (the injector protocol and the schedule that drives it),
`run` (producing, collecting, the report).
"""

from harness.workflows.soak.faults import FaultInjector, FaultOutcome, FaultSchedule, unsupported
from harness.workflows.soak.plan import (
    DEFAULT_DRAIN_TIMEOUT_S,
    DEFAULT_OUTAGE_S,
    FAULT_KINDS,
    MAX_MINUTES,
    MAX_RATE,
    QUIET_EDGE_S,
    REPORT_FILE,
    FaultKind,
    ObjectKind,
    PlannedFault,
    SoakError,
    parse_fault_kinds,
    parse_minutes,
    parse_outage_seconds,
    parse_soak_rate,
    plan_faults,
)
from harness.workflows.soak.reconcile import FoundRecord, Reconciliation, reconcile, records_in_object
from harness.workflows.soak.run import SoakProgress, SoakReport, run_soak, settled, write_report
from harness.workflows.soak.target import SoakTarget, ensure_ready, resolve

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT_S", "DEFAULT_OUTAGE_S", "FAULT_KINDS", "FaultInjector", "FaultKind", "FaultOutcome",
    "FaultSchedule", "FoundRecord", "MAX_MINUTES", "MAX_RATE", "ObjectKind", "PlannedFault", "QUIET_EDGE_S",
    "REPORT_FILE", "Reconciliation", "SoakError", "SoakProgress", "SoakReport", "SoakTarget", "ensure_ready",
    "parse_fault_kinds", "parse_minutes", "parse_outage_seconds", "parse_soak_rate", "plan_faults", "reconcile",
    "records_in_object", "resolve", "run_soak", "settled", "unsupported", "write_report",
]
