"""Cache invalidation between gateway replicas over Redis pub/sub: an event on one drops the user's lists on all."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
from prometheus_client import Counter

from services.common.periodic import PeriodicTask

log = logging.getLogger(__name__)

INVALIDATIONS = Counter(  # exported as wren_gateway_invalidations_total
    "wren_gateway_invalidations", "user invalidations between gateway replicas: sent, received, failed", ["result"]
)
OnEvent = Callable[[int, int], None]


class Invalidations(PeriodicTask):
    """`publish(user, item)` after an event is stored tells every other replica subscribed to `channel` to
    call `on_event(user, item)` (drop the user's cached lists, hide the item). Messages are
    "<origin> <user> <item>"; a replica ignores its own. Pub/sub is best effort: a publish that fails is
    logged and counted, never fails the event (the lists then age out with the results cache TTL). A lost
    subscription is taken up again after `retry_seconds`."""

    name = "gateway-invalidations"

    def __init__(self, client: aioredis.Redis, channel: str, on_event: OnEvent, retry_seconds: float = 1.0) -> None:
        super().__init__(retry_seconds)
        self.client = client
        self.channel = channel
        self.on_event = on_event
        self.origin = uuid.uuid4().hex
        self.subscribed = asyncio.Event()

    async def publish(self, user_id: int, item_id: int) -> None:
        try:
            await self.client.publish(self.channel, f"{self.origin} {user_id} {item_id}")
            INVALIDATIONS.labels("sent").inc()
        except (OSError, aioredis.RedisError) as error:
            INVALIDATIONS.labels("failed").inc()
            log.warning("could not tell the other gateways about user %s: %s", user_id, error)

    def receive(self, data: str | bytes) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        try:
            origin, user, item = text.split()
            user_id, item_id = int(user), int(item)
        except ValueError:
            log.warning("ignoring a malformed invalidation message %r", text[:100])
            return
        if origin != self.origin:
            self.on_event(user_id, item_id)
            INVALIDATIONS.labels("received").inc()

    async def tick(self) -> None:
        """Subscribes and handles messages until the connection fails."""
        try:
            async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message and message.get("type") == "message":
                        self.receive(message["data"])
        except (OSError, aioredis.RedisError) as error:
            log.warning("invalidation subscription lost (%s); subscribing again", error)
        finally:
            self.subscribed.clear()

    async def stop(self) -> None:
        await super().stop()
        await self.client.aclose()
