"""FeatureCore: validation and caching in front of a feature store (no transport here)."""

from __future__ import annotations

import math
import re
import time

import numpy as np

from services.common.caches import MISSING, UserKeyedCache
from services.common.errors import InvalidArgument
from services.common.schema import EVENT_TYPES
from services.common.types import Event, ItemBatch, UserProfile
from services.common.validation import check_id, check_ids
from services.feature.store import FeatureStore

RATING_RANGE = (0.5, 5.0)
EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


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
        return await self.store.get_items(check_ids(item_ids, "item_ids", self.max_items))

    async def record(self, event: Event) -> int:
        validate_event(event)
        if event.timestamp == 0:
            event.timestamp = int(time.time())
        version = await self.store.record_event(event)
        self.user_cache.invalidate(event.user_id)
        return version


def validate_event(event: Event) -> None:
    check_id(event.user_id, "user_id")
    check_id(event.item_id, "item_id")
    if event.type not in EVENT_TYPES:
        raise InvalidArgument(f"type must be one of {', '.join(EVENT_TYPES)}, got {event.type!r}")
    if event.type == "rating":
        if event.rating is None:
            raise InvalidArgument("a rating event needs a rating")
        if not math.isfinite(event.rating) or not RATING_RANGE[0] <= event.rating <= RATING_RANGE[1]:
            raise InvalidArgument(f"rating must be between {RATING_RANGE[0]} and {RATING_RANGE[1]}, got {event.rating}")
    elif event.rating is not None:
        raise InvalidArgument(f"a {event.type} event carries no rating")
    if event.timestamp < 0:
        raise InvalidArgument(f"timestamp must be seconds since the epoch, got {event.timestamp}")
    if event.event_id and not EVENT_ID.fullmatch(event.event_id):
        raise InvalidArgument("event_id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'")
