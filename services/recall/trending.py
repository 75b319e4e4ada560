"""TrendingFeed: the items trending now, polled from the nearline tier's sorted set for the popularity channel."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import redis.asyncio as aioredis

from services.common.nearline_keys import NearlineKeys
from services.common.periodic import PeriodicTask
from services.common.trend import Decay

log = logging.getLogger(__name__)


class TrendingFeed(PeriodicTask):
    """`ids` (int64, best first) are the at most `size` items whose time-decayed positive count is at least
    `min_count` now, with the half-life the nearline tier writes under `NearlineKeys.half_life`. It stays
    empty until the first poll and keeps the last list while Redis is unreachable. `generation` changes
    whenever the list does, so caches of candidate lists can key on it."""

    name = "trending-feed"

    def __init__(
        self,
        client: aioredis.Redis,
        keys: NearlineKeys,
        size: int = 50,
        min_count: float = 3.0,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval)
        self.client = client
        self.keys = keys
        self.size = size
        self.min_count = min_count
        self.clock = clock
        self.ids = np.empty(0, np.int64)
        self.generation = 0

    async def refresh(self) -> bool:
        """One poll; True when the list changed."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.half_life)
            pipe.zrevrange(self.keys.trending, 0, self.size - 1, withscores=True)
            half_life, top = await pipe.execute()
        ids = np.empty(0, np.int64)
        if half_life and top:
            counts = Decay(float(half_life)).counts(np.array([score for _, score in top]), self.clock())
            ids = np.array([int(item) for item, _ in top], np.int64)[counts >= self.min_count]
        if np.array_equal(ids, self.ids):
            return False
        self.ids = ids
        self.generation += 1
        return True

    async def tick(self) -> None:
        try:
            await self.refresh()
        except (OSError, aioredis.RedisError) as error:
            log.warning("trending feed: %s: %s; keeping the last list", type(error).__name__, error)

    async def stop(self) -> None:
        await super().stop()
        await self.client.aclose()
