"""Entry point of the feature service: `wren serve feature`."""

from __future__ import annotations

from typing import Literal

from grpc import aio

from services.common.caches import UserKeyedCache
from services.common.config import ConfigError, ServiceSettings
from services.common.metrics import BUNDLE_INFO
from services.common.tier import RunningTier, run_tier, start_tier
from services.common.tiers import SERVICE_NAMES
from services.feature.catalogue_core import CatalogueCore
from services.feature.core import FeatureCore
from services.feature.memory import MemoryFeatureStore
from services.feature.servicer import FeatureServicer
from services.feature.store import FeatureStore
from wren.core.bundle import Bundle
from wren.v1 import feature_pb2_grpc

SERVICE_NAME = SERVICE_NAMES["feature"]


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


class FeatureTier:
    """The feature tier for services.common.tier: one FeatureCore over the store `build_store` chose."""

    name = "feature"

    def __init__(self, core: FeatureCore, reload_seconds: float) -> None:
        self.core = core
        self.reload_seconds = reload_seconds
        BUNDLE_INFO.labels(self.name, core.bundle_version).set(1)

    def register(self, server: aio.Server) -> None:
        core = self.core
        feature_pb2_grpc.add_FeatureServiceServicer_to_server(
            FeatureServicer(core, CatalogueCore(lambda: core.store)), server
        )

    async def warm(self, bundle: Bundle) -> None:
        """One profile, one item batch and the catalogue, read from the store (past the user cache)."""
        store = self.core.store
        if len(bundle.users.ids):
            await store.get_user(int(bundle.users.ids[0]))
        await store.get_items(bundle.items.ids[: self.core.max_items])
        await store.catalogue()

    async def reload(self, new: Bundle) -> None:
        """Embedded store only: a new bundle replaces the snapshot; events recorded since the old one was
        loaded are re-applied when they are newer than the new bundle's data (Redis publishes instead)."""
        old = self.core.store
        if not isinstance(old, MemoryFeatureStore):
            return
        fresh = MemoryFeatureStore(new)
        for event in old.event_log:
            if event.timestamp > new.data_cutoff:
                await fresh.record_event(event)
        self.core.store = fresh
        self.core.user_cache.clear()
        BUNDLE_INFO.remove(self.name, old.bundle_version)
        BUNDLE_INFO.labels(self.name, fresh.bundle_version).set(1)

    async def close(self) -> None:
        await self.core.store.close()


async def build(settings: FeatureSettings, bundle: Bundle) -> FeatureTier:
    core = FeatureCore(
        await build_store(settings, bundle),
        UserKeyedCache("feature_user", settings.user_cache_size, settings.user_cache_ttl_seconds),
        settings.max_items,
    )
    return FeatureTier(core, settings.reload_seconds if settings.backend == "memory" else 0)


async def start(settings: FeatureSettings) -> RunningTier[FeatureTier]:
    return await start_tier(build, settings)


async def serve(settings: FeatureSettings) -> None:
    await run_tier("feature", build, settings)
