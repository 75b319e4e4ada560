"""NearlineConsumer: reads the event stream in a consumer group, applies, logs and acknowledges every event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from services.common.nearline_keys import NearlineKeys
from services.common.redis_layout import stream_fields
from services.nearline.apply import Applier, PoisonEvent, StreamEvent, parse_entry
from services.nearline.eventlog import EventLog
from services.nearline.metrics import (
    NEARLINE_CLAIMED,
    NEARLINE_CONSUMER_LAG,
    NEARLINE_DEAD_LETTERS,
    NEARLINE_EVENTS,
    NEARLINE_FRESHNESS,
    NEARLINE_LOG_BYTES,
    NEARLINE_PENDING,
)

log = logging.getLogger(__name__)
Entry = tuple[str, dict[str, str] | None]


@dataclass(frozen=True)
class ConsumerConfig:
    """consumer: this process's name in the group (unique per process); batch: entries per read; block_ms:
    how long a read waits for new entries; claim_idle_ms: pending entries idle this long belong to a dead
    consumer and are claimed (XAUTOCLAIM) every claim_every_seconds; lag_every_seconds: consumer-lag gauge
    refresh; dead_letters_maxlen: the dead-letter stream is trimmed to about this many entries."""

    consumer: str
    batch: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 30_000
    claim_every_seconds: float = 5.0
    lag_every_seconds: float = 1.0
    retry_seconds: float = 1.0
    dead_letters_maxlen: int = 100_000


class NearlineConsumer:
    """At-least-once delivery (an entry is acknowledged only after its features are written and it is in the
    event log) made exactly-once in effect by the Applier's idempotency marks. Entries that can never be
    applied go to the dead-letter stream with the reason and are acknowledged."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: NearlineKeys,
        applier: Applier,
        event_log: EventLog | None,
        config: ConsumerConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.applier = applier
        self.event_log = event_log
        self.config = config
        self.clock = clock
        self._own_pending = True  # entries delivered to this consumer name earlier (a restart, an error)

    async def ensure_group(self) -> None:
        """Creates the stream and the group (reading from the first entry) unless they exist."""
        try:
            await self.client.xgroup_create(self.keys.stream, self.keys.group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read(self) -> int:
        """One read (this consumer's own pending entries first, then new ones); returns entries handled."""
        if self._own_pending:
            entries = await self._read_group("0", None)
            if entries:
                return await self.handle(entries)
            self._own_pending = False
        return await self.handle(await self._read_group(">", self.config.block_ms))

    async def _read_group(self, start: str, block: int | None) -> list[Entry]:
        reply = await self.client.xreadgroup(
            self.keys.group, self.config.consumer, {self.keys.stream: start}, count=self.config.batch, block=block
        )
        streams = cast(list[tuple[str, list[Entry]]], reply)  # RESP2, decoded: [(stream, entries)]; stubs allow RESP3
        return streams[0][1] if streams else []

    async def claim(self) -> int:
        """Takes over entries other consumers left pending for claim_idle_ms and handles them."""
        handled, cursor = 0, "0-0"
        while True:
            reply = await self.client.xautoclaim(
                self.keys.stream,
                self.keys.group,
                self.config.consumer,
                self.config.claim_idle_ms,
                start_id=cursor,
                count=self.config.batch,
            )
            cursor, entries = reply[0], reply[1]
            if entries:
                NEARLINE_CLAIMED.inc(len(entries))
                log.info("claimed %d pending entries of idle consumers", len(entries))
                handled += await self.handle(entries)
            if cursor in ("0-0", b"0-0"):
                return handled

    async def handle(self, entries: list[Entry]) -> int:
        """Applies, logs and acknowledges a batch; poison entries go to the dead-letter stream."""
        if not entries:
            return 0
        valid: list[StreamEvent] = []
        dead: list[tuple[str, dict[str, str], str]] = []
        for entry_id, fields in entries:
            try:
                valid.append(parse_entry(entry_id, fields))
            except PoisonEvent as poison:
                dead.append((entry_id, fields or {}, str(poison)))
        if valid and self.event_log is not None:
            NEARLINE_LOG_BYTES.inc(await asyncio.to_thread(self.event_log.append, valid))
        results = await self.applier.apply(valid)
        now = self.clock()
        for item, result in zip(valid, results, strict=True):
            if isinstance(result, Exception):
                dead.append((item.entry_id, _fields(item), f"apply failed: {result}"))
            else:
                NEARLINE_EVENTS.labels("applied" if result else "duplicate").inc()
                if result:
                    NEARLINE_FRESHNESS.observe(max(now - item.enqueued_seconds, 0.0))
        async with self.client.pipeline(transaction=True) as pipe:
            for entry_id, fields, reason in dead:
                pipe.xadd(
                    self.keys.dead_letters,
                    _dead_letter(fields, entry_id, reason),
                    maxlen=self.config.dead_letters_maxlen,
                    approximate=True,
                )
            pipe.xack(self.keys.stream, self.keys.group, *[entry_id for entry_id, _ in entries])
            await pipe.execute()
        for _, _, reason in dead:
            NEARLINE_EVENTS.labels("dead_letter").inc()
            NEARLINE_DEAD_LETTERS.labels(reason.split(":", 1)[0] if reason.startswith("apply") else "invalid").inc()
            log.warning("dead-lettered a stream entry: %s", reason)
        return len(entries)

    async def refresh_lag(self) -> int:
        """Unread plus pending entries of the group (also exported as wren_nearline_consumer_lag)."""
        for group in await self.client.xinfo_groups(self.keys.stream):
            if _text(group["name"]) == self.keys.group:
                pending = int(group["pending"])
                lag = pending + int(group.get("lag") or 0)
                NEARLINE_PENDING.set(pending)
                NEARLINE_CONSUMER_LAG.set(lag)
                return lag
        return 0

    async def run(self, stopping: asyncio.Event) -> None:
        """Reads, claims and measures until `stopping` is set; the batch in hand is always finished first.
        Redis errors are logged and retried (unacknowledged entries are read again)."""
        await self.ensure_group()
        next_claim = next_lag = 0.0
        while not stopping.is_set():
            try:
                now = time.monotonic()
                if now >= next_claim:
                    await self.claim()
                    next_claim = now + self.config.claim_every_seconds
                if now >= next_lag:
                    await self.refresh_lag()
                    next_lag = now + self.config.lag_every_seconds
                await self.read()
            except (OSError, ConnectionError, TimeoutError, aioredis.RedisError) as error:
                log.warning("nearline consumer: %s: %s; retrying", type(error).__name__, error)
                self._own_pending = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.config.retry_seconds)


def _dead_letter(fields: dict[str, str], entry_id: str, reason: str) -> dict[FieldT, EncodableT]:
    """A dead-letter entry: the original fields, the entry id and why (typed as redis-py's xadd takes it)."""
    return {name: value for name, value in {**fields, "entry": entry_id, "reason": reason}.items()}


def _fields(item: StreamEvent) -> dict[str, str]:
    return {name: str(value) for name, value in stream_fields(item.event).items()}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
