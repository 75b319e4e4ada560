"""Turns stream entries into events and applies each one's feature updates exactly once (one Lua call each)."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from services.common.nearline_keys import NearlineKeys
from services.common.trend import Decay
from services.common.validation import validate_event
from wren.core.errors import InvalidArgument
from wren.core.types import Event

APPLY_SCRIPT = """
-- KEYS: idempotency mark, item counters, user counters, trending set, item ratings per minute.
-- ARGV: mark ttl seconds, item id, event type, rating or '', positive '1'/'0', trend term, timestamp,
--       ratings-per-minute ttl seconds.
-- Returns 1 when applied, 0 when this event id was applied before (nothing changes).
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('HINCRBY', KEYS[2], 'count', 1)
redis.call('HINCRBY', KEYS[3], 'events', 1)
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
if ARGV[4] ~= '' then
  local rating = tonumber(ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'ratings', 1)
  redis.call('HINCRBYFLOAT', KEYS[2], 'rating_sum', rating)
  redis.call('HINCRBYFLOAT', KEYS[2], 'rating_sumsq', rating * rating)
  local minute = tostring(math.floor(tonumber(ARGV[7]) / 60))
  redis.call('HINCRBY', KEYS[5], minute .. ':n', 1)
  redis.call('HINCRBYFLOAT', KEYS[5], minute .. ':s', rating)
  redis.call('EXPIRE', KEYS[5], ARGV[8])
end
if ARGV[5] == '1' then
  redis.call('HINCRBY', KEYS[2], 'positives', 1)
  redis.call('HINCRBY', KEYS[3], 'positives', 1)
  local term = tonumber(ARGV[6])
  local old = redis.call('ZSCORE', KEYS[4], ARGV[2])
  local score = term
  if old then
    old = tonumber(old)
    local top = math.max(old, term)
    score = top + math.log(math.exp(old - top) + math.exp(term - top))
  end
  redis.call('ZADD', KEYS[4], score, ARGV[2])
end
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local last = tonumber(redis.call('HGET', key, 'last_ts') or '0')
  if tonumber(ARGV[7]) > last then redis.call('HSET', key, 'last_ts', ARGV[7]) end
end
return 1
"""


class PoisonEvent(ValueError):
    """A stream entry that can never be applied; its message says why."""


@dataclass(frozen=True)
class StreamEvent:
    """A validated event with its stream entry id; key is the idempotency key (the event id, or the entry id
    for entries written without one)."""

    entry_id: str
    event: Event

    @property
    def key(self) -> str:
        return self.event.event_id or f"stream:{self.entry_id}"

    @property
    def enqueued_seconds(self) -> float:
        """When the entry entered the stream (its id's millisecond part)."""
        return int(self.entry_id.split("-", 1)[0]) / 1000


def parse_entry(entry_id: str, fields: dict[str, str] | None) -> StreamEvent:
    """The event of one stream entry (fields as written by redis_layout.stream_fields), validated like ingestion."""
    if not fields:
        raise PoisonEvent("entry has no fields (deleted from the stream)")
    try:
        rating = fields.get("rating", "")
        event = Event(
            user_id=int(fields["user"]),
            item_id=int(fields["item"]),
            type=fields["type"],
            rating=float(rating) if rating else None,
            timestamp=int(fields["ts"]),
            event_id=fields.get("id", ""),
        )
        validate_event(event)
    except KeyError as missing:
        raise PoisonEvent(f"field {missing} is missing") from None
    except (ValueError, InvalidArgument) as error:
        raise PoisonEvent(str(error)) from None
    return StreamEvent(entry_id, event)


@dataclass(frozen=True)
class ApplyConfig:
    """positive_threshold: ratings at or above it count as positives (clicks always do); dedup_seconds: how
    long an applied event id is remembered (a redelivery or resend later than that would count again)."""

    positive_threshold: float = 3.5
    half_life_seconds: float = 6 * 3600.0
    dedup_seconds: int = 7 * 24 * 3600
    # An item's per-minute rating sums live this long after its last rating: long enough for a retrain to take
    # the ratings into a bundle (the feature tier counts only minutes after the live bundle's data cutoff).
    ratings_ttl_seconds: int = 30 * 24 * 3600


class Applier:
    """Applies events to the nearline keys, one atomic check-and-apply script per event, pipelined."""

    def __init__(self, client: aioredis.Redis, keys: NearlineKeys, config: ApplyConfig = ApplyConfig()) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        self.decay = Decay(config.half_life_seconds)
        self._sha = ""

    def positive(self, event: Event) -> bool:
        if event.type == "rating":
            return event.rating is not None and event.rating >= self.config.positive_threshold
        return event.type == "click"

    def _args(self, item: StreamEvent) -> list[str | int]:
        event, keys = item.event, self.keys
        rating = "" if event.rating is None else repr(float(event.rating))
        return [
            keys.applied(item.key),
            keys.item(event.item_id),
            keys.user(event.user_id),
            keys.trending,
            keys.item_ratings(event.item_id),
            self.config.dedup_seconds,
            event.item_id,
            event.type,
            rating,
            int(self.positive(event)),
            repr(self.decay.term(event.timestamp)),
            event.timestamp,
            self.config.ratings_ttl_seconds,
        ]

    async def apply(self, events: list[StreamEvent]) -> list[bool | Exception]:
        """Per event: True applied now, False applied before, or the Redis error that stopped it. Applying is
        idempotent, so when Redis lost the script (a restart) the whole batch simply runs again."""
        if not events:
            return []
        for _ in range(2):
            if not self._sha:
                self._sha = await self.client.script_load(APPLY_SCRIPT)
            async with self.client.pipeline(transaction=False) as pipe:
                for item in events:
                    pipe.evalsha(self._sha, 5, *self._args(item))
                replies = await pipe.execute(raise_on_error=False)
            if not any(isinstance(reply, NoScriptError) for reply in replies):
                break
            self._sha = ""
        return [reply if isinstance(reply, Exception) else bool(reply) for reply in replies]
