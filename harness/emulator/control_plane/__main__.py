"""`python -m harness.emulator.control_plane --state-dir DIR --moto-url URL [--region R]`: one control-plane process
(started by `harness.emulator.control_plane.start`, never by hand)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.emulator.control_plane.gateway import gateway_handler
from harness.emulator.control_plane.http_handler import HOST
from harness.emulator.control_plane.plane import ControlPlane
from harness.emulator.control_plane.process import ControlPlaneInfo, write_info


def serve(state_dir: Path, moto_url: str, region: str, port: int = 0,
          ready: Callable[[ControlPlaneInfo], None] | None = None) -> None:
    """Serve until SIGTERM, on `port` when it is free (a restarted control plane keeps its address, which clients
    hold as their AWS_ENDPOINT_URL), else on any free port."""
    try:
        server = ThreadingHTTPServer((HOST, port), BaseHTTPRequestHandler)
    except OSError:
        server = ThreadingHTTPServer((HOST, 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    port = server.server_address[1]
    plane = ControlPlane(state_dir, moto_url, region, f"http://{HOST}:{port}")
    server.RequestHandlerClass = gateway_handler(plane)
    stop = threading.Event()
    plane.start_background(stop)

    def on_term(signum: int, frame: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    info = ControlPlaneInfo(pid=os.getpid(), port=port)
    write_info(state_dir, info, moto_url, region)
    print(f"local control plane on {info.url} (moto {moto_url}, region {region})", flush=True)
    if ready is not None:
        ready(info)
    try:
        server.serve_forever()
    finally:
        plane.shutdown()
        server.server_close()
        print("local control plane stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.emulator.control_plane",
                                     description="The local stack's control plane (started by `harness up`).")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--moto-url", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on when free (default: any)")
    args = parser.parse_args(argv)
    # The scheduler and the job runs log what they fire and start: one line each in the control plane's log.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args.state_dir.resolve(), args.moto_url, args.region, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
