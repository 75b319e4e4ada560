"""Bodies of the public HTTP API as pydantic models (the OpenAPI document's schemas) and their construction."""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from services.gateway.results import Recommendations
from wren.core.schema import EVENT_TYPES
from wren.v1 import catalogue_pb2

GenreSort = Literal["rating", "popularity"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Body):
    code: str = Field(description="gRPC status name, e.g. INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE")
    message: str = Field(description="what went wrong, naming the offending parameter")


class ErrorBody(Body):
    error: ErrorDetail


class RecommendedItemBody(Body):
    item_id: int
    title: str
    genres: list[str]
    score: float = Field(description="the score the list is ordered by")
    sources: list[str] = Field(description="recall channels that proposed the item")
    rank_score: float | None = Field(description="ranking model output; null when ranking was skipped")
    recall_score: float
    cached: bool = Field(description="served from the gateway's result cache")


class RecommendationsBody(Body):
    user_id: int | None
    items: list[RecommendedItemBody]
    model_version: str
    variant: str
    degraded: bool
    degraded_reason: str = Field(description="every fallback taken, comma-separated; empty when none")
    served_by: dict[str, str] = Field(description="tier -> replica address that answered")


class SimilarItemsBody(RecommendationsBody):
    item_id: int = Field(description="the item the list is similar to")


class EventRequest(Body):
    user_id: int = Field(ge=1, lt=2**62)
    item_id: int = Field(ge=1, lt=2**62)
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    rating: float | None = Field(default=None, ge=0.5, le=5.0, description="required when type is rating")
    timestamp: int = Field(default=0, ge=0, lt=2**62, description="seconds since the epoch; 0 means now")


class EventBody(Body):
    user_version: int = Field(description="the user's feature version after this event")


class HealthBody(Body):
    status: Literal["ok"]


class ReadyBody(Body):
    ready: bool


class ItemSummaryBody(Body):
    item_id: int
    title: str
    year: int | None = Field(description="release year; null when unknown")
    genres: list[str]
    rating_count: int = Field(description="ratings in the data the bundle was built from, plus those recorded since")
    rating_mean: float | None = Field(description="mean of those ratings; null when nobody rated the item")


class ItemLinksBody(Body):
    movielens: str
    imdb: str | None
    tmdb: str | None


class ItemDetailsBody(ItemSummaryBody):
    tags: list[str] = Field(description="most applied first")
    links: ItemLinksBody


class ItemBody(Body):
    item: ItemDetailsBody


class SearchBody(Body):
    query: str
    items: list[ItemSummaryBody] = Field(description="best matches first")


class GenreCountBody(Body):
    genre: str
    item_count: int


class GenresBody(Body):
    genres: list[GenreCountBody] = Field(description="sorted by name")


class GenreItemsBody(Body):
    genre: str
    sort: GenreSort
    items: list[ItemSummaryBody]


class UserCountersBody(Body):
    rating_count: int
    rating_mean: float | None
    positive_count: int
    event_count: int = Field(description="events recorded since the bundle was built")


class RatedItemBody(Body):
    item: ItemSummaryBody
    rating: float | None = Field(description="the user's latest rating; null for items only clicked or viewed")
    timestamp: int = Field(description="seconds since the epoch of the latest interaction; 0 when unknown")


class UserBody(Body):
    user_id: int
    segment: str
    counters: UserCountersBody
    ratings: list[RatedItemBody] = Field(description="newest first, events recorded live included")
    total: int
    offset: int
    limit: int


def recommendations_body(result: Recommendations) -> RecommendationsBody:
    fields: dict[str, Any] = {
        "user_id": result.user_id or None,
        "items": [
            RecommendedItemBody(
                item_id=item.item_id,
                title=item.title,
                genres=item.genres,
                score=round(item.score, 6),
                sources=item.sources,
                rank_score=None if item.rank_score is None else round(item.rank_score, 6),
                recall_score=round(item.recall_score, 6),
                cached=item.cached,
            )
            for item in result.items
        ],
        "model_version": result.model_version,
        "variant": result.variant,
        "degraded": result.degraded,
        "degraded_reason": result.degraded_reason,
        "served_by": result.served_by,
    }
    return SimilarItemsBody(item_id=result.item_id, **fields) if result.item_id else RecommendationsBody(**fields)


def summary_body(summary: catalogue_pb2.ItemSummary) -> ItemSummaryBody:
    return ItemSummaryBody(**_summary_fields(summary))


def _summary_fields(summary: catalogue_pb2.ItemSummary) -> dict:
    return {
        "item_id": summary.item_id,
        "title": summary.title,
        "year": summary.year if summary.HasField("year") else None,
        "genres": list(summary.genres),
        "rating_count": summary.rating_count,
        "rating_mean": summary.rating_mean if summary.HasField("rating_mean") else None,
    }


def item_body(details: catalogue_pb2.ItemDetails) -> ItemBody:
    links = details.links
    return ItemBody(
        item=ItemDetailsBody(
            **_summary_fields(details.summary),
            tags=list(details.tags),
            links=ItemLinksBody(
                movielens=links.movielens,
                imdb=links.imdb if links.HasField("imdb") else None,
                tmdb=links.tmdb if links.HasField("tmdb") else None,
            ),
        )
    )


def search_body(items: catalogue_pb2.ItemList) -> SearchBody:
    return SearchBody(query=items.query, items=[summary_body(item) for item in items.items])


def genres_body(genres: catalogue_pb2.GenreList) -> GenresBody:
    return GenresBody(genres=[GenreCountBody(genre=g.genre, item_count=g.item_count) for g in genres.genres])


def genre_items_body(items: catalogue_pb2.ItemList) -> GenreItemsBody:
    sort = cast(GenreSort, items.sort)  # one of GenreSort: validated on the way in (check_sort), checked again here
    return GenreItemsBody(genre=items.genre, sort=sort, items=[summary_body(item) for item in items.items])


def user_body(user: catalogue_pb2.UserRatings) -> UserBody:
    counters = user.counters
    return UserBody(
        user_id=user.user_id,
        segment=user.segment,
        counters=UserCountersBody(
            rating_count=counters.rating_count,
            positive_count=counters.positive_count,
            event_count=counters.event_count,
            rating_mean=counters.rating_mean if counters.HasField("rating_mean") else None,
        ),
        ratings=[
            RatedItemBody(
                item=summary_body(rated.item),
                timestamp=rated.timestamp,
                rating=rated.rating if rated.HasField("rating") else None,
            )
            for rated in user.ratings
        ],
        total=user.total,
        offset=user.offset,
        limit=user.limit,
    )
