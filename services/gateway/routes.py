"""The public HTTP API as one table: the aiohttp router and the OpenAPI document are both built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from services.common.validation import (
    DEFAULT_GENRE_K,
    DEFAULT_PAGE,
    DEFAULT_SEARCH_K,
    DEFAULT_SORT,
    MAX_ID,
    MAX_LIST,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    SORTS,
)
from services.gateway import api_models as models
from services.gateway.recommender import DEFAULT_K, MAX_K

MAX_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Param:
    """One request parameter: where it travels, its type and the limits the core enforces (documented here)."""

    name: str
    location: Literal["query", "path", "header"]
    kind: Literal["integer", "string", "number"]
    description: str
    required: bool = False
    default: int | str | None = None
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Route:
    """One operation. `handler` names the GatewayHttp method that serves it; `response` is the 200 body (None
    for a non-JSON body of `content_type`); `errors` maps each other status it may answer to its meaning
    (bodies are ErrorBody unless `error_bodies` names another model)."""

    method: str
    path: str
    handler: str
    summary: str
    response: type[BaseModel] | None
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    errors: dict[int, str] = field(default_factory=dict)
    error_bodies: dict[int, type[BaseModel]] = field(default_factory=dict)
    content_type: str = "application/json"
    tag: str = "recommendations"


TIMEOUT = Param(
    "X-Request-Timeout-Ms",
    "header",
    "number",
    "deadline of the whole request in milliseconds",
    minimum=1,
    maximum=MAX_TIMEOUT_MS,
)
BAD_INPUT = "bad input: a parameter is missing, malformed or out of range (the message names it)"
UNAVAILABLE = "a tier the answer needs is unavailable"


def _id(name: str, location: Literal["query", "path"], what: str, required: bool = True) -> Param:
    return Param(name, location, "integer", what, required=required, minimum=1, maximum=MAX_ID - 1)


def _count(name: str, default: int, maximum: int, what: str) -> Param:
    return Param(name, "query", "integer", what, default=default, minimum=1, maximum=maximum)


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/v1/recommendations",
        "recommendations",
        "Top-k recommendations for a user, with provenance",
        models.RecommendationsBody,
        (_id("user_id", "query", "the user"), _count("k", DEFAULT_K, MAX_K, "list length"), TIMEOUT),
        errors={400: BAD_INPUT, 503: UNAVAILABLE},
    ),
    Route(
        "GET",
        "/v1/items/{item_id}/similar",
        "similar",
        "Items similar to an item",
        models.SimilarItemsBody,
        (_id("item_id", "path", "the item"), _count("k", DEFAULT_K, MAX_K, "list length"), TIMEOUT),
        errors={400: BAD_INPUT, 404: "unknown item", 503: UNAVAILABLE},
    ),
    Route(
        "POST",
        "/v1/events",
        "events",
        "Records an interaction; the user's next reads reflect it",
        models.EventBody,
        (TIMEOUT,),
        body=models.EventRequest,
        errors={
            400: BAD_INPUT + "; or the body is not a valid event",
            413: "the body is too large",
            503: "the event could not be stored",
        },
    ),
    Route(
        "GET",
        "/v1/items/{item_id}",
        "item",
        "One item: title, year, genres, rating statistics, tags, links",
        models.ItemBody,
        (_id("item_id", "path", "the item"), TIMEOUT),
        errors={400: BAD_INPUT, 404: "unknown item", 503: UNAVAILABLE},
        tag="catalogue",
    ),
    Route(
        "GET",
        "/v1/items",
        "search",
        "Items whose title matches a query (case- and accent-insensitive)",
        models.SearchBody,
        (
            Param("q", "query", "string", "words the title must contain", required=True, max_length=MAX_QUERY_CHARS),
            _count("k", DEFAULT_SEARCH_K, MAX_LIST, "most items returned"),
            TIMEOUT,
        ),
        errors={400: BAD_INPUT, 503: UNAVAILABLE},
        tag="catalogue",
    ),
    Route(
        "GET",
        "/v1/genres",
        "genres",
        "Every genre with its item count",
        models.GenresBody,
        (TIMEOUT,),
        errors={400: BAD_INPUT, 503: UNAVAILABLE},
        tag="catalogue",
    ),
    Route(
        "GET",
        "/v1/genres/{genre}/items",
        "genre_items",
        "A genre's top items by rating or popularity",
        models.GenreItemsBody,
        (
            Param(
                "genre",
                "path",
                "string",
                "genre name, matched case-insensitively",
                required=True,
                max_length=MAX_QUERY_CHARS,
            ),
            Param(
                "sort",
                "query",
                "string",
                "rating: Bayesian mean rating; popularity: most rated",
                default=DEFAULT_SORT,
                enum=SORTS,
            ),
            _count("k", DEFAULT_GENRE_K, MAX_LIST, "most items returned"),
            TIMEOUT,
        ),
        errors={400: BAD_INPUT, 404: "unknown genre", 503: UNAVAILABLE},
        tag="catalogue",
    ),
    Route(
        "GET",
        "/v1/users/{user_id}",
        "user",
        "A user's segment, counters and rated items, newest first",
        models.UserBody,
        (
            _id("user_id", "path", "the user"),
            Param("offset", "query", "integer", "rated items to skip", default=0, minimum=0, maximum=MAX_OFFSET),
            _count("limit", DEFAULT_PAGE, MAX_LIST, "rated items per page"),
            TIMEOUT,
        ),
        errors={400: BAD_INPUT, 404: "unknown user", 503: UNAVAILABLE},
        tag="catalogue",
    ),
    Route("GET", "/healthz", "healthz", "Liveness: the process answers", models.HealthBody, tag="operations"),
    Route(
        "GET",
        "/readyz",
        "readyz",
        "Readiness: every tier has a routable replica",
        models.ReadyBody,
        errors={503: "not ready"},
        error_bodies={503: models.ReadyBody},
        tag="operations",
    ),
    Route("GET", "/metrics", "metrics", "Prometheus metrics", None, content_type="text/plain", tag="operations"),
    Route("GET", "/openapi.json", "openapi", "This document", None, content_type="application/json", tag="operations"),
)
