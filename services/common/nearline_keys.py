"""Redis key names the nearline tier writes and the serving tiers read (one namespace prefix with the feature store)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.redis_layout import Keys


@dataclass(frozen=True)
class NearlineKeys:
    """`{p}:events` the event stream (written by the feature tier) and its consumer group `group`;
    `{p}:events:dead` dead letters; `{p}:nl:applied:{event id}` idempotency marks (expire after the dedup
    window); `{p}:nl:i:{item}` item counters hash (count, ratings, rating_sum, rating_sumsq, positives,
    last_ts); `{p}:nl:u:{user}` user counters hash (events, rating, click, view, positives, last_ts);
    `{p}:nl:trending` sorted set of items scored by log of their time-decayed positive count (see
    services.common.trend) and `{p}:nl:trending:half_life` its half-life; `{p}:invalidate` the pub/sub
    channel gateways drop a user's lists on."""

    prefix: str = "wren"
    group: str = "nearline"

    @property
    def stream(self) -> str:
        return Keys(self.prefix).stream

    @property
    def dead_letters(self) -> str:
        return f"{self.stream}:dead"

    def applied(self, event_id: str) -> str:
        return f"{self.prefix}:nl:applied:{event_id}"

    def item(self, item_id: int) -> str:
        return f"{self.prefix}:nl:i:{item_id}"

    def item_ratings(self, item_id: int) -> str:
        """Hash of the item's ratings per minute of their timestamps: `{minute}:n` count, `{minute}:s` sum."""
        return f"{self.prefix}:nl:i:{item_id}:m"

    def user(self, user_id: int) -> str:
        return f"{self.prefix}:nl:u:{user_id}"

    @property
    def trending(self) -> str:
        return f"{self.prefix}:nl:trending"

    @property
    def half_life(self) -> str:
        """The trending set's half-life in seconds, written by the nearline tier, read by recall."""
        return f"{self.prefix}:nl:trending:half_life"

    @property
    def invalidations(self) -> str:
        return f"{self.prefix}:invalidate"
