"""Entry point of the feature service: `wren serve feature`."""

from __future__ import annotations

from typing import Literal

from services.common.caches import UserKeyedCache
from services.common.config import ConfigError, ServiceSettings
from services.common.metrics import BUNDLE_INFO
from services.common.process import prepare_process
from services.common.reload import BundleWatcher
from services.common.server import GrpcService, run_until_signalled, start_server
from services.feature.catalogue_core import CatalogueCore
from services.feature.core import FeatureCore
from services.feature.memory import MemoryFeatureStore
from services.feature.servicer import FeatureServicer
from services.feature.store import FeatureStore
from wren.core.bundle import Bundle
from wren.v1 import feature_pb2_grpc

SERVICE_NAME = "wren.v1.FeatureService"


class FeatureSettings(ServiceSettings):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = ""  # required when backend=redis, e.g. redis://redis:6379/0
    redis_prefix: str = "wren"
    redis_timeout_ms: int = 50
    user_cache_size: int = 100_000
    user_cache_ttl_seconds: float = 30.0
    max_items: int = 2000


async def build_store(settings: FeatureSettings, bundle: Bundle) -> FeatureStore:
    if settings.backend == "memory":
        return MemoryFeatureStore(bundle)
    if not settings.redis_url:
        raise ConfigError(
            "configuration error: missing required environment variable WREN_REDIS_URL (WREN_BACKEND=redis)"
        )
    from services.feature.redis_store import RedisFeatureStore, RedisFeatureStoreConfig

    return await RedisFeatureStore.connect(
        RedisFeatureStoreConfig(
            url=settings.redis_url, prefix=settings.redis_prefix, timeout_ms=settings.redis_timeout_ms
        )
    )


async def start(settings: FeatureSettings) -> tuple[GrpcService, FeatureCore, BundleWatcher]:
    bundle = Bundle(settings.artifacts, settings.user_state)
    store = await build_store(settings, bundle)
    core = FeatureCore(
        store,
        UserKeyedCache("feature_user", settings.user_cache_size, settings.user_cache_ttl_seconds),
        settings.max_items,
    )
    service = await start_server(
        "feature",
        [
            lambda server: feature_pb2_grpc.add_FeatureServiceServicer_to_server(
                FeatureServicer(core, CatalogueCore(lambda: core.store)), server
            )
        ],
        [SERVICE_NAME],
        host=settings.host,
        port=settings.port,
        capacity=settings.capacity,
    )
    BUNDLE_INFO.labels("feature", core.bundle_version).set(1)

    async def switch(new: Bundle) -> None:
        """Embedded store only: a new bundle replaces the snapshot; events recorded since the old one was
        loaded are re-applied when they are newer than the new bundle's data (Redis publishes instead)."""
        old = core.store
        if not isinstance(old, MemoryFeatureStore):
            return
        fresh = MemoryFeatureStore(new)
        for event in old.event_log:
            if event.timestamp > new.data_cutoff:
                await fresh.record_event(event)
        core.store = fresh
        core.user_cache.clear()
        BUNDLE_INFO.remove("feature", old.bundle_version)
        BUNDLE_INFO.labels("feature", fresh.bundle_version).set(1)

    interval = settings.reload_seconds if settings.backend == "memory" else 0
    watcher = BundleWatcher(settings.artifacts, bundle.version, switch, "feature", interval, settings.user_state)
    await service.mark_ready()
    watcher.start()
    return service, core, watcher


async def serve(settings: FeatureSettings) -> None:
    prepare_process("feature", settings)
    service, core, watcher = await start(settings)
    try:
        await run_until_signalled(service, settings.grace_seconds)
    finally:
        await watcher.stop()
        await core.store.close()
