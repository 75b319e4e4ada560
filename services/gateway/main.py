"""Entry point of the gateway: `wren serve gateway` (gRPC API + HTTP/JSON on one event loop)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from aiohttp import web

from services.common.caches import MeteredCache, UserKeyedCache
from services.common.config import ConfigError, ServiceSettings
from services.common.inflight import tracker
from services.common.metrics import BUNDLE_INFO
from services.common.nearline_keys import NearlineKeys
from services.common.process import prepare_process
from services.common.reload import BundleWatcher
from services.common.server import GrpcService, run_until_signalled, start_server
from services.gateway.catalogue import CatalogueApi, CatalogueConfig
from services.gateway.discovery import Discovery, parse_replicas
from services.gateway.health import HealthChecker
from services.gateway.http import GatewayHttp
from services.gateway.invalidation import Invalidations
from services.gateway.recommender import Recommender, RecommenderConfig
from services.gateway.ring import ReplicaRing
from services.gateway.served_bundle import GatewayBundle
from services.gateway.servicer import GatewayServicer
from services.gateway.upstream import TierClient
from wren.core.ab import AbConfigError
from wren.core.bundle import Bundle
from wren.v1 import feature_pb2_grpc, gateway_pb2_grpc, ranking_pb2_grpc, recall_pb2_grpc

log = logging.getLogger(__name__)
SERVICE_NAME = "wren.v1.GatewayService"
TIER_SERVICES = {
    "feature": ("wren.v1.FeatureService", feature_pb2_grpc.FeatureServiceStub),
    "recall": ("wren.v1.RecallService", recall_pb2_grpc.RecallServiceStub),
    "ranking": ("wren.v1.RankingService", ranking_pb2_grpc.RankingServiceStub),
}


class GatewaySettings(ServiceSettings):
    port: int = 50051
    http_port: int = 8080
    capacity: int = 256
    feature_replicas: str  # "host:port,host:port" or "dns:///feature-headless.wren.svc:50051"
    recall_replicas: str
    ranking_replicas: str
    discovery_seconds: float = 10.0
    health_check_seconds: float = 1.0
    budget_ms: int = 250  # per-request deadline when the client sets none
    feature_timeout_ms: int = 60  # per attempt on one replica; failover gets what is left
    recall_timeout_ms: int = 100
    ranking_timeout_ms: int = 100
    catalogue_budget_ms: int = 2000  # catalogue requests: deadline when the client sets none
    catalogue_timeout_ms: int = 1000  # catalogue requests: per attempt on one feature replica
    candidates: int = 300
    max_genre_share: float = RecommenderConfig.max_genre_share
    results_cache_size: int = 100_000
    results_cache_ttl_seconds: float = 10.0
    coldstart_cache_ttl_seconds: float = 60.0
    ejection_threshold: int = 3
    base_ejection_seconds: float = 2.0
    max_ejected_fraction: float = 0.5
    ab_variants: str = ""  # the ranking tier's WREN_AB_VARIANTS: cache keys carry each user's variant
    ab_salt: str = ""  # the ranking tier's WREN_AB_SALT
    redis_url: str = ""  # set: events invalidate a user's cached lists on every gateway replica (pub/sub)
    redis_prefix: str = "wren"


@dataclass
class Tier:
    name: str
    ring: ReplicaRing
    client: TierClient
    discovery: Discovery
    health: HealthChecker


@dataclass
class Gateway:
    grpc: GrpcService
    http: web.AppRunner
    recommender: Recommender
    tiers: dict[str, Tier] = field(default_factory=dict)
    invalidations: Invalidations | None = None
    watcher: BundleWatcher | None = None

    @property
    def http_port(self) -> int:
        return int(self.http.addresses[0][1])

    def ready(self) -> bool:
        return routable(self.tiers)

    async def stop(self, grace: float) -> None:
        await self.grpc.stop(grace)
        await self.http.cleanup()
        for tier in self.tiers.values():
            await tier.health.stop()
            await tier.discovery.stop()
            await tier.client.close()
        if self.invalidations is not None:
            await self.invalidations.stop()
        if self.watcher is not None:
            await self.watcher.stop()


def routable(tiers: dict[str, Tier]) -> bool:
    """Ready: every tier has a replica to route to."""
    return all(tier.ring.routable for tier in tiers.values())


async def _tier(name: str, spec: str, settings: GatewaySettings) -> Tier:
    service_name, stub = TIER_SERVICES[name]
    ring = ReplicaRing(
        name,
        [],
        ejection_threshold=settings.ejection_threshold,
        base_ejection_seconds=settings.base_ejection_seconds,
        max_ejected_fraction=settings.max_ejected_fraction,
    )
    client = TierClient(name, ring, stub, attempt_timeout_seconds=getattr(settings, f"{name}_timeout_ms") / 1000)
    discovery = Discovery(parse_replicas(spec), ring, interval=settings.discovery_seconds)
    await discovery.refresh()
    health = HealthChecker(client, service_name, interval=settings.health_check_seconds)
    return Tier(name, ring, client, discovery, health)


def load_bundle(bundle: Bundle, settings: GatewaySettings) -> GatewayBundle:
    """The gateway's view of `bundle`; ConfigError naming WREN_AB_VARIANTS when the split does not fit it."""
    try:
        return GatewayBundle.load(bundle, settings.ab_variants, settings.ab_salt)
    except AbConfigError as error:
        raise ConfigError(f"configuration error: WREN_AB_VARIANTS={settings.ab_variants!r}: {error}") from None


async def start(settings: GatewaySettings) -> Gateway:
    bundle = Bundle(settings.artifacts, settings.user_state)
    served = load_bundle(bundle, settings)
    tiers = {name: await _tier(name, getattr(settings, f"{name}_replicas"), settings) for name in TIER_SERVICES}
    recommender = Recommender(
        tiers["feature"].client,
        tiers["recall"].client,
        tiers["ranking"].client,
        served,
        UserKeyedCache("gateway_results", settings.results_cache_size, settings.results_cache_ttl_seconds),
        MeteredCache("gateway_coldstart", 1_000, settings.coldstart_cache_ttl_seconds),
        RecommenderConfig(
            candidates=settings.candidates,
            budget_seconds=settings.budget_ms / 1000,
            max_genre_share=settings.max_genre_share,
        ),
    )
    catalogue = CatalogueApi(
        tiers["feature"].client,
        CatalogueConfig(
            budget_seconds=settings.catalogue_budget_ms / 1000, attempt_seconds=settings.catalogue_timeout_ms / 1000
        ),
    )
    service = await start_server(
        "gateway",
        [
            lambda server: gateway_pb2_grpc.add_GatewayServiceServicer_to_server(
                GatewayServicer(recommender, catalogue), server
            )
        ],
        [SERVICE_NAME],
        host=settings.host,
        port=settings.port,
        capacity=settings.capacity,
    )
    front = GatewayHttp(
        recommender,
        catalogue,
        lambda: routable(tiers),
        tracker("gateway", settings.capacity),
    )
    gateway = Gateway(service, web.AppRunner(front.app(), access_log=None), recommender, tiers)
    if settings.redis_url:
        gateway.invalidations = await _invalidations(settings, recommender)
    await gateway.http.setup()
    await web.TCPSite(gateway.http, settings.host, settings.http_port).start()
    for tier in tiers.values():
        tier.discovery.start()
        tier.health.start()
    BUNDLE_INFO.labels("gateway", bundle.version).set(1)

    async def switch(new: Bundle) -> None:
        """A new bundle: its display data, fallbacks, A/B split and cache keys (the tiers reload theirs on their
        own). Loaded off the event loop; an error leaves the old bundle serving (BundleWatcher logs it)."""
        fresh = await asyncio.to_thread(GatewayBundle.load, new, settings.ab_variants, settings.ab_salt)
        old = recommender.bundle.version
        recommender.reload(fresh)
        BUNDLE_INFO.remove("gateway", old)
        BUNDLE_INFO.labels("gateway", fresh.version).set(1)

    gateway.watcher = BundleWatcher(
        settings.artifacts, bundle.version, switch, "gateway", settings.reload_seconds, settings.user_state
    )
    gateway.watcher.start()
    await service.mark_ready()
    log.info("gateway listening", extra={"grpc_port": service.port, "http_port": gateway.http_port})
    return gateway


async def _invalidations(settings: GatewaySettings, recommender: Recommender) -> Invalidations:
    """Subscribed before the gateway reports ready, so no invalidation sent after that is missed."""
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=1.0)
    invalidations = Invalidations(client, NearlineKeys(settings.redis_prefix).invalidations, recommender.forget)
    recommender.broadcast = invalidations.publish
    invalidations.start()
    await asyncio.wait_for(invalidations.subscribed.wait(), 10.0)
    return invalidations


async def serve(settings: GatewaySettings) -> None:
    prepare_process("gateway", settings)
    gateway = await start(settings)
    try:
        await run_until_signalled(gateway.grpc, settings.grace_seconds)
    finally:
        await gateway.stop(0)
