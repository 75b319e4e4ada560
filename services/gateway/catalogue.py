"""CatalogueApi: the gateway's catalogue core — validates, routes to the feature tier, maps its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.validation import (
    MAX_LIST,
    check_genre,
    check_id,
    check_k,
    check_offset,
    check_query,
    check_sort,
)
from services.gateway.context import RequestContext
from services.gateway.errors import UpstreamError, raise_client_errors
from services.gateway.upstream import TierCaller, deadline_after
from wren.core.errors import Unavailable
from wren.v1 import catalogue_pb2

CATALOGUE_KEY = "catalogue"  # routing key of requests about the whole catalogue (search, genres)


@dataclass(frozen=True)
class CatalogueConfig:
    budget_seconds: float = 2.0  # per-request deadline when the caller sets none
    attempt_seconds: float = 1.0  # per feature replica tried (a catalogue answer may be a page of 100 items)


class CatalogueApi:
    """Items, search, genres and users, answered by the feature tier (the gateway holds no copy of the data).
    Requests about an item route by item, about a user by user (the replica that holds their recent events).
    Bad input: InvalidArgument, checked here with the feature tier's own rules before any call; unknown ids:
    NotFound (from the feature tier); the feature tier unreachable: Unavailable."""

    def __init__(self, feature: TierCaller, config: CatalogueConfig = CatalogueConfig()) -> None:
        self.feature = feature
        self.config = config

    async def item(self, item_id: int, timeout: float | None = None) -> catalogue_pb2.ItemDetails:
        check_id(item_id, "item_id")
        return await self._call("GetItem", catalogue_pb2.GetItemRequest(item_id=item_id), f"item:{item_id}", timeout)

    async def search(self, query: str, k: int, timeout: float | None = None) -> catalogue_pb2.ItemList:
        query = check_query(query)
        check_k(k, MAX_LIST)
        return await self._call(
            "SearchItems", catalogue_pb2.SearchItemsRequest(query=query, k=k), CATALOGUE_KEY, timeout
        )

    async def genres(self, timeout: float | None = None) -> catalogue_pb2.GenreList:
        return await self._call("ListGenres", catalogue_pb2.ListGenresRequest(), CATALOGUE_KEY, timeout)

    async def genre_items(self, genre: str, sort: str, k: int, timeout: float | None = None) -> catalogue_pb2.ItemList:
        genre, sort, k = check_genre(genre), check_sort(sort), check_k(k, MAX_LIST)
        request = catalogue_pb2.GenreItemsRequest(genre=genre, sort=sort, k=k)
        return await self._call("GenreItems", request, CATALOGUE_KEY, timeout)

    async def user(
        self, user_id: int, offset: int, limit: int, timeout: float | None = None
    ) -> catalogue_pb2.UserRatings:
        check_id(user_id, "user_id")
        check_offset(offset)
        check_k(limit, MAX_LIST, "limit")
        request = catalogue_pb2.GetUserRequest(user_id=user_id, offset=offset, limit=limit)
        return await self._call("GetUserRatings", request, str(user_id), timeout)

    async def _call(self, method: str, request: Any, key: str, timeout: float | None) -> Any:
        try:
            context = RequestContext.begin(key, deadline_after(self.config.budget_seconds, timeout))
            routed = await self.feature.call(method, request, context, attempt_timeout=self.config.attempt_seconds)
        except UpstreamError as error:
            raise_client_errors(error)
            raise Unavailable(f"the catalogue is unavailable: {error.message}") from None
        return routed.response
