"""Calls to one tier: pick replicas from the ring by key, fail over within the deadline, feed outlier ejection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from grpc import aio

from services.common.metrics import UPSTREAM_FAILOVERS, UPSTREAM_LATENCY, UPSTREAM_REQUESTS
from services.common.server import insecure_channel
from services.gateway.context import RequestContext
from services.gateway.errors import UpstreamError
from services.gateway.ring import ReplicaRing

log = logging.getLogger(__name__)

# Statuses that say "this replica, now" rather than "this request": try the next replica.
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
# An attempt cut short by the caller's deadline still counts against the replica if it got at least this
# share of attempt_timeout (so a hung replica gets ejected even when budgets are tight, while a sliver of
# leftover budget does not punish a healthy one).
FAIR_ATTEMPT_SHARE = 0.5

MAX_BUDGET_SECONDS = 30.0  # no request may ask for more time than this

ChannelFactory = Callable[[str], aio.Channel]
Metadata = Sequence[tuple[str, str]]


def deadline_after(budget_seconds: float, timeout: float | None) -> float:
    """The absolute time.monotonic() deadline of a request: the caller's timeout (capped at MAX_BUDGET_SECONDS)
    when it set one, else `budget_seconds` from now."""
    return time.monotonic() + (budget_seconds if timeout is None else min(timeout, MAX_BUDGET_SECONDS))


@dataclass(frozen=True)
class Routed:
    """A tier's reply and the replica ("host:port") that produced it; `attempts` counts replicas tried."""

    response: Any
    replica: str
    attempts: int = 1


class TierCaller(Protocol):
    """What the gateway core needs of a tier: TierClient, or a stand-in (services.inprocess.DirectTier)."""

    async def call(
        self,
        method: str,
        request: Any,
        context: RequestContext,
        *,
        deadline: float | None = None,
        attempt_timeout: float | None = None,
    ) -> Routed: ...


class TierClient:
    """One tier's replicas behind a ring: a lazily created channel + stub per replica, failover in `call`.

    `stub_class` is a generated stub (e.g. `recall_pb2_grpc.RecallServiceStub`) taking a channel. Channels
    of replicas that leave the ring are closed (in-flight calls get `attempt_timeout_seconds` to finish).
    """

    def __init__(
        self,
        tier: str,
        ring: ReplicaRing,
        stub_class: Callable[[aio.Channel], Any],
        *,
        attempt_timeout_seconds: float,
        channel_factory: ChannelFactory = insecure_channel,
    ) -> None:
        if attempt_timeout_seconds <= 0:
            raise ValueError(f"attempt_timeout_seconds must be > 0, got {attempt_timeout_seconds}")
        self.tier = tier
        self.ring = ring
        self.attempt_timeout = attempt_timeout_seconds
        self._stub_class = stub_class
        self._channel_factory = channel_factory
        self._replicas: dict[str, tuple[aio.Channel, Any]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._retired: list[aio.Channel] = []
        ring.add_listener(self._on_membership)

    async def call(
        self,
        method: str,
        request: Any,
        context: RequestContext,
        *,
        deadline: float | None = None,
        attempt_timeout: float | None = None,
    ) -> Routed:
        """Calls `method` on the first replica of `ring.order(context.key)` that answers, before the deadline.

        The deadline is `context.deadline` unless the call sets an earlier one (an absolute
        `time.monotonic()` instant); each attempt gets `min(time left, attempt_timeout)`,
        attempt_timeout_seconds unless the call sets another. Every attempt carries the request's
        `x-request-id` metadata (`context.metadata`).
        Raises UpstreamError: the replica's status for non-retryable codes (no other replica is tried),
        DEADLINE_EXCEEDED when time ran out, UNAVAILABLE when every replica failed (or none exist).
        """
        started = time.perf_counter()
        try:
            return await self._call(
                method,
                request,
                context.key,
                context.deadline if deadline is None else deadline,
                context.metadata,
                attempt_timeout or self.attempt_timeout,
            )
        finally:
            UPSTREAM_LATENCY.labels(self.tier).observe(time.perf_counter() - started)

    async def _call(
        self, method: str, request: Any, key: str, deadline: float, metadata: Metadata, attempt_timeout: float
    ) -> Routed:
        order = self.ring.order(key)
        if not order:
            raise UpstreamError(self.tier, "UNAVAILABLE", "no replicas known")
        failures: list[str] = []
        for attempt, address in enumerate(order, start=1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tried = f" after {'; '.join(failures)}" if failures else " before any attempt"
                raise UpstreamError(self.tier, "DEADLINE_EXCEEDED", f"deadline exceeded{tried}")
            if attempt > 1:
                UPSTREAM_FAILOVERS.labels(self.tier).inc()
            timeout = min(remaining, attempt_timeout)
            try:
                response = await getattr(self.stub(address), method)(request, timeout=timeout, metadata=metadata)
            except aio.AioRpcError as error:
                code = error.code()
                UPSTREAM_REQUESTS.labels(self.tier, address, code.name).inc()
                details = error.details() or ""
                if code not in RETRYABLE:
                    raise UpstreamError(self.tier, code.name, details) from None
                cut_short = code == grpc.StatusCode.DEADLINE_EXCEEDED and timeout < attempt_timeout
                if not cut_short or timeout >= FAIR_ATTEMPT_SHARE * attempt_timeout:
                    self.ring.record_failure(address)
                if cut_short:  # the caller's deadline, not the attempt's, ran out: nothing left to fail over
                    raise UpstreamError(
                        self.tier, "DEADLINE_EXCEEDED", f"deadline exceeded waiting for {address}"
                    ) from None
                failures.append(f"{address} {code.name}: {details}")
                log.info(
                    "upstream attempt failed; failing over",
                    extra={"tier": self.tier, "replica": address, "code": code.name, "attempt": attempt},
                )
                continue
            UPSTREAM_REQUESTS.labels(self.tier, address, "OK").inc()
            self.ring.record_success(address)
            return Routed(response, address, attempt)
        raise UpstreamError(self.tier, "UNAVAILABLE", f"all {len(order)} replicas failed: {'; '.join(failures)}")

    def channel(self, address: str) -> aio.Channel:
        """The channel to `address`, created on first use (also used by the health checker)."""
        return self._entry(address)[0]

    def stub(self, address: str) -> Any:
        return self._entry(address)[1]

    @property
    def open_channels(self) -> set[str]:
        """Replica addresses that currently have a channel."""
        return set(self._replicas)

    async def close(self) -> None:
        """Stops following the ring and closes every channel (in-flight calls are cancelled)."""
        self.ring.remove_listener(self._on_membership)
        channels = [channel for channel, _ in self._replicas.values()] + self._retired
        self._replicas.clear()
        self._retired.clear()
        await asyncio.gather(*(channel.close() for channel in channels), *self._closing, return_exceptions=True)

    def _entry(self, address: str) -> tuple[aio.Channel, Any]:
        entry = self._replicas.get(address)
        if entry is None:
            channel = self._channel_factory(address)
            entry = self._replicas[address] = (channel, self._stub_class(channel))
        return entry

    def _on_membership(self, added: set[str], removed: set[str]) -> None:
        for address in removed:
            entry = self._replicas.pop(address, None)
            if entry is None:
                continue
            try:
                task = asyncio.get_running_loop().create_task(entry[0].close(grace=self.attempt_timeout))
            except RuntimeError:  # no running loop (membership set from sync code): close in close()
                self._retired.append(entry[0])
                continue
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
