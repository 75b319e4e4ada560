"""Connection and resilience settings of the Redis feature store."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisFeatureStoreConfig:
    """Connection and resilience settings. timeout_ms bounds socket connect and every reply; after
    breaker_threshold consecutive outage errors calls fail at once for breaker_reset_seconds, then the
    next call probes (success closes the circuit, failure opens it again). live_check_seconds: how long
    a confirmed live version may answer get_items wholly from the item cache (0 = always ask Redis)."""

    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "wren"
    timeout_ms: float = 50
    breaker_threshold: int = 3
    breaker_reset_seconds: float = 1.0
    item_cache_size: int = 50_000
    item_cache_ttl_seconds: float = 600.0
    live_check_seconds: float = 1.0
    events_per_user: int = 1000
    stream_maxlen: int = 1_000_000
