"""The model-inference Lambda behind its Function URL (payload format 2.0): the lab's three endpoints.

- `POST /user_embeddings`: body `[{"city", "country", "creditlimit"}, ...]` (a single object is accepted too) ->
  `[[x1, ..., x32], ...]`, one embedding per user, in order.
- `POST /items_from_user?limit=K`: body one embedding (32 numbers; the one-element list `/user_embeddings` returns is
  accepted as is) -> `[{"id", "score"}, ...]`, best first.
- `GET /items_from_item?item_id=ID&limit=K` -> `[{"id", "distance"}, ...]`, closest first (cosine distance).

Bad input answers 4xx with `{"error": "<what was wrong and what to send>"}`; an unreachable database answers 503 so
clients retry. `route` is pure given the model and the query functions; `handler` adapts the Function URL event.
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

from aws_lambda_powertools import Logger
from recsys.recommend import ItemsForUsers, SimilarItems, UserEmbedder

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "inference"))

EMBEDDING_DIM = 32
MAX_LIMIT = 100
MAX_USERS = 1000


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


def _limit(query: Mapping[str, str], default: int) -> int:
    raw = query.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(400, f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")
    return int(raw)


def _json_body(body: str | None) -> Any:
    if body is None or not body.strip():
        raise BadRequest(400, "the request needs a JSON body")
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise BadRequest(400, f"the body is not valid JSON ({err.msg} at position {err.pos})") from None


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
        credit = user.get("creditlimit", user.get("credit_limit"))
        if isinstance(credit, bool) or not isinstance(credit, int | float) or not math.isfinite(credit):
            raise BadRequest(400, f"user #{i}: 'creditlimit' must be a finite number")
        out.append({"city": user["city"], "country": user["country"], "creditlimit": float(credit)})
    return out


def _embedding(body: Any) -> list[float]:
    # `/user_embeddings` answers a list of embeddings; clients that pass its one-element answer straight on work too.
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], list):
        body = body[0]
    if isinstance(body, dict) and "embedding" in body:
        body = body["embedding"]
    if (
        not isinstance(body, list)
        or len(body) != EMBEDDING_DIM
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in body)
    ):
        raise BadRequest(400, f"the body must be one embedding: a list of {EMBEDDING_DIM} finite numbers")
    return [float(v) for v in body]


def route(method: str, path: str, query: Mapping[str, str], body: str | None, backend: Backend) -> tuple[int, Any]:
    """(status, JSON payload) for one request."""
    path = "/" + path.strip("/")
    routes: dict[str, str] = {"/user_embeddings": "POST", "/items_from_user": "POST", "/items_from_item": "GET"}
    if path not in routes:
        raise BadRequest(404, f"no such endpoint {path}; use {', '.join(f'{m} {p}' for p, m in routes.items())}")
    if method.upper() != routes[path]:
        raise BadRequest(405, f"{path} answers {routes[path]}, not {method.upper()}")
    if path == "/user_embeddings":
        embeddings = backend.model.user_embeddings(_users(_json_body(body)))
        return 200, [[float(v) for v in row] for row in embeddings]
    if path == "/items_from_user":
        limit = _limit(query, backend.default_limit)
        embedding = _embedding(_json_body(body))
        (rows,) = backend.items_for_users([embedding], limit)
        return 200, [{"id": item_id, "score": float(score)} for item_id, score in rows]
    item_id = query.get("item_id", "").strip()
    if not item_id:
        raise BadRequest(400, "item_id is required: /items_from_item?item_id=S12_1108&limit=5")
    limit = _limit(query, backend.default_limit)
    (rows,) = backend.similar_items([item_id], limit)
    if not rows:
        raise BadRequest(404, f"item {item_id!r} is not in the item catalogue")
    return 200, [{"id": other, "distance": 1.0 - float(similarity)} for other, similarity in rows]


def http_response(status: int, payload: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(payload)}


def request_parts(event: Mapping[str, Any]) -> tuple[str, str, dict[str, str], str | None]:
    http = (event.get("requestContext") or {}).get("http") or {}
    method = http.get("method") or event.get("httpMethod") or "GET"
    path = event.get("rawPath") or http.get("path") or "/"
    query = dict(event.get("queryStringParameters") or {})
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise BadRequest(400, "the body is not valid base64-encoded UTF-8") from None
    return method, path, query, body


def serve(event: Mapping[str, Any], backend_factory: Callable[[], Backend]) -> dict[str, Any]:
    try:
        method, path, query, body = request_parts(event)
        status, payload = route(method, path, query, body, backend_factory())
    except BadRequest as err:
        return http_response(err.status, {"error": str(err)})
    except ValueError as err:
        # recsys.model.FeatureError and recsys.vectordb.QueryInputError: the input, not the service, is wrong.
        if type(err).__name__ in ("FeatureError", "QueryInputError"):
            return http_response(400, {"error": str(err)})
        logger.exception("inference request failed")
        return http_response(500, {"error": "internal error; see the function's log"})
    except Exception as err:
        if _is_database_error(err):
            _container.forget_connection()
            logger.warning("vector database unavailable", extra={"error_type": type(err).__name__})
            return http_response(503, {"error": "the vector database is unavailable; retry shortly"})
        logger.exception("inference request failed")
        return http_response(500, {"error": "internal error; see the function's log"})
    return http_response(status, payload)


def _is_database_error(err: Exception) -> bool:
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - psycopg2 is in the layer
        return False
    return isinstance(err, psycopg2.OperationalError | psycopg2.InterfaceError)


class _Container:
    def __init__(self) -> None:
        self.model: UserEmbedder | None = None
        self.conn: Any = None

    def backend(self) -> Backend:
        from recsys import vectordb
        from recsys.model import ServingModel

        if self.model is None:
            self.model = ServingModel.from_s3(
                os.environ["ARTIFACTS_BUCKET"], os.environ.get("SERVING_PREFIX", "serving/")
            )
        if self.conn is None or getattr(self.conn, "closed", 0):
            self.conn = vectordb.connect_from_env()
        conn = self.conn

        def items_for_users(embeddings: Any, k: int) -> Sequence[Sequence[tuple[str, float]]]:
            return vectordb.items_for_users(conn, embeddings, k)

        def similar_items(item_ids: Sequence[str], k: int) -> Sequence[Sequence[tuple[str, float]]]:
            return vectordb.similar_items(conn, item_ids, k)

        default = os.environ.get("TOP_K", "5")
        return Backend(self.model, items_for_users, similar_items, int(default) if default.isdigit() else 5)

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
