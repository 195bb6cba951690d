"""The local control plane: one background process per stack, started by the engine during `harness up`, stopped by
`harness down`. moto stores every resource but runs nothing; the control plane completes AWS behind AWS's own APIs:

- `gateway`: the stack's one AWS endpoint (`AWS_ENDPOINT_URL`). It answers Lambda Invoke and the Glue job-run
  operations itself and passes every other request to moto unchanged (`routing` decides, `proxy` streams).
- `lambda_api`: the functions moto stores, run in the local Lambda runtime (one warm worker each).
- `function_urls`: one HTTP server per Function URL on 127.0.0.1.
- `delivery`: one delivery runner per Firehose delivery stream (Kinesis source -> processor -> S3).
- `plane`: those parts wired for one process, with the Glue job runs (`harness.emulator.glue_runs`) and the
  schedules (`harness.emulator.scheduler`); `process`: start, stop, status, and the client the engine calls.

Its files are under `<state>/daemon/` (`files`), its log is `<state>/logs/control-plane.log`. Details:
docs/engine.md.
"""

from harness.emulator.control_plane.files import (
    ApiError,
    ControlPlaneError,
    code_store_dir,
    control_plane_dir,
    runner_state_path,
    store_code,
)
from harness.emulator.control_plane.process import (
    ControlPlaneClient,
    ControlPlaneInfo,
    forget_state,
    read_info,
    start,
    status,
    stop,
    stop_process,
)

__all__ = [
    "ApiError", "ControlPlaneClient", "ControlPlaneError", "ControlPlaneInfo", "code_store_dir", "control_plane_dir",
    "forget_state", "read_info", "runner_state_path", "start", "status", "stop", "stop_process", "store_code",
]
