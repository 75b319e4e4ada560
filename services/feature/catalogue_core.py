"""CatalogueCore: the feature tier's catalogue queries (items, search, genres, a user's ratings), no transport."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from services.common.validation import (
    MAX_LIST,
    check_genre,
    check_id,
    check_k,
    check_offset,
    check_query,
    check_sort,
)
from services.feature.store import FeatureStore
from wren.core.errors import NotFound
from wren.core.types import ItemDetails, ItemLinks, ItemList, ItemSummary, RatedItem, UserRatings

MOVIELENS_URL = "https://movielens.org/movies/{}"
IMDB_URL = "https://www.imdb.com/title/tt{}/"
TMDB_URL = "https://www.themoviedb.org/movie/{}"


def item_links(item_id: int, imdb_id: str | None, tmdb_id: str | None) -> ItemLinks:
    return ItemLinks(
        MOVIELENS_URL.format(item_id),
        IMDB_URL.format(imdb_id) if imdb_id else None,
        TMDB_URL.format(tmdb_id) if tmdb_id else None,
    )


def with_live_ratings(summary: ItemSummary, count: int, total: float) -> ItemSummary:
    """The bundle's rating count and mean with ratings recorded since folded in."""
    if not count:
        return summary
    known = summary.rating_count * (summary.rating_mean or 0.0)
    n = summary.rating_count + count
    return dataclasses.replace(summary, rating_count=n, rating_mean=round((known + total) / n, 4))


class CatalogueCore:
    """Validates, then answers from the store that `store()` returns at call time (bundle reloads swap it).
    Unknown item, genre or user: NotFound; bad input: InvalidArgument (services.common.validation)."""

    def __init__(self, store: Callable[[], FeatureStore]) -> None:
        self.store = store

    async def item(self, item_id: int) -> ItemDetails:
        check_id(item_id, "item_id")
        store = self.store()
        summary = with_live_ratings((await store.catalogue()).summary(item_id), *await store.live_ratings(item_id))
        extras = await store.item_extras(item_id)
        tags = extras.tags if extras else []
        imdb_id, tmdb_id = (extras.imdb_id, extras.tmdb_id) if extras else (None, None)
        return ItemDetails(summary, tags, item_links(item_id, imdb_id, tmdb_id))

    async def search(self, query: str, k: int) -> ItemList:
        check_k(k, MAX_LIST)
        query = check_query(query)
        return ItemList((await self.store().catalogue()).search(query, k), query=query)

    async def genres(self) -> list[tuple[str, int]]:
        return (await self.store().catalogue()).genre_counts()

    async def genre_items(self, genre: str, sort: str, k: int) -> ItemList:
        genre, sort, k = check_genre(genre), check_sort(sort), check_k(k, MAX_LIST)
        catalogue = await self.store().catalogue()
        name = catalogue.genre(genre)
        return ItemList(catalogue.genre_items(name, sort, k), genre=name, sort=sort)

    async def user_ratings(self, user_id: int, offset: int, limit: int) -> UserRatings:
        check_id(user_id, "user_id")
        check_offset(offset)
        check_k(limit, MAX_LIST, "limit")
        store = self.store()
        history = await store.user_history(user_id)
        if not history.known:
            raise NotFound(f"unknown user {user_id}")
        page = history.entries[offset : offset + limit]
        summaries = (await store.catalogue()).summaries([entry.item_id for entry in page])
        count, total, _, positives = history.counters.tolist()
        return UserRatings(
            user_id=user_id,
            segment=history.segment,
            rating_count=int(count),
            rating_mean=round(total / count, 4) if count else None,
            positive_count=int(positives),
            event_count=history.event_count,
            ratings=[
                RatedItem(summary, entry.rating, entry.timestamp)
                for summary, entry in zip(summaries, page, strict=True)
            ],
            total=len(history.entries),
            offset=offset,
            limit=limit,
        )
