"""The chaos suite's fault proxy, between a real gRPC client and server: each fault shows as the client would see it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.support.fault_proxy import Fault, FaultProxy


@pytest_asyncio.fixture
async def server_port() -> AsyncIterator[int]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(None)


async def check(address: str, timeout: float) -> grpc.StatusCode:
    """One call on a channel of its own (a local subchannel pool: no connection shared with earlier calls)."""
    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_without_a_fault_calls_pass_through(server_port: int) -> None:
    async with FaultProxy("127.0.0.1", server_port) as proxy:
        assert await check(proxy.address, 5) == grpc.StatusCode.OK
        assert proxy.stats.connections == 1 and proxy.stats.bytes_up > 0 and proxy.stats.bytes_down > 0


async def test_latency_beyond_the_deadline_expires_it_and_within_it_passes(server_port: int) -> None:
    async with FaultProxy("127.0.0.1", server_port) as proxy:
        proxy.set(Fault.LATENCY, latency=0.5)
        assert await check(proxy.address, 0.2) == grpc.StatusCode.DEADLINE_EXCEEDED
        assert await check(proxy.address, 10) == grpc.StatusCode.OK


@pytest.mark.parametrize("fault", [Fault.STALL, Fault.HALF_OPEN])
async def test_stalled_and_half_open_connections_end_at_the_callers_deadline(server_port: int, fault: Fault) -> None:
    async with FaultProxy("127.0.0.1", server_port) as proxy:
        proxy.set(fault)
        assert await check(proxy.address, 0.5) == grpc.StatusCode.DEADLINE_EXCEEDED
        proxy.set(Fault.NONE)
        assert await check(proxy.address, 5) == grpc.StatusCode.OK


async def test_resets_are_unavailable_and_reach_open_connections(server_port: int) -> None:
    async with FaultProxy("127.0.0.1", server_port) as proxy:
        async with grpc.aio.insecure_channel(proxy.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            proxy.set(Fault.RESET)
            assert proxy.stats.resets == 1  # the open connection
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await check(proxy.address, 5) == grpc.StatusCode.UNAVAILABLE
