"""In-process TTL+LRU caches that export hits, misses and size, with O(1) invalidation per user."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from cachetools import TTLCache

from services.common.metrics import CACHE_INVALIDATIONS, CACHE_REQUESTS, CACHE_SIZE

MISSING = object()


class MeteredCache:
    """A bounded TTL cache (least recently used evicted first) reporting to `wren_cache_*{cache=name}`."""

    def __init__(self, name: str, maxsize: int, ttl_seconds: float) -> None:
        self.name = name
        self._entries: TTLCache = TTLCache(maxsize=max(1, maxsize), ttl=ttl_seconds)
        self.enabled = maxsize > 0 and ttl_seconds > 0
        self._hits = CACHE_REQUESTS.labels(name, "hit")
        self._misses = CACHE_REQUESTS.labels(name, "miss")
        self._size = CACHE_SIZE.labels(name)

    def get(self, key: Hashable) -> Any:
        """The cached value, or MISSING."""
        value = self._entries.get(key, MISSING) if self.enabled else MISSING
        (self._misses if value is MISSING else self._hits).inc()
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.enabled:
            self._entries[key] = value
            self._size.set(len(self._entries))

    def clear(self) -> None:
        self._entries.clear()
        self._size.set(0)

    def __len__(self) -> int:
        return len(self._entries)


class UserKeyedCache:
    """A MeteredCache whose entries belong to a user; `invalidate(user)` hides all of them at once.

    Every key carries the user's generation number; invalidation bumps it, so older entries can never
    be read again and simply age out. Generations live twice as long as entries (and there is room for
    four times as many users), so a generation is never forgotten while entries of an older one live.
    """

    def __init__(self, name: str, maxsize: int, ttl_seconds: float) -> None:
        self.name = name
        self._cache = MeteredCache(name, maxsize, ttl_seconds)
        self._generations: TTLCache = TTLCache(maxsize=max(1, 4 * maxsize), ttl=max(2 * ttl_seconds, 1.0))
        self._invalidations = CACHE_INVALIDATIONS.labels(name)

    def _key(self, user_id: int, key: Hashable) -> tuple:
        return (user_id, self._generations.get(user_id, 0), key)

    def get(self, user_id: int, key: Hashable = ()) -> Any:
        return self._cache.get(self._key(user_id, key))

    def put(self, user_id: int, key: Hashable, value: Any) -> None:
        self._cache.put(self._key(user_id, key), value)

    def invalidate(self, user_id: int) -> None:
        self._generations[user_id] = self._generations.get(user_id, 0) + 1
        self._invalidations.inc()

    def clear(self) -> None:
        self._cache.clear()
        self._generations.clear()

    def __len__(self) -> int:
        return len(self._cache)
