"""`harness invoke`'s workflow: requests to a Function URL signed like awscurl, checked by the emulator's independent
SigV4 verification (the same check that guards the local Function URLs), and real HTTP round trips."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from harness.emulator.function_url import Rejection, check_sigv4
from harness.workflows.handle import AwsEndpoints, StackHandle
from harness.workflows.invoke import InvokeError, call_function_url, function_name, function_url, signed_request

STACK_CREDENTIALS = {"AKIDEXAMPLE": "secret-example"}


def handle(url: str = "https://abc.lambda-url.eu-west-1.on.aws/", region: str = "eu-west-1",
           credentials: tuple[str, str] = ("AKIDEXAMPLE", "secret-example")) -> StackHandle:
    return StackHandle(name="t", outputs={"inference_function_url": url, "inference_function_name": "p-s-inference",
                                          "redrive_function_name": "p-s-redrive"},
                       aws=AwsEndpoints(region=region, credentials=credentials))


def verify(request: Any, region: str = "eu-west-1") -> str | Rejection:
    parts = urllib.parse.urlsplit(request.full_url)
    return check_sigv4(method=request.get_method(), raw_path=parts.path, raw_query=parts.query,
                       # urllib adds Host when it sends the request; the signature covers it.
                       headers=[("Host", parts.netloc), *request.header_items()], body=request.data or b"",
                       credentials=STACK_CREDENTIALS, region=region)


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/items_from_item?item_id=S10_1678&limit=3", b""),
    ("POST", "/user_embeddings", json.dumps({"users": [{"city": "Nantes", "country": "France"}]}).encode()),
    ("POST", "/items_from_user?limit=5", b'{"users": []}'),
])
def test_a_signed_request_passes_the_emulators_independent_sigv4_check(method: str, path: str, body: bytes) -> None:
    request = signed_request(handle(), method, function_url(handle(), path), body)
    assert verify(request) == "AKIDEXAMPLE"


def test_the_signature_covers_body_region_and_key() -> None:
    request = signed_request(handle(), "POST", function_url(handle(), "/user_embeddings"), b'{"users": []}')
    request.data = b'{"users": [1]}'
    assert isinstance(verify(request), Rejection)
    other_region = signed_request(handle(region="us-east-1"), "GET", function_url(handle(), "/x"))
    assert isinstance(verify(other_region), Rejection)
    unknown_key = signed_request(handle(credentials=("AKIDOTHER", "secret-example")), "GET",
                                 function_url(handle(), "/x"))
    assert isinstance(verify(unknown_key), Rejection)


def test_function_url_joins_paths_and_keeps_full_urls() -> None:
    assert function_url(handle(), "items_from_item?item_id=A") == \
        "https://abc.lambda-url.eu-west-1.on.aws/items_from_item?item_id=A"
    assert function_url(handle(), "http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"


def test_function_names_resolve_from_outputs_or_pass_through() -> None:
    assert function_name(handle(), "inference") == "p-s-inference"
    assert function_name(handle(), "redrive_function_name") == "p-s-redrive"
    assert function_name(handle(), "some-function") == "some-function"


def test_an_unknown_method_is_a_one_line_error() -> None:
    with pytest.raises(InvokeError, match="unknown HTTP method 'FETCH'"):
        signed_request(handle(), "FETCH", "https://x/")


@pytest.fixture()
def verifying_server() -> Iterator[str]:
    """A Function URL stand-in that answers 200 with the request it saw only when the signature verifies."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urllib.parse.urlsplit(self.path)
            verdict = check_sigv4(method=self.command, raw_path=parts.path, raw_query=parts.query,
                                  headers=list(self.headers.items()), body=body, credentials=STACK_CREDENTIALS,
                                  region="eu-west-1")
            status, answer = (403, {"Message": verdict.message}) if isinstance(verdict, Rejection) else \
                (200, {"method": self.command, "path": parts.path, "query": parts.query, "body": body.decode()})
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_round_trip_over_http_is_accepted_and_a_wrong_secret_is_a_403_answer(verifying_server: str) -> None:
    answer = call_function_url(handle(verifying_server), "/items_from_user?limit=2", method="POST",
                               body=b'{"users": [{"city": "Lyon"}]}')
    assert answer.status == 200
    assert json.loads(answer.body) == {"method": "POST", "path": "/items_from_user", "query": "limit=2",
                                       "body": '{"users": [{"city": "Lyon"}]}'}
    got = call_function_url(handle(verifying_server), "/items_from_item?item_id=S10_1678")
    assert got.status == 200 and json.loads(got.body)["query"] == "item_id=S10_1678"
    refused = call_function_url(handle(verifying_server, credentials=("AKIDEXAMPLE", "wrong")), "/x")
    assert refused.status == 403


def test_an_unreachable_url_is_a_one_line_error() -> None:
    with pytest.raises(InvokeError, match="cannot reach http://127.0.0.1:9/x"):
        call_function_url(handle("http://127.0.0.1:9/"), "/x", timeout_s=2)


def run_cli(args: list[str], outputs: dict[str, Any], tmp_path: Any, key: str = "AKIDEXAMPLE") -> Any:
    from typer.testing import CliRunner

    from harness.cli import app as cli

    cli._register_commands()
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": key,
           "AWS_SECRET_ACCESS_KEY": "secret-example", "COLUMNS": "200"}
    return CliRunner().invoke(cli.app, ["invoke", *args, "--outputs", str(path)], env=env)


def test_harness_invoke_url_signs_and_prints_the_answer(verifying_server: str, tmp_path: Any) -> None:
    outputs = {"inference_function_url": verifying_server}
    result = run_cli(["--url", "/items_from_user?limit=2", "--data", '{"users": []}'], outputs, tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"method": "POST", "path": "/items_from_user", "query": "limit=2",
                                         "body": '{"users": []}'}
    refused = run_cli(["--url", "/x"], outputs, tmp_path, key="AKIDOTHER")
    assert refused.exit_code == 1


@pytest.mark.parametrize("args,message", [
    ([], "give either a FUNCTION"),
    (["inference", "--url", "/x"], "give either a FUNCTION"),
    (["--url", "/x", "--method", "FETCH"], "unknown --method 'FETCH'"),
    (["inference", "--method", "GET"], "--method applies to --url only"),
    (["inference", "--data", "not json"], "must be JSON"),
    (["inference", "--data", "@/nonexistent/file.json"], "cannot read --data file"),
])
def test_harness_invoke_usage_mistakes_are_one_line_and_exit_2(args: list[str], message: str, tmp_path: Any) -> None:
    result = run_cli(args, {"inference_function_url": "http://127.0.0.1:9/"}, tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
