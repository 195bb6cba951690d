"""The model-inference Lambda behind its Function URL (payload format 2.0): the lab's three endpoints.

- `POST /user_embeddings`: body `[{"city", "country", "creditlimit"}, ...]` (a single object is accepted too) ->
  `[[x1, ..., x32], ...]`, one embedding per user, in order.
- `POST /items_from_user?limit=K`: body one embedding (32 numbers; the one-element list `/user_embeddings` returns is
  accepted as is) -> `[{"id", "score"}, ...]`, best first.
- `GET /items_from_item?item_id=ID&limit=K` -> `[{"id", "distance"}, ...]`, closest first (cosine distance).

No client input answers 500: bad input answers 400/404/405 with `{"error": "<what was wrong and what to send>"}`, a
body over Lambda's 6 MB request limit 413; an unreachable database answers 503 so clients retry. Every response is
strict JSON (never NaN or Infinity): numbers are checked finite in float32 on the way in, and a model or search result
that overflows for a client's input is that input's fault (400). `route` is pure given the model and the query
functions; `handler` adapts the Function URL event.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
from aws_lambda_powertools import Logger
from recsys import safejson, vectordb
from recsys.model import FeatureError, ServingModel
from recsys.recommend import ItemsForUsers, SimilarItems, UserEmbedder
from recsys.vectordb import QueryInputError

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "inference"))

EMBEDDING_DIM = 32
MAX_LIMIT = 100
MAX_USERS = 1000
# Lambda's synchronous request payload limit, which a Function URL shares: AWS refuses larger bodies before the
# function runs, and so does the local Function URL server; checked here too so the handler never depends on it.
MAX_BODY_BYTES = 6 * 1024 * 1024
# A base64 text this long decodes to at most MAX_BODY_BYTES (4 characters per 3 bytes, padded); a longer one to more.
_MAX_BASE64_CHARS = 4 * -(-MAX_BODY_BYTES // 3)
# `limit` is at most 3 digits; a few more (leading zeros) are tolerated, a long digit string is never given to int().
_MAX_LIMIT_CHARS = 9
# Client text echoed in an error message is cut to this many characters (a path or id can be megabytes long).
_ECHO_CHARS = 60
_FLOAT32_RANGE = "a number of magnitude at most 3.4e38 (the model computes in float32)"


class BadRequest(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Backend:
    model: UserEmbedder
    items_for_users: ItemsForUsers
    similar_items: SimilarItems
    default_limit: int = 5


def _echo(text: str, *, quoted: bool = True) -> str:
    """`text` for an error message, cut short: enough to recognise, never a megabyte of it."""
    cut = text[:_ECHO_CHARS]
    shown = repr(cut) if quoted else cut
    return shown if len(cut) == len(text) else f"{shown}... ({len(text)} characters)"


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit() is also true for '²' and other Unicode digits, which int() then refuses.
    return text.isascii() and text.isdigit()


def _limit(query: Mapping[str, str], default: int) -> int:
    raw = query.get("limit")
    if raw is None or raw == "":
        return default
    if not _is_ascii_digits(raw) or len(raw) > _MAX_LIMIT_CHARS or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(400, f"limit must be an integer from 1 to {MAX_LIMIT}, got {_echo(raw)}")
    return int(raw)


def _json_body(body: str | None) -> Any:
    if body is None or not body.strip():
        raise BadRequest(400, "the request needs a JSON body")
    try:
        return safejson.loads(body)
    except safejson.NotJson as err:
        raise BadRequest(400, f"the body is not JSON this API accepts: {err}") from None


def _users(body: Any) -> list[dict[str, Any]]:
    users = [body] if isinstance(body, dict) else body
    if not isinstance(users, list) or not users:
        raise BadRequest(400, 'send a list of users: [{"city": ..., "country": ..., "creditlimit": ...}]')
    if len(users) > MAX_USERS:
        raise BadRequest(400, f"at most {MAX_USERS} users per request, got {len(users)}")
    out = []
    for i, user in enumerate(users):
        if not isinstance(user, dict):
            raise BadRequest(400, f"user #{i} must be an object with city, country and creditlimit")
        for key in ("city", "country"):
            if not isinstance(user.get(key), str):
                raise BadRequest(400, f"user #{i}: '{key}' must be a string")
        credit = safejson.float32(user.get("creditlimit", user.get("credit_limit")))
        if credit is None:
            raise BadRequest(400, f"user #{i}: 'creditlimit' must be a finite number: {_FLOAT32_RANGE}")
        out.append({"city": user["city"], "country": user["country"], "creditlimit": credit})
    return out


def _embedding(body: Any) -> list[float]:
    # `/user_embeddings` answers a list of embeddings; clients that pass its one-element answer straight on work too.
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], list):
        body = body[0]
    if isinstance(body, dict) and "embedding" in body:
        body = body["embedding"]
    values = [safejson.float32(v) for v in body] if isinstance(body, list) and len(body) == EMBEDDING_DIM else []
    if len(values) != EMBEDDING_DIM:
        raise BadRequest(400, f"the body must be one embedding: a list of {EMBEDDING_DIM} finite numbers")
    checked = [v for v in values if v is not None]
    if len(checked) != EMBEDDING_DIM:
        raise BadRequest(400, f"the embedding's values must be finite numbers, each {_FLOAT32_RANGE}; send an "
                              "embedding as /user_embeddings returns it")
    return checked


def _user_embeddings(backend: Backend, users: list[dict[str, Any]]) -> list[list[float]]:
    rows = [[float(v) for v in row] for row in backend.model.user_embeddings(users)]
    for i, row in enumerate(rows):
        # Finite inputs can still overflow float32 inside the towers: only the credit limit is numeric, so it is the
        # value to change. (The model refuses what it can see is out of range with FeatureError, also a 400.)
        if not all(math.isfinite(v) for v in row):
            raise BadRequest(400, f"user #{i}: 'creditlimit' is too large for the model (the embedding overflows); "
                                  "send a realistic credit limit")
    return rows


def _items_from_user(backend: Backend, embedding: list[float], limit: int) -> list[dict[str, Any]]:
    (rows,) = backend.items_for_users([embedding], limit)
    scored = [(item_id, float(score)) for item_id, score in rows]
    # The search computes inner products in float32: values each within float32 can still overflow together.
    if not all(math.isfinite(score) for _, score in scored):
        raise BadRequest(400, "the embedding's values are so large that the scores overflow; send an embedding as "
                              "/user_embeddings returns it")
    return [{"id": item_id, "score": score} for item_id, score in scored]


def _items_from_item(backend: Backend, query: Mapping[str, str]) -> list[dict[str, Any]]:
    item_id = query.get("item_id", "").strip()
    if not item_id:
        raise BadRequest(400, "item_id is required: /items_from_item?item_id=S12_1108&limit=5")
    limit = _limit(query, backend.default_limit)
    # The loader admits only printable ids, so another one cannot be in the catalogue; it is not sent to PostgreSQL
    # either, which refuses NUL characters and lone surrogates with errors of its own.
    (rows,) = backend.similar_items([item_id], limit) if item_id.isprintable() else ([],)
    if not rows:
        raise BadRequest(404, f"item {_echo(item_id)} is not in the item catalogue")
    # A non-finite distance here would come from the catalogue, not the client: json.dumps refuses it (a 500, logged).
    return [{"id": other, "distance": 1.0 - float(similarity)} for other, similarity in rows]


def route(method: str, path: str, query: Mapping[str, str], body: str | None, backend: Backend) -> tuple[int, Any]:
    """(status, JSON payload) for one request."""
    path = "/" + path.strip("/")
    routes: dict[str, str] = {"/user_embeddings": "POST", "/items_from_user": "POST", "/items_from_item": "GET"}
    if path not in routes:
        raise BadRequest(404, f"no such endpoint {_echo(path, quoted=False)}; use "
                              f"{', '.join(f'{m} {p}' for p, m in routes.items())}")
    if method.upper() != routes[path]:
        raise BadRequest(405, f"{path} answers {routes[path]}, not {_echo(method.upper(), quoted=False)}")
    if path == "/user_embeddings":
        return 200, _user_embeddings(backend, _users(_json_body(body)))
    if path == "/items_from_user":
        limit = _limit(query, backend.default_limit)
        return 200, _items_from_user(backend, _embedding(_json_body(body)), limit)
    return 200, _items_from_item(backend, query)


def http_response(status: int, payload: Any) -> dict[str, Any]:
    # allow_nan=False: NaN and Infinity are not JSON; a payload holding one raises instead of reaching a client.
    body = json.dumps(payload, allow_nan=False)
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": body}


def _body_text(body: str, base64_encoded: bool) -> str:
    """The request body as text, 413 when it is over MAX_BODY_BYTES (counted in bytes, as AWS counts it)."""
    too_large = BadRequest(413, f"the request body is over {MAX_BODY_BYTES:,} bytes, Lambda's request limit; "
                                "send fewer users per request")
    if not base64_encoded:
        # Checked on the characters first (each is at least one byte), so a huge body is never encoded to count it.
        if len(body) > MAX_BODY_BYTES or len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            raise too_large
        return body
    if len(body) > _MAX_BASE64_CHARS:
        raise too_large
    try:
        return base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(400, "the body is not valid base64-encoded UTF-8") from None


def request_parts(event: Mapping[str, Any]) -> tuple[str, str, dict[str, str], str | None]:
    http = (event.get("requestContext") or {}).get("http") or {}
    method = http.get("method") or event.get("httpMethod") or "GET"
    path = event.get("rawPath") or http.get("path") or "/"
    query = dict(event.get("queryStringParameters") or {})
    body = event.get("body")
    if body is not None:
        body = _body_text(body, bool(event.get("isBase64Encoded")))
    return method, path, query, body


def serve(event: Mapping[str, Any], backend_factory: Callable[[], Backend]) -> dict[str, Any]:
    try:
        method, path, query, body = request_parts(event)
        status, payload = route(method, path, query, body, backend_factory())
        return http_response(status, payload)
    except BadRequest as err:
        return http_response(err.status, {"error": str(err)})
    except (FeatureError, QueryInputError) as err:
        # The model or the query refused a value of the request: the input, not the service, is wrong.
        return http_response(400, {"error": str(err)})
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as err:
        _container.forget_connection()
        logger.warning("vector database unavailable", extra={"error_type": type(err).__name__})
        return http_response(503, {"error": "the vector database is unavailable; retry shortly"})
    except Exception:
        logger.exception("inference request failed")
        return http_response(500, {"error": "internal error; see the function's log"})


class _Container:
    def __init__(self) -> None:
        self.model: UserEmbedder | None = None
        self.conn: Any = None

    def backend(self) -> Backend:
        if self.model is None:
            self.model = ServingModel.from_s3(
                os.environ["ARTIFACTS_BUCKET"], os.environ.get("SERVING_PREFIX", "serving/")
            )
        if self.conn is None or getattr(self.conn, "closed", False):
            self.conn = vectordb.connect_from_env()
        conn = self.conn

        def items_for_users(embeddings: Any, k: int) -> Sequence[Sequence[tuple[str, float]]]:
            return vectordb.items_for_users(conn, embeddings, k)

        def similar_items(item_ids: Sequence[str], k: int) -> Sequence[Sequence[tuple[str, float]]]:
            return vectordb.similar_items(conn, item_ids, k)

        default = os.environ.get("TOP_K", "5")
        return Backend(self.model, items_for_users, similar_items, int(default) if _is_ascii_digits(default) else 5)

    def forget_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass


_container = _Container()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return serve(event, _container.backend)
