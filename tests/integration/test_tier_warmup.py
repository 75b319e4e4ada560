"""A tier reports SERVING only once its hot paths have run: start-up warms before it opens for traffic."""

from __future__ import annotations

import asyncio
from pathlib import Path

from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.config import ServiceSettings
from services.common.tier import start_tier
from services.recall.main import RecallSettings
from services.recall.main import build as build_recall
from tests.support.netutil import free_port
from wren.core.bundle import Bundle


class HeldTier:
    """A tier whose warm-up waits until the test lets it finish."""

    name = "ranking"
    reload_seconds = 0.0

    def __init__(self) -> None:
        self.warming = asyncio.Event()
        self.release = asyncio.Event()
        self.warmed_with = ""

    def register(self, server: aio.Server) -> None:
        pass

    async def warm(self, bundle: Bundle) -> None:
        self.warming.set()
        await self.release.wait()
        self.warmed_with = bundle.version

    async def reload(self, bundle: Bundle) -> None:
        pass

    async def close(self) -> None:
        pass


async def health(port: int, service: str) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return reply.status


async def test_a_tier_is_not_serving_until_its_warm_up_has_run(tiny_artifacts: Path) -> None:
    tier = HeldTier()

    async def build(settings: ServiceSettings, bundle: Bundle) -> HeldTier:
        return tier

    port = free_port()
    settings = ServiceSettings(artifacts=str(tiny_artifacts), port=port, host="127.0.0.1")
    starting = asyncio.create_task(start_tier(build, settings))
    await asyncio.wait_for(tier.warming.wait(), 30)
    assert await health(port, "") == health_pb2.HealthCheckResponse.NOT_SERVING
    tier.release.set()
    running = await asyncio.wait_for(starting, 30)
    try:
        assert tier.warmed_with == Bundle(tiny_artifacts).version
        assert await health(port, "") == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop()


async def test_the_recall_tier_warms_without_leaving_a_cached_answer(tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    tier = await build_recall(RecallSettings(artifacts=str(tiny_artifacts)), bundle)
    try:
        await tier.warm(bundle)
        assert len(tier.core.user_cache) == 0 and len(tier.core.similar_cache) == 0
    finally:
        await tier.close()
