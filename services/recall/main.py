"""Entry point of the recall service: `wren serve recall`."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from grpc import aio

from services.common.caches import MeteredCache, UserKeyedCache
from services.common.config import ServiceSettings
from services.common.metrics import BUNDLE_INFO, INDEX_INFO
from services.common.nearline_keys import NearlineKeys
from services.common.tier import RunningTier, run_tier, start_tier
from services.common.tiers import SERVICE_NAMES
from services.recall.core import RecallCore
from services.recall.servicer import RecallServicer
from services.recall.trending import TrendingFeed
from wren.core.bundle import Bundle
from wren.core.profiles import ProfileBuilder
from wren.core.recall.recaller import MAX_K, Recaller
from wren.v1 import recall_pb2_grpc

SERVICE_NAME = SERVICE_NAMES["recall"]


class RecallSettings(ServiceSettings):
    index: str = ""  # hnsw / exact / lsh; empty = the bundle's default
    max_k: int = MAX_K
    cache_size: int = 100_000
    cache_ttl_seconds: float = 60.0
    redis_url: str = ""  # set: the popularity channel leads with the nearline tier's trending items
    redis_prefix: str = "wren"
    trending_size: int = 50
    trending_min_count: float = 3.0  # decayed positive events an item needs now to count as trending
    trending_refresh_seconds: float = 1.0


WARM_K = 300  # what the gateway asks for by default (its `candidates`)


class RecallTier:
    """The recall tier for services.common.tier: a RecallCore over the bundle's index, plus the trending feed."""

    name = "recall"

    def __init__(self, core: RecallCore, reload_seconds: float) -> None:
        self.core = core
        self.reload_seconds = reload_seconds
        _publish_versions(core)

    def register(self, server: aio.Server) -> None:
        recall_pb2_grpc.add_RecallServiceServicer_to_server(RecallServicer(self.core), server)

    async def warm(self, bundle: Bundle) -> None:
        """One recall for the bundle's first user and one similar-items list, past the caches."""
        if not len(bundle.users.ids):
            return
        builder = ProfileBuilder.from_bundle(bundle)
        profile = builder.profile(int(bundle.users.ids[0]), builder.snapshot_state(bundle.users, 0))
        recaller = self.core.recaller
        await asyncio.to_thread(recaller.recall, profile, min(WARM_K, recaller.max_k))
        await asyncio.to_thread(recaller.similar_items, int(bundle.items.ids[0]), 10)

    async def reload(self, new: Bundle) -> None:
        old = self.core.version
        self.core.reload(new)
        BUNDLE_INFO.remove(self.name, old)
        _publish_versions(self.core)

    async def close(self) -> None:
        if isinstance(self.core.trending, TrendingFeed):
            await self.core.trending.stop()


async def build(settings: RecallSettings, bundle: Bundle) -> RecallTier:
    trending = await _trending(settings)
    core = RecallCore(
        Recaller.from_bundle(bundle, settings.index or None, trending, max_k=settings.max_k),
        UserKeyedCache("recall_candidates", settings.cache_size, settings.cache_ttl_seconds),
        MeteredCache("recall_similar", settings.cache_size, settings.cache_ttl_seconds),
        settings.index or None,
        trending,
    )
    return RecallTier(core, settings.reload_seconds)


async def start(settings: RecallSettings) -> RunningTier[RecallTier]:
    return await start_tier(build, settings)


async def _trending(settings: RecallSettings) -> TrendingFeed | None:
    if not settings.redis_url:
        return None
    client = aioredis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_timeout=1.0, socket_connect_timeout=1.0
    )
    feed = TrendingFeed(
        client,
        NearlineKeys(settings.redis_prefix),
        settings.trending_size,
        settings.trending_min_count,
        settings.trending_refresh_seconds,
    )
    feed.start()
    return feed


def _publish_versions(core: RecallCore) -> None:
    BUNDLE_INFO.labels("recall", core.version).set(1)
    INDEX_INFO.clear()
    INDEX_INFO.labels(core.recaller.catalog.index.kind, core.version).set(len(core.recaller.catalog.index))


async def serve(settings: RecallSettings) -> None:
    await run_tier("recall", build, settings)
