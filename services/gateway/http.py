"""HTTP/JSON front of the gateway (aiohttp): the routes of services.gateway.routes, served thinly over the cores."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

import wren
from services.common.convert import event_from_proto
from services.common.inflight import InFlight
from services.common.logs import REQUEST_ID_HEADER, request_id
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.gateway import api_models as models
from services.gateway.catalogue import CatalogueApi
from services.gateway.openapi import openapi_document
from services.gateway.recommender import Recommender
from services.gateway.routes import ROUTES, TIMEOUT, Route
from services.gateway.webapp import add_webapp
from wren.core.errors import InvalidArgument, NotFound, Unimplemented, WrenError, code_for_http
from wren.v1 import common_pb2

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
EVENT_FIELDS = {"user_id", "item_id", "type", "rating", "timestamp", "event_id"}
INT64 = (-(2**63), 2**63)
ASCII_INTEGER = re.compile(r"-?[0-9]{1,19}")
MAX_JSON_DIGITS = 4300  # Python's int() limit: json.loads refuses longer numbers
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Params = dict[str, Any]


def error_response(status: int, code: str, message: str) -> web.Response:
    """Every HTTP error: {"error": {"code", "message"}} with `code` from wren.core.errors.ERRORS."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _table_response(error: WrenError) -> web.Response:
    return error_response(error.http_status, error.code, str(error))


def parse_params(route: Route, request: web.Request) -> Params:
    """The route's query and path parameters, typed, defaults filled in; InvalidArgument naming the parameter
    when a required one is missing or one does not parse (range checks are the cores')."""
    values: Params = {}
    for param in route.params:
        if param.location == "header":
            continue
        raw = request.match_info.get(param.name) if param.location == "path" else request.query.get(param.name)
        if raw is None:
            if param.required:
                raise InvalidArgument(f"query parameter {param.name} is required")
            values[param.name] = param.default
        elif param.kind == "integer":
            if not ASCII_INTEGER.fullmatch(raw):  # int() would also take "٧", "７", "+7" and "7_0"
                raise InvalidArgument(f"{param.name} must be an integer, got {raw!r}")
            values[param.name] = int(raw)
        else:
            values[param.name] = raw
    return values


def _timeout(request: web.Request) -> float | None:
    raw = request.headers.get(TIMEOUT.name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgument(f"{TIMEOUT.name} must be a number of milliseconds, got {raw!r}") from None
    if not TIMEOUT.minimum <= value <= TIMEOUT.maximum:  # type: ignore[operator]
        raise InvalidArgument(f"{TIMEOUT.name} must be between {TIMEOUT.minimum} and {TIMEOUT.maximum}")
    return value / 1000


def parse_json(raw: bytes) -> object:
    """The body as JSON; InvalidArgument naming what is wrong (never the parser's exception text)."""
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidArgument("the body is nested more than the JSON parser allows") from None
    except ValueError:  # the only other ValueError json.loads raises: an integer past int()'s digit limit
        raise InvalidArgument(f"the body has a number with more than {MAX_JSON_DIGITS} digits") from None


def _text(payload: dict, name: str) -> str:
    value = payload[name]
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name} must be valid Unicode text (it holds a lone surrogate)") from None
    return value


def parse_event(payload: object) -> common_pb2.Event:
    if not isinstance(payload, dict):
        raise InvalidArgument("the body must be a JSON object")
    unknown = set(payload) - EVENT_FIELDS
    if unknown:
        raise InvalidArgument(f"unknown field(s): {', '.join(sorted(unknown))}")
    for name in ("user_id", "item_id", "type"):
        if name not in payload:
            raise InvalidArgument(f"field {name} is required")
    event = common_pb2.Event(type=_text(payload, "type"))
    for name in ("user_id", "item_id", "timestamp"):
        value = payload.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{name} must be an integer")
        if not INT64[0] <= value < INT64[1]:
            raise InvalidArgument(f"{name} is out of range, got {value}")
        setattr(event, name, value)
    if payload.get("rating") is not None:
        rating = payload["rating"]
        if isinstance(rating, bool) or not isinstance(rating, int | float):
            raise InvalidArgument("rating must be a number")
        event.rating = float(rating)
    if payload.get("event_id") is not None:
        event.event_id = _text(payload, "event_id")
    return event


class GatewayHttp:
    def __init__(
        self, recommender: Recommender, catalogue: CatalogueApi, is_ready: Callable[[], bool], in_flight: InFlight
    ) -> None:
        self.recommender = recommender
        self.catalogue = catalogue
        self.is_ready = is_ready
        self.in_flight = in_flight
        self.document = openapi_document(ROUTES, "Wren gateway", wren.__version__)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._middleware])
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self._bind(route))
        add_webapp(app)
        return app

    def _bind(self, route: Route) -> Handler:
        handler = getattr(self, route.handler)

        async def serve(request: web.Request) -> web.StreamResponse:
            result = await handler(request, parse_params(route, request))
            return (
                result if isinstance(result, web.StreamResponse) else web.json_response(result.model_dump(mode="json"))
            )

        return serve

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        request_id.set(request.headers.get(REQUEST_ID_HEADER, ""))
        counted = route.startswith("/v1/")
        started = self.in_flight.enter(f"http {route}") if counted else time.perf_counter()
        try:
            response = await handler(request)
        except WrenError as error:
            response = _table_response(error)
        except web.HTTPRequestEntityTooLarge:  # HTTP's own status for a body-size problem; the code is the table's
            response = error_response(413, "INVALID_ARGUMENT", f"body larger than {MAX_BODY_BYTES} bytes")
        except web.HTTPNotFound:
            response = _table_response(NotFound(f"no such path: {request.path}"))
        except web.HTTPMethodNotAllowed as error:
            allowed = ", ".join(sorted(error.allowed_methods))
            response = _table_response(
                Unimplemented(f"{request.method} is not allowed on {request.path}; allowed: {allowed}")
            )
            response.headers["Allow"] = allowed
        except web.HTTPException as error:
            response = error_response(error.status, code_for_http(error.status), error.reason or "")
        except Exception:
            log.exception("unhandled error in %s", request.path)
            response = _table_response(WrenError("internal error"))
        elapsed = self.in_flight.leave(f"http {route}", started) if counted else time.perf_counter() - started
        HTTP_LATENCY.labels(route).observe(elapsed)
        HTTP_REQUESTS.labels(route, str(response.status)).inc()
        return response

    async def recommendations(self, request: web.Request, params: Params) -> BaseModel:
        result = await self.recommender.recommend(params["user_id"], params["k"], _timeout(request))
        return models.recommendations_body(result)

    async def similar(self, request: web.Request, params: Params) -> BaseModel:
        result = await self.recommender.similar(params["item_id"], params["k"], _timeout(request))
        return models.recommendations_body(result)

    async def events(self, request: web.Request, params: Params) -> BaseModel:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise InvalidArgument(f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            raw = await request.read()
        except RequestPayloadError:
            encoding = request.headers.get("Content-Encoding", "")
            raise InvalidArgument(f"the body is not valid compressed data (Content-Encoding {encoding!r})") from None
        payload = parse_json(raw)
        version = await self.recommender.record_event(event_from_proto(parse_event(payload)), _timeout(request))
        return models.EventBody(user_version=version)

    async def item(self, request: web.Request, params: Params) -> BaseModel:
        return models.item_body(await self.catalogue.item(params["item_id"], _timeout(request)))

    async def search(self, request: web.Request, params: Params) -> BaseModel:
        return models.search_body(await self.catalogue.search(params["q"], params["k"], _timeout(request)))

    async def genres(self, request: web.Request, params: Params) -> BaseModel:
        return models.genres_body(await self.catalogue.genres(_timeout(request)))

    async def genre_items(self, request: web.Request, params: Params) -> BaseModel:
        items = await self.catalogue.genre_items(params["genre"], params["sort"], params["k"], _timeout(request))
        return models.genre_items_body(items)

    async def user(self, request: web.Request, params: Params) -> BaseModel:
        result = await self.catalogue.user(params["user_id"], params["offset"], params["limit"], _timeout(request))
        return models.user_body(result)

    async def healthz(self, request: web.Request, params: Params) -> BaseModel:
        return models.HealthBody(status="ok")

    async def readyz(self, request: web.Request, params: Params) -> web.StreamResponse:
        ready = self.is_ready()
        return web.json_response(models.ReadyBody(ready=ready).model_dump(), status=200 if ready else 503)

    async def metrics(self, request: web.Request, params: Params) -> web.StreamResponse:
        response = web.Response(body=generate_latest())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    async def openapi(self, request: web.Request, params: Params) -> web.StreamResponse:
        return web.json_response(self.document)
