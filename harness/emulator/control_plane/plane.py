"""The control plane's parts, wired once per process: the functions (Lambda API and runtime), their Function URLs,
the delivery runners, the Glue job runs, the schedules, and moto, which stores everything and answers every other API
call."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from harness.emulator import state as st
from harness.emulator.control_plane.delivery import DeliveryRunners
from harness.emulator.control_plane.function_urls import FunctionUrls
from harness.emulator.control_plane.lambda_api import LambdaFunctions
from harness.emulator.endpoints import ACCESS_KEY_ID, CREDENTIALS_ENV, SECRET_ACCESS_KEY, SESSION_TOKEN
from harness.emulator.glue_runs import OPERATIONS as GLUE_RUN_OPERATIONS
from harness.emulator.glue_runs import GlueRunService
from harness.emulator.lambda_runtime import LambdaRuntime
from harness.emulator.scheduler import Scheduler


class ControlPlane:
    """What one control-plane process serves; `api_url` is its gateway's address."""

    def __init__(self, state_dir: Path, moto_url: str, region: str, api_url: str) -> None:
        import boto3

        self.state_dir = state_dir
        self.moto_url = moto_url.rstrip("/")
        self.region = region
        self.api_url = api_url
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
                                        region_name=region)
        s3 = session.client("s3", endpoint_url=self.moto_url)
        # The functions reach moto directly for every service but Lambda (see docs/engine.md).
        self.runtime = LambdaRuntime(st.logs_dir(state_dir), {
            "AWS_ENDPOINT_URL": self.moto_url, "AWS_ENDPOINT_URL_LAMBDA": api_url, **CREDENTIALS_ENV,
            "AWS_SESSION_TOKEN": SESSION_TOKEN})
        self.functions = LambdaFunctions(state_dir, region, session.client("lambda", endpoint_url=self.moto_url), s3,
                                         self.runtime)
        self.function_urls = FunctionUrls(state_dir, region, self.functions)
        self.delivery = DeliveryRunners(state_dir, session.client("firehose", endpoint_url=self.moto_url),
                                        session.client("kinesis", endpoint_url=self.moto_url), s3,
                                        self.functions.invoke_processor,
                                        # The delivery streams' AWS/Firehose metrics, where Firehose publishes them.
                                        cloudwatch=session.client("cloudwatch", endpoint_url=self.moto_url))
        # Glue's job-run operations, answered by the gateway (every other Glue call is moto's).
        self.job_runs = GlueRunService(state_dir, self.moto_url, region)
        self.glue_operations: frozenset[str] = GLUE_RUN_OPERATIONS
        # EventBridge schedules invoke functions as EventBridge does (Event invocations); Glue triggers start runs.
        self.scheduler = Scheduler(self.moto_url, region, self.functions.invoke_async, self.job_runs.start_job_run)
        self.started = time.time()

    def start_background(self, stop: threading.Event) -> None:
        """What runs besides the gateway: the Function URLs of the last run, the delivery runners and their rescan,
        the scheduler."""
        self.function_urls.restore()
        try:
            self.delivery.sync()
        except Exception as exc:
            print(f"delivery streams not started: {type(exc).__name__}: {exc}", flush=True)
        threading.Thread(target=self.delivery.rescan_forever, args=(stop,), name="rescan", daemon=True).start()
        threading.Thread(target=self.scheduler.run, args=(stop,), name="scheduler", daemon=True).start()

    def refresh(self) -> dict[str, Any]:
        """After a deploy: read the functions' configurations again, start runners for new or changed streams."""
        self.functions.forget_configurations()
        self.delivery.sync()
        return {"functions": sorted(self.runtime.status()), "delivery_streams": sorted(self.delivery.runners)}

    def status(self) -> dict[str, Any]:
        return {
            "control_plane": {"pid": os.getpid(), "url": self.api_url, "moto_url": self.moto_url,
                              "region": self.region, "uptime_s": round(time.time() - self.started, 1),
                              "async_failures": self.functions.async_failures},
            "functions": self.runtime.status(),
            "function_urls": self.function_urls.status(),
            "delivery_streams": self.delivery.status(),
        }

    def shutdown(self) -> None:
        self.delivery.shutdown()
        self.function_urls.shutdown()
        self.job_runs.close()
        self.functions.shutdown()
