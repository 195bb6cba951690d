"""How clients reach the local stack: the one place for the emulator's endpoint configuration and its credentials.

The configuration is AWS's own environment variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, the region and
the credentials), so boto3, the aws CLI and `harness.workflows.handle.AwsEndpoints.from_environment` read it unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.emulator import state as st
from harness.emulator.services import RunningServices

DEFAULT_REGION = "us-east-1"
# The stack's credentials in the emulator: moto accepts any key; the control plane verifies SigV4 signatures made
# with this pair (Function URLs with AWS_IAM auth). Not a secret: nothing outside this machine accepts them.
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
SESSION_TOKEN = "testing"
CREDENTIALS_ENV = {"AWS_ACCESS_KEY_ID": ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}
# What an AWS_IAM Function URL accepts (access key id -> secret): the stack's credentials, as `harness env` exports.
SIGNING_CREDENTIALS = {ACCESS_KEY_ID: SECRET_ACCESS_KEY}


def region(state: st.State) -> str:
    return str(state.get("region") or DEFAULT_REGION)


def gateway_url(state: st.State) -> str | None:
    """The control plane's gateway, where every AWS API of the stack answers; None while no control plane runs.
    (state.json's section keeps its first name, "daemon", and a control plane of an earlier harness recorded only
    `lambda_endpoint`, the same address.)"""
    section = state.get("daemon") or {}
    url = section.get("endpoint_url") or section.get("lambda_endpoint")
    return str(url) if url else None


def aws_environment(state_dir: Path, state: st.State | None = None) -> dict[str, str]:
    """The variables that point an AWS client at this local stack: one endpoint for every service, the control plane's
    gateway (it answers what the emulator performs, Lambda Invoke and Glue job runs, and passes the rest to moto);
    moto itself while no control plane runs. Empty when the stack's services were never started."""
    state = st.load_state(state_dir) if state is None else state
    if not state.get("services"):
        return {}
    running = RunningServices.from_dict(state["services"])
    return {"AWS_ENDPOINT_URL": gateway_url(state) or running.moto.endpoint_url, **CREDENTIALS_ENV,
            "AWS_DEFAULT_REGION": region(state), "AWS_REGION": region(state)}


def stack_outputs(state: st.State) -> dict[str, Any]:
    """The deployed stack's outputs, secrets revealed, as `pulumi stack output --json --show-secrets` prints them."""
    outputs = state.get("outputs") or {}
    return {name: entry.get("value") if isinstance(entry, dict) else entry for name, entry in outputs.items()}
