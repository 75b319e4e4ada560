"""FeatureCore: validation and caching in front of a feature store (no transport here)."""

from __future__ import annotations

import time

import numpy as np

from services.common.caches import MISSING, UserKeyedCache
from services.common.validation import check_id, check_ids, validate_event
from services.feature.store import FeatureStore
from wren.core.types import Event, ItemBatch, UserProfile


class FeatureCore:
    """User rows are cached per replica (TTL) and dropped the moment an event for that user arrives, so
    a user's next read after a write sees it."""

    def __init__(self, store: FeatureStore, user_cache: UserKeyedCache, max_items: int = 2000) -> None:
        self.store = store
        self.user_cache = user_cache
        self.max_items = max_items

    @property
    def bundle_version(self) -> str:
        return self.store.bundle_version

    async def user(self, user_id: int) -> UserProfile:
        check_id(user_id, "user_id")
        cached = self.user_cache.get(user_id)
        if cached is not MISSING:
            return cached
        profile = await self.store.get_user(user_id)
        self.user_cache.put(user_id, (), profile)
        return profile

    async def items(self, item_ids: list[int] | np.ndarray) -> ItemBatch:
        return await self.store.get_items(check_ids(np.asarray(item_ids), "item_ids", self.max_items))

    async def record(self, event: Event) -> int:
        validate_event(event)
        if event.timestamp == 0:
            event.timestamp = int(time.time())
        version = await self.store.record_event(event)
        self.user_cache.invalidate(event.user_id)
        return version
