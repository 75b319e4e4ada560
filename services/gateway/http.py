"""HTTP/JSON front of the gateway (aiohttp): the public REST API, health, readiness and /metrics."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.errors import InvalidArgument, WrenError
from services.common.inflight import InFlight
from services.common.logs import request_id
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.gateway.recommender import DEFAULT_K, Recommendations, Recommender
from services.gateway.webapp import add_webapp
from wren.v1 import common_pb2

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
EVENT_FIELDS = {"user_id", "item_id", "type", "rating", "timestamp"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def recommendations_json(result: Recommendations) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": result.user_id or None,
        "items": [
            {
                "item_id": item.item_id,
                "title": item.title,
                "genres": item.genres,
                "score": round(item.score, 6),
                "sources": item.sources,
                "rank_score": None if item.rank_score is None else round(item.rank_score, 6),
                "recall_score": round(item.recall_score, 6),
                "cached": item.cached,
            }
            for item in result.items
        ],
        "model_version": result.model_version,
        "variant": result.variant,
        "degraded": result.degraded,
        "degraded_reason": result.degraded_reason,
        "served_by": result.served_by,
    }
    if result.item_id:
        body["item_id"] = result.item_id
    return body


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _int_param(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise InvalidArgument(f"query parameter {name} is required")
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer, got {raw!r}") from None


def _timeout(request: web.Request) -> float | None:
    raw = request.headers.get("X-Request-Timeout-Ms")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument(f"X-Request-Timeout-Ms must be a number of milliseconds, got {raw!r}") from None
    if not 1 <= value <= 30_000:
        raise InvalidArgument("X-Request-Timeout-Ms must be between 1 and 30000")
    return value / 1000


def parse_event(payload: object) -> common_pb2.Event:
    if not isinstance(payload, dict):
        raise InvalidArgument("the body must be a JSON object")
    unknown = set(payload) - EVENT_FIELDS
    if unknown:
        raise InvalidArgument(f"unknown field(s): {', '.join(sorted(unknown))}")
    for name in ("user_id", "item_id", "type"):
        if name not in payload:
            raise InvalidArgument(f"field {name} is required")
    event = common_pb2.Event(type=str(payload["type"]))
    for name in ("user_id", "item_id", "timestamp"):
        value = payload.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{name} must be an integer")
        setattr(event, name, value)
    if payload.get("rating") is not None:
        rating = payload["rating"]
        if isinstance(rating, bool) or not isinstance(rating, int | float):
            raise InvalidArgument("rating must be a number")
        event.rating = float(rating)
    return event


class GatewayHttp:
    def __init__(self, recommender: Recommender, is_ready: Callable[[], bool], in_flight: InFlight) -> None:
        self.recommender = recommender
        self.is_ready = is_ready
        self.in_flight = in_flight

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._middleware])
        app.router.add_get("/v1/recommendations", self.recommendations)
        app.router.add_get("/v1/items/{item_id}/similar", self.similar)
        app.router.add_post("/v1/events", self.events)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        add_webapp(app)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        request_id.set(request.headers.get("X-Request-ID", ""))
        counted = route.startswith("/v1/")
        started = self.in_flight.enter(f"http {route}") if counted else time.perf_counter()
        try:
            response = await handler(request)
        except WrenError as error:
            response = error_response(error.http_status, error.code, str(error))
        except web.HTTPRequestEntityTooLarge:
            response = error_response(413, "INVALID_ARGUMENT", f"body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPException as error:
            response = error_response(error.status, "INVALID_ARGUMENT" if error.status < 500 else "INTERNAL",
                                      error.reason or "")
        except Exception:
            log.exception("unhandled error in %s", request.path)
            response = error_response(500, "INTERNAL", "internal error")
        elapsed = self.in_flight.leave(f"http {route}", started) if counted else time.perf_counter() - started
        HTTP_LATENCY.labels(route).observe(elapsed)
        HTTP_REQUESTS.labels(route, str(response.status)).inc()
        return response

    async def recommendations(self, request: web.Request) -> web.Response:
        result = await self.recommender.recommend(
            _int_param(request, "user_id"), _int_param(request, "k", DEFAULT_K), _timeout(request)
        )
        return web.json_response(recommendations_json(result))

    async def similar(self, request: web.Request) -> web.Response:
        raw = request.match_info["item_id"]
        try:
            item_id = int(raw)
        except ValueError:
            raise InvalidArgument(f"item id must be an integer, got {raw!r}") from None
        result = await self.recommender.similar(item_id, _int_param(request, "k", DEFAULT_K), _timeout(request))
        return web.json_response(recommendations_json(result))

    async def events(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise InvalidArgument(f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            payload = json.loads(await request.read() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InvalidArgument(f"the body is not valid JSON: {error}") from None
        version = await self.recommender.record_event(parse_event(payload), _timeout(request))
        return web.json_response({"user_version": version})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.is_ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response
