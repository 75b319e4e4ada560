"""Prometheus metrics of the nearline tier: throughput, event-to-feature lag, consumer lag, dead letters."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

NEARLINE_EVENTS = Counter(  # exported as wren_nearline_events_total
    "wren_nearline_events", "stream entries handled: applied, duplicate (already applied) or dead_letter", ["result"]
)
NEARLINE_FRESHNESS = Histogram(
    "wren_nearline_event_to_feature_seconds",
    "time from an event entering the stream to its features being written",
    buckets=LAG_BUCKETS,
)
NEARLINE_CONSUMER_LAG = Gauge(
    "wren_nearline_consumer_lag", "stream entries not yet acknowledged by the consumer group (unread + pending)"
)
NEARLINE_PENDING = Gauge("wren_nearline_pending", "entries delivered to a consumer of the group, not acknowledged")
NEARLINE_DEAD_LETTERS = Counter(  # exported as wren_nearline_dead_letters_total
    "wren_nearline_dead_letters", "events moved to the dead-letter stream, by reason", ["reason"]
)
NEARLINE_CLAIMED = Counter(  # exported as wren_nearline_claimed_total
    "wren_nearline_claimed", "pending entries of idle (dead) consumers claimed with XAUTOCLAIM"
)
NEARLINE_LOG_BYTES = Counter("wren_nearline_event_log_bytes", "bytes appended to the training event log")

for _result in ("applied", "duplicate", "dead_letter"):
    NEARLINE_EVENTS.labels(_result)  # exported at 0 from the start, so rates exist before the first event
for _reason in ("invalid", "apply failed"):
    NEARLINE_DEAD_LETTERS.labels(_reason)
