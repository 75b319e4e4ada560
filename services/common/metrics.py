"""Prometheus metrics every Wren service exports; names are part of the product (rules, dashboards, HPA)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)

# RED metrics per gRPC method, as seen by the server.
GRPC_REQUESTS = Counter(
    "wren_grpc_server_requests", "gRPC requests handled, by final status code", ["service", "method", "code"]
)
GRPC_LATENCY = Histogram(
    "wren_grpc_server_latency_seconds", "gRPC handling latency", ["service", "method"], buckets=LATENCY_BUCKETS
)
GRPC_IN_FLIGHT = Gauge("wren_grpc_server_in_flight", "gRPC requests being handled now", ["service", "method"])

# Autoscaling signal: utilization = in-flight / capacity of this process.
CAPACITY = Gauge("wren_capacity", "concurrent requests this process is sized for", ["service"])
UTILIZATION = Gauge("wren_utilization", "in-flight requests divided by capacity", ["service"])
BUSY_SECONDS = Counter(
    "wren_busy_seconds", "sum of request durations; its rate is the mean number of requests in flight", ["service"]
)

CACHE_REQUESTS = Counter("wren_cache_requests", "cache lookups by result (hit/miss)", ["cache", "result"])
CACHE_SIZE = Gauge("wren_cache_size", "entries held by a cache", ["cache"])
CACHE_INVALIDATIONS = Counter("wren_cache_invalidations", "entries dropped because their user changed", ["cache"])

BUNDLE_INFO = Gauge("wren_bundle_info", "artifact bundle a service is serving (value 1)", ["service", "version"])
BUNDLE_RELOADS = Counter("wren_bundle_reloads", "hot reloads of a newly published bundle", ["service", "result"])
INDEX_INFO = Gauge("wren_index_info", "items in the served vector index, by backend and bundle", ["kind", "version"])
# Ranking tier: traffic per model and A/B variant, batch sizes, model time, and which models serve.
RANKING_REQUESTS = Counter("wren_ranking_requests", "Rank calls scored, by model and A/B variant", ["model", "variant"])
RANKING_BATCH_SIZE = Histogram(
    "wren_ranking_batch_size", "candidates per Rank call", buckets=(1, 10, 25, 50, 100, 200, 300, 500, 1000, 2000)
)
RANKING_INFERENCE = Histogram(
    "wren_ranking_inference_seconds", "model run time per Rank call", ["model"], buckets=LATENCY_BUCKETS
)
MODEL_INFO = Gauge(
    "wren_model_info",
    "ranking models served (value 1); variant is empty for models only reachable by name",
    ["model", "version", "variant"],
)
DEGRADED = Counter("wren_degraded_responses", "responses served with a fallback, by reason", ["reason"])
HTTP_REQUESTS = Counter("wren_http_requests", "HTTP requests by route and status", ["route", "status"])
HTTP_LATENCY = Histogram("wren_http_latency_seconds", "HTTP handling latency", ["route"], buckets=LATENCY_BUCKETS)
READY = Gauge("wren_ready", "1 once the service has loaded its artifacts and serves", ["service"])

# Feature store storage health (exported as wren_feature_store_errors_total).
FEATURE_STORE_ERRORS = Counter(
    "wren_feature_store_errors", "feature store calls failed because storage was unreachable", ["op"]
)
REDIS_CIRCUIT_OPEN = Gauge("wren_redis_circuit_open", "1 while the Redis circuit breaker rejects calls, else 0")


def serve_metrics(port: int, addr: str) -> None:
    """Exposes /metrics on `addr`:`port` from a background thread (no-op for port 0); the address is the
    service's own --host, never every interface by default."""
    if port:
        start_http_server(port, addr=addr)


# Gateway routing: consistent-hash ring membership per tier, outlier ejections, upstream calls and failovers.
RING_MEMBERS = Gauge("wren_ring_members", "replicas in a tier's hash ring", ["tier"])
RING_ROUTABLE = Gauge("wren_ring_routable", "ring replicas neither ejected nor unhealthy", ["tier"])
UPSTREAM_EJECTIONS = Counter(  # exported as wren_upstream_ejections_total
    "wren_upstream_ejections", "replicas ejected after consecutive failures", ["tier", "replica"]
)
UPSTREAM_REQUESTS = Counter(  # exported as wren_upstream_requests_total; one per attempt
    "wren_upstream_requests", "gateway attempts on a tier replica, by final status code", ["tier", "replica", "code"]
)
UPSTREAM_LATENCY = Histogram(
    "wren_upstream_latency_seconds",
    "tier call latency seen by the gateway, failovers included",
    ["tier"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_FAILOVERS = Counter(  # exported as wren_upstream_failovers_total
    "wren_upstream_failovers", "attempts moved on to the next replica of the ring", ["tier"]
)
