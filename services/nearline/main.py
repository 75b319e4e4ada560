"""Entry point of the nearline tier: `wren serve nearline` (health over gRPC, /metrics, the stream consumer)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import redis.asyncio as aioredis

from services.common.config import ConfigError, ServiceSettings
from services.common.nearline_keys import NearlineKeys
from services.common.process import prepare_process
from services.common.server import GrpcService, run_until_signalled, start_server
from services.common.tiers import SERVICE_NAMES
from services.nearline.apply import Applier, ApplyConfig
from services.nearline.consumer import ConsumerConfig, NearlineConsumer
from services.nearline.eventlog import EventLog

log = logging.getLogger(__name__)
SERVICE_NAME = SERVICE_NAMES["nearline"]


class NearlineSettings(ServiceSettings):
    artifacts: str = ""  # not used: the nearline tier reads the stream, not a bundle
    port: int = 50056
    redis_url: str = ""  # required, e.g. redis://redis:6379/0
    redis_prefix: str = "wren"
    redis_timeout_ms: int = 5000  # bounds every reply; reads block for at most block_ms less than this
    group: str = "nearline"
    consumer: str = ""  # empty: <hostname>-<pid>, unique per process
    batch: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_every_seconds: float = 5.0
    event_log_dir: str = ""  # empty: no training event log
    event_log_max_mb: float = 64.0
    event_log_max_seconds: float = 3600.0
    positive_threshold: float = 3.5
    trending_half_life_seconds: float = 6 * 3600.0
    dedup_seconds: int = 7 * 24 * 3600


class Nearline:
    """The running tier: its health server, Redis client, consumer task and event log."""

    def __init__(
        self, service: GrpcService, client: aioredis.Redis, consumer: NearlineConsumer, event_log: EventLog | None
    ) -> None:
        self.service = service
        self.client = client
        self.consumer = consumer
        self.event_log = event_log
        self.stopping = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def stop(self) -> None:
        """Finishes the batch in hand, then closes the log and the connection."""
        self.stopping.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.event_log is not None:
            self.event_log.close()
        await self.client.aclose()


async def start(settings: NearlineSettings) -> Nearline:
    if not settings.redis_url:
        raise ConfigError("configuration error: missing required environment variable WREN_REDIS_URL")
    name = settings.consumer or f"{socket.gethostname()}-{os.getpid()}"
    client = aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_ms / 1000,
        socket_connect_timeout=settings.redis_timeout_ms / 1000,
    )
    keys = NearlineKeys(settings.redis_prefix, settings.group)
    applier = Applier(
        client,
        keys,
        ApplyConfig(settings.positive_threshold, settings.trending_half_life_seconds, settings.dedup_seconds),
    )
    event_log = (
        EventLog(
            settings.event_log_dir, name, int(settings.event_log_max_mb * 1024 * 1024), settings.event_log_max_seconds
        )
        if settings.event_log_dir
        else None
    )
    consumer = NearlineConsumer(
        client,
        keys,
        applier,
        event_log,
        ConsumerConfig(
            consumer=name,
            batch=settings.batch,
            block_ms=settings.block_ms,
            claim_idle_ms=settings.claim_idle_ms,
            claim_every_seconds=settings.claim_every_seconds,
        ),
    )
    service = await start_server(
        "nearline", [], [SERVICE_NAME], host=settings.host, port=settings.port, capacity=settings.capacity
    )
    await consumer.ensure_group()
    await client.set(keys.half_life, repr(settings.trending_half_life_seconds))
    nearline = Nearline(service, client, consumer, event_log)
    nearline.task = asyncio.create_task(consumer.run(nearline.stopping), name="nearline-consumer")
    nearline.task.add_done_callback(lambda task: _stop_if_failed(task, service))
    await service.mark_ready()
    log.info("nearline consuming", extra={"consumer": name, "stream": keys.stream, "group": keys.group})
    return nearline


def _stop_if_failed(task: asyncio.Task, service: GrpcService) -> None:
    """A consumer that died of an unexpected error takes the server down, so the process exits and restarts."""
    if not task.cancelled() and task.exception() is not None:
        log.error("nearline consumer failed", exc_info=task.exception())
        asyncio.get_running_loop().create_task(service.stop(0))


async def serve(settings: NearlineSettings) -> None:
    prepare_process("nearline", settings)
    nearline = await start(settings)
    try:
        await run_until_signalled(nearline.service, settings.grace_seconds)
    finally:
        await nearline.stop()
    if nearline.task is not None and not nearline.task.cancelled() and nearline.task.exception() is not None:
        raise SystemExit("nearline consumer failed; see the log")
