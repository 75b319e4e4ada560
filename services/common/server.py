"""Bootstrap shared by every gRPC service: health, reflection, interceptors, metrics, graceful drain."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.interceptors import ServiceInterceptor
from services.common.metrics import READY

log = logging.getLogger(__name__)

# Channel/server options in one place. Keepalive pings detect dead peers; max_connection_age makes clients
# reconnect now and then so load spreads over new replicas; message sizes fit 1,000-candidate batches.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_connection_age_ms", 300_000),
    ("grpc.max_connection_age_grace_ms", 30_000),
    ("grpc.so_reuseport", 0),
)
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly once a replica comes back (the default backoff grows to two minutes).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 0),  # failover across replicas is the gateway's job
)

Registrar = Callable[[aio.Server], None]


class GrpcService:
    """A started gRPC server with its health servicer; `stop` drains gracefully.

    Health says NOT_SERVING until `mark_ready` (artifacts loaded), for the overall server ("") and for
    each registered service name, so readiness and liveness probes can ask for different names.
    """

    def __init__(
        self,
        server: aio.Server,
        port: int,
        health_servicer: health.aio.HealthServicer,
        service_names: list[str],
        name: str,
    ) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer
        self.service_names = service_names
        self.name = name

    async def mark_ready(self) -> None:
        for service in ["", *self.service_names]:
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        READY.labels(self.name).set(1)
        log.info("serving", extra={"port": self.port})

    async def stop(self, grace: float) -> None:
        """Readiness drops first (NOT_SERVING), then in-flight calls get `grace` seconds to finish."""
        READY.labels(self.name).set(0)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    name: str,
    registrars: Iterable[Registrar],
    service_names: list[str],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    capacity: int = 64,
) -> GrpcService:
    """Builds and starts an aio server on host:port (0 = a free port); health and reflection included."""
    server = aio.server(
        interceptors=[ServiceInterceptor(name, capacity)],
        options=SERVER_OPTIONS,
        maximum_concurrent_rpcs=capacity,
    )
    for register in registrars:
        register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    for service in ["", *service_names]:
        await health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    await server.start()
    return GrpcService(server, bound, health_servicer, service_names, name)


async def run_until_signalled(service: GrpcService, grace: float) -> None:
    """Serves until SIGTERM/SIGINT, then drains: health NOT_SERVING first, then stop(grace)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    serving = asyncio.ensure_future(service.server.wait_for_termination())
    waiting = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
    if stopping.is_set():
        log.info("draining", extra={"grace_seconds": grace})
        await service.stop(grace)
    serving.cancel()
    waiting.cancel()


def insecure_channel(target: str) -> aio.Channel:
    return aio.insecure_channel(target, options=CHANNEL_OPTIONS)


__all__ = ["GrpcService", "start_server", "run_until_signalled", "insecure_channel", "grpc"]
