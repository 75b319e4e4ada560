"""Active health checks: asks every ring member for grpc.health.v1 status and tells the ring who serves."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.periodic import PeriodicTask
from services.gateway.upstream import TierClient

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING


class HealthChecker(PeriodicTask):
    """Every `interval` seconds, `Health/Check(service)` on each member of `client.ring`, over the client's
    channels, with a `timeout`-second deadline each, all members at once.

    SERVING → `ring.set_health(addr, True)`; NOT_SERVING (draining, still loading), SERVICE_UNKNOWN or no
    answer in time → False. A server without the health service (UNIMPLEMENTED) is left to outlier
    ejection (counted as serving). `service` is the tier's full service name, e.g. "wren.v1.RecallService".
    """

    def __init__(self, client: TierClient, service: str, *, interval: float = 1.0, timeout: float = 0.25) -> None:
        super().__init__(interval)
        self.client = client
        self.service = service
        self.timeout = timeout
        self.name = f"health-{client.tier}"
        self._stubs: dict[str, tuple[aio.Channel, health_pb2_grpc.HealthStub]] = {}

    async def check_once(self) -> dict[str, bool]:
        """One round over the current members; returns each one's verdict (True = serving)."""
        members = sorted(self.client.ring.members)
        for gone in set(self._stubs) - set(members):
            del self._stubs[gone]
        verdicts = await asyncio.gather(*(self._check(address) for address in members))
        results = dict(zip(members, verdicts, strict=True))
        for address, serving in results.items():
            self.client.ring.set_health(address, serving)
        return results

    async def tick(self) -> None:
        await self.check_once()

    async def _check(self, address: str) -> bool:
        if address not in self.client.ring.members:  # left the ring since the round began: open no channel
            return False
        try:
            reply = await self._stub(address).Check(
                health_pb2.HealthCheckRequest(service=self.service), timeout=self.timeout
            )
        except aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                return True
            log.debug("health check failed", extra={"replica": address, "code": error.code().name})
            return False
        return reply.status == SERVING

    def _stub(self, address: str) -> health_pb2_grpc.HealthStub:
        channel = self.client.channel(address)
        cached = self._stubs.get(address)
        if cached is None or cached[0] is not channel:
            cached = self._stubs[address] = (channel, health_pb2_grpc.HealthStub(channel))
        return cached[1]
