"""A circuit breaker for Redis calls (purgatory): outages fail fast as Unavailable, and a metric follows the state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.metrics import FEATURE_STORE_ERRORS, REDIS_CIRCUIT_OPEN
from wren.core.errors import Unavailable

if TYPE_CHECKING:  # purgatory exports the factory, not the breaker class it hands out: for the annotation only
    from purgatory.service._async.circuitbreaker import AsyncCircuitBreaker

T = TypeVar("T")

OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class CircuitBreaker:
    """purgatory breaker around Redis calls: only outage errors count, every failure surfaces as
    Unavailable, and wren_redis_circuit_open follows the state."""

    NAME = "redis-feature-store"

    def __init__(self, threshold: int, reset_seconds: float) -> None:
        self.state = "closed"
        self._factory = AsyncCircuitBreakerFactory(
            default_threshold=threshold,
            default_ttl=reset_seconds,
            exclude=[(BaseException, lambda exc: not isinstance(exc, OUTAGE_ERRORS))],
        )
        self._factory.add_listener(self._on_event)
        self._breaker: AsyncCircuitBreaker | None = None
        REDIS_CIRCUIT_OPEN.set(0)

    def _on_event(self, name: str, kind: str, event: Any) -> None:
        if kind == "state_changed":
            self.state = event.state
            REDIS_CIRCUIT_OPEN.set(0 if event.state == "closed" else 1)

    async def call(self, op: str, request: Callable[[], Awaitable[T]]) -> T:
        if self._breaker is None:
            self._breaker = await self._factory.get_breaker(self.NAME)
        try:
            async with self._breaker:
                return await request()
        except OpenedState as opened:
            opened.__traceback__ = None
            FEATURE_STORE_ERRORS.labels(op).inc()
            raise Unavailable("feature store unavailable: Redis circuit open after repeated failures") from None
        except OUTAGE_ERRORS as exc:
            FEATURE_STORE_ERRORS.labels(op).inc()
            raise Unavailable(f"feature store unavailable: {type(exc).__name__}: {exc}") from exc
