"""Soak: drive the local stack at a steady rate for minutes, inject faults, then prove nothing was lost or doubled.

`run_soak` sends shoppers' sessions to the stack's Kinesis stream at a steady rate (sessions from `recsys.events`, made
from the source database's customers and products, every one with a fresh session_id). With faults on, a second
thread, at random moments (seeded), one at a time and every kind at least once:

- `postgres_restart`: stops the vector database's server (`pg_ctl stop -m fast`: open connections are cut, in-flight
  queries fail) for a few seconds and starts it again on the same port, as an RDS reboot or failover does;
- `worker_kill`: SIGKILLs the transformation function's worker process while it is busy (its CPU time is seen
  rising: mid-batch), as a Lambda sandbox that dies mid-invocation;
- `runner_pause`: SIGSTOPs the local control plane (the process that runs the delivery-stream runner and the Lambda
  API) for a few seconds, then SIGCONTs it, as a stalled Firehose: records pile up in Kinesis meanwhile.

The faults are injected from outside, through pids the stack records (`state.json`, the daemon's status API, the RDS
server's `service.json`), because the daemon has no control endpoint for them.

Then it waits until every session it sent shows up in the recommendations bucket and reconciles by session_id: each
one must be in exactly one delivered record (with recommendations) or exactly one error-output record (Firehose's
`processing-failed` documents, whose `rawData` is the original event). A session found nowhere is lost, one found twice
is a duplicate: either makes the soak fail. Objects written before the soak started are not read, and records of
other producers (the demo, earlier soaks) are counted as foreign and otherwise ignored.

Modules: `plan` (options and the seeded fault plan, pure), `reconcile` (reading objects and reconciling by session_id,
pure), `target` (the stack's parts and `--prepare`), `faults` (injected from outside), `run` (producing, collecting,
the report).
"""

from harness.soak.faults import FaultInjector, FaultOutcome
from harness.soak.plan import (
    DEFAULT_DRAIN_TIMEOUT_S,
    FAULT_KINDS,
    MAX_MINUTES,
    MAX_RATE,
    QUIET_EDGE_S,
    REPORT_FILE,
    FaultKind,
    ObjectKind,
    PlannedFault,
    SoakError,
    parse_minutes,
    parse_soak_rate,
    plan_faults,
)
from harness.soak.reconcile import FoundRecord, Reconciliation, reconcile, records_in_object
from harness.soak.run import SoakProgress, SoakReport, run_soak, write_report
from harness.soak.target import SoakTarget, ensure_ready, resolve

__all__ = [
    "DEFAULT_DRAIN_TIMEOUT_S", "FAULT_KINDS", "MAX_MINUTES", "MAX_RATE", "QUIET_EDGE_S", "REPORT_FILE",
    "FaultInjector", "FaultKind", "FaultOutcome", "FoundRecord", "ObjectKind", "PlannedFault", "Reconciliation",
    "SoakError", "SoakProgress", "SoakReport", "SoakTarget", "ensure_ready", "parse_minutes", "parse_soak_rate",
    "plan_faults", "reconcile", "records_in_object", "resolve", "run_soak", "write_report",
]
