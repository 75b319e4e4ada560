"""Entry point of the recall service: `wren serve recall`."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.common.caches import MeteredCache, UserKeyedCache
from services.common.config import ServiceSettings
from services.common.metrics import BUNDLE_INFO, INDEX_INFO
from services.common.nearline_keys import NearlineKeys
from services.common.process import prepare_process
from services.common.reload import BundleWatcher
from services.common.server import GrpcService, run_until_signalled, start_server
from services.recall.core import RecallCore
from services.recall.servicer import RecallServicer
from services.recall.trending import TrendingFeed
from wren.core.bundle import Bundle
from wren.core.recall.recaller import MAX_K, Recaller
from wren.v1 import recall_pb2_grpc

SERVICE_NAME = "wren.v1.RecallService"


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


async def start(settings: RecallSettings) -> tuple[GrpcService, RecallCore, BundleWatcher]:
    bundle = Bundle(settings.artifacts)
    trending = await _trending(settings)
    core = RecallCore(
        Recaller.from_bundle(bundle, settings.index or None, trending, max_k=settings.max_k),
        UserKeyedCache("recall_candidates", settings.cache_size, settings.cache_ttl_seconds),
        MeteredCache("recall_similar", settings.cache_size, settings.cache_ttl_seconds),
        settings.index or None,
        trending,
    )
    service = await start_server(
        "recall",
        [lambda server: recall_pb2_grpc.add_RecallServiceServicer_to_server(RecallServicer(core), server)],
        [SERVICE_NAME],
        host=settings.host,
        port=settings.port,
        capacity=settings.capacity,
    )
    _publish_versions(core, bundle.version)

    async def switch(new: Bundle) -> None:
        old = core.version
        core.reload(new)
        BUNDLE_INFO.remove("recall", old)
        _publish_versions(core, new.version)

    watcher = BundleWatcher(settings.artifacts, bundle.version, switch, "recall", settings.reload_seconds)
    await service.mark_ready()
    watcher.start()
    return service, core, watcher


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


def _publish_versions(core: RecallCore, version: str) -> None:
    BUNDLE_INFO.labels("recall", version).set(1)
    INDEX_INFO.clear()
    INDEX_INFO.labels(core.recaller.catalog.index.kind, version).set(len(core.recaller.catalog.index))


async def serve(settings: RecallSettings) -> None:
    prepare_process("recall", settings)
    service, core, watcher = await start(settings)
    try:
        await run_until_signalled(service, settings.grace_seconds)
    finally:
        await watcher.stop()
        if isinstance(core.trending, TrendingFeed):
            await core.trending.stop()
