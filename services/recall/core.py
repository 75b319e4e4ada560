"""RecallCore: validation, result caches and hot reload around the Recaller (no transport here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.common.caches import MISSING, MeteredCache, UserKeyedCache
from services.common.validation import check_id, check_k
from wren.core.bundle import Bundle
from wren.core.errors import InvalidArgument
from wren.core.recall.channels import Trending
from wren.core.recall.recaller import Recaller
from wren.core.types import Candidates, UserProfile


@dataclass(frozen=True)
class AddedItem:
    item_id: int
    genres: tuple[str, ...]
    tags: tuple[str, ...]


class RecallCore:
    """Candidate lists are cached per user under the user's feature version, so an event (which bumps the
    version) can never be answered from an older list; similar-item lists are cached per item."""

    def __init__(
        self,
        recaller: Recaller,
        user_cache: UserKeyedCache,
        similar_cache: MeteredCache,
        index_kind: str | None = None,
        trending: Trending | None = None,
    ) -> None:
        self.recaller = recaller
        self.trending = trending
        self.user_cache = user_cache
        self.similar_cache = similar_cache
        self.index_kind = index_kind
        self.added: dict[int, AddedItem] = {}

    @property
    def version(self) -> str:
        return self.recaller.version

    def recall(self, profile: UserProfile, k: int) -> tuple[Candidates, bool]:
        """(candidates, served from cache)."""
        check_id(profile.user_id, "user.user_id")
        check_k(k, self.recaller.max_k)
        trending = self.trending.generation if self.trending else 0
        key = (k, profile.version, profile.bundle_version, self.version, trending)
        cached = self.user_cache.get(profile.user_id, key)
        if cached is not MISSING:
            return cached, True
        candidates = self.recaller.recall(profile, k)
        self.user_cache.put(profile.user_id, key, candidates)
        return candidates, False

    def similar(self, item_id: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        check_id(item_id, "item_id")
        check_k(k, self.recaller.max_k)
        key = (item_id, k, self.version)
        cached = self.similar_cache.get(key)
        if cached is not MISSING:
            return cached
        result = self.recaller.similar_items(item_id, k)
        self.similar_cache.put(key, result)
        return result

    def add_item(self, item_id: int, genres: list[str], tags: list[str]) -> tuple[int, int]:
        """(content neighbours used, items in the index). Cached lists are dropped: any may change."""
        check_id(item_id, "item_id")
        if not genres and not tags:
            raise InvalidArgument("a new item needs at least one genre or tag to be placed")
        used = self.recaller.catalog.add_item(item_id, genres, tags)
        self.added[item_id] = AddedItem(item_id, tuple(genres), tuple(tags))
        self._clear()
        return used, len(self.recaller.catalog.index)

    def reload(self, bundle: Bundle) -> None:
        """Switches to a new bundle; items added since the old one was loaded are added again."""
        recaller = Recaller.from_bundle(bundle, self.index_kind, self.trending, max_k=self.recaller.max_k)
        for item in self.added.values():
            if recaller.catalog.row(item.item_id) < 0:
                recaller.catalog.add_item(item.item_id, list(item.genres), list(item.tags))
        self.recaller = recaller
        self._clear()

    def _clear(self) -> None:
        self.user_cache.clear()
        self.similar_cache.clear()
