"""What the control plane keeps under the state dir, and the errors it raises or answers with."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from harness.emulator import state as st


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or reached; the message says what to do."""


class ApiError(Exception):
    """An error an AWS API answers its client with (botocore reads the code from `x-amzn-ErrorType`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def control_plane_dir(state_dir: Path) -> Path:
    """The control plane's own state: its pid and port, the Function URLs' ports, the delivery runners'
    checkpoints. On disk it keeps its first name, `daemon/`: a control plane started by an earlier harness
    (and its runners' checkpoints) is found there, so upgrading the harness under a running stack neither starts a
    second one nor makes the runners read their streams again from the start."""
    return state_dir / "daemon"


def info_path(state_dir: Path) -> Path:
    # `daemon.json`: the file a running control plane of an earlier harness wrote (see control_plane_dir).
    return control_plane_dir(state_dir) / "daemon.json"


def function_urls_path(state_dir: Path) -> Path:
    return control_plane_dir(state_dir) / "function_urls.json"


def runner_state_path(state_dir: Path, delivery_stream: str) -> Path:
    """A delivery runner's checkpoints and counters (`harness stream status/wait` read them too)."""
    return control_plane_dir(state_dir) / "firehose" / f"{delivery_stream}.json"


def log_path(state_dir: Path) -> Path:
    return st.logs_dir(state_dir) / "control-plane.log"


def code_store_dir(state_dir: Path) -> Path:
    return state_dir / "lambda" / "code"


def packages_dir(state_dir: Path) -> Path:
    return state_dir / "lambda" / "packages"


def store_code(state_dir: Path, zip_bytes: bytes) -> str:
    """Keep a deployment package where the control plane finds it by moto's CodeSha256; returns that CodeSha256
    (base64)."""
    digest = hashlib.sha256(zip_bytes)
    target = code_store_dir(state_dir) / f"{digest.hexdigest()}.zip"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
        staging.write_bytes(zip_bytes)
        os.replace(staging, target)
    return base64.b64encode(digest.digest()).decode("ascii")


def write_json_atomic(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps(value, indent=2))
    os.replace(staging, path)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; empty when the file is missing, unreadable or holds something else."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
