"""Start-up every bundle-serving tier shares: load the bundle, build the tier, serve it, hot-reload it, drain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from grpc import aio

from services.common.config import ServiceSettings
from services.common.process import prepare_process
from services.common.reload import BundleWatcher
from services.common.server import GrpcService, run_until_signalled, start_server
from services.common.tiers import SERVICE_NAMES
from wren.core.bundle import Bundle


class Tier(Protocol):
    """What a tier's `build(settings, bundle)` returns: the part of start-up only the tier knows."""

    name: str  # one of services.common.tiers.BACKEND_TIERS
    reload_seconds: float  # how often to look for a new bundle; 0 = never

    def register(self, server: aio.Server) -> None:
        """Adds the tier's servicer to `server`."""

    async def warm(self, bundle: Bundle) -> None:
        """Runs the tier's hot paths once on `bundle` (first-call costs: lazy loads, index pages, allocator
        growth) so that the first real request after SERVING is answered in full; leaves no cached answer."""

    async def reload(self, bundle: Bundle) -> None:
        """Switches to a newly published bundle (BundleWatcher calls it)."""

    async def close(self) -> None:
        """Releases what `build` opened, after the server has stopped."""


T = TypeVar("T", bound=Tier)
S = TypeVar("S", bound=ServiceSettings)
Build = Callable[[S, Bundle], Awaitable[T]]


@dataclass
class RunningTier(Generic[T]):
    """A started tier: its gRPC server (ready), the tier itself and its bundle watcher (started)."""

    service: GrpcService
    tier: T
    watcher: BundleWatcher

    async def stop(self, grace: float = 0.0) -> None:
        await self.watcher.stop()
        await self.service.stop(grace)
        await self.tier.close()


async def start_tier(build: Build[S, T], settings: S) -> RunningTier[T]:
    """Loads the bundle, builds the tier, starts its server (NOT_SERVING), warms the tier's hot paths, then
    reports ready and starts watching for bundles."""
    bundle = Bundle(settings.artifacts, settings.user_state)
    tier = await build(settings, bundle)
    service = await start_server(
        tier.name,
        [tier.register],
        [SERVICE_NAMES[tier.name]],
        host=settings.host,
        port=settings.port,
        capacity=settings.capacity,
    )
    watcher = BundleWatcher(
        settings.artifacts, bundle.version, tier.reload, tier.name, tier.reload_seconds, settings.user_state
    )
    await tier.warm(bundle)
    await service.mark_ready()
    watcher.start()
    return RunningTier(service, tier, watcher)


async def run_tier(name: str, build: Build[S, T], settings: S) -> None:
    """`wren serve <name>`: prepares the process, starts the tier, serves until signalled, then drains."""
    prepare_process(name, settings)
    running = await start_tier(build, settings)
    try:
        await run_until_signalled(running.service, settings.grace_seconds)
    finally:
        await running.watcher.stop()
        await running.tier.close()
