"""A control plane serving throwaway functions, without moto: for tests of its HTTP faces (the gateway's Lambda Invoke
API, Function URLs) and of what the delivery runner gets from `invoke_processor`.

Functions are deployed straight into the plane's runtime (real worker processes); the plane's view of moto's
configuration is replaced by those specs, so nothing here needs a running moto (requests the gateway passes on go to
`moto_url`, by default a port nothing listens on).
"""

from __future__ import annotations

import textwrap
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.emulator.control_plane import ApiError
from harness.emulator.control_plane.gateway import gateway_handler
from harness.emulator.control_plane.http_handler import HOST
from harness.emulator.control_plane.plane import ControlPlane
from harness.emulator.lambda_runtime import FunctionSpec, extract_package


def package(tmp_path: Path, source: str, module: str = "app") -> Path:
    """A deployment package zip with one handler module, extracted as the runtime would."""
    zip_path = tmp_path / f"{module}.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(f"{module}.py", textwrap.dedent(source))
    return extract_package(zip_path, tmp_path / "packages")


@dataclass
class LocalPlane:
    plane: ControlPlane
    api_url: str

    def deploy(self, spec: FunctionSpec) -> None:
        self.plane.runtime.deploy(spec)

    def serve_function_url(self, function_name: str, auth_type: str = "AWS_IAM") -> str:
        return self.plane.function_urls.serve(function_name, auth_type, "localurlid").url

    def invocations(self, function_name: str) -> int:
        return self.plane.runtime.counters[function_name].invocations


@contextmanager
def local_plane(state_dir: Path, region: str = "us-east-1", moto_url: str = "http://127.0.0.1:9"
                ) -> Iterator[LocalPlane]:
    api = ThreadingHTTPServer((HOST, 0), BaseHTTPRequestHandler)
    api.daemon_threads = True
    api_url = f"http://{HOST}:{api.server_address[1]}"
    plane = ControlPlane(state_dir, moto_url, region, api_url)

    def spec_of(name: str) -> FunctionSpec:
        spec = plane.runtime.spec(name)
        if spec is None:
            raise ApiError(404, "ResourceNotFoundException", f"Function not found: {name}")
        return spec

    plane.functions.function_spec = spec_of  # type: ignore[method-assign]
    api.RequestHandlerClass = gateway_handler(plane)
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    try:
        yield LocalPlane(plane, api_url)
    finally:
        api.shutdown()
        api.server_close()
        plane.shutdown()
