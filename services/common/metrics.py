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

CACHE_REQUESTS = Counter("wren_cache_requests", "cache lookups by result (hit/miss)", ["cache", "result"])
CACHE_SIZE = Gauge("wren_cache_size", "entries held by a cache", ["cache"])
CACHE_INVALIDATIONS = Counter("wren_cache_invalidations", "entries dropped because their user changed", ["cache"])

BUNDLE_INFO = Gauge("wren_bundle_info", "artifact bundle a service is serving (value 1)", ["service", "version"])
READY = Gauge("wren_ready", "1 once the service has loaded its artifacts and serves", ["service"])


def serve_metrics(port: int, addr: str = "0.0.0.0") -> None:
    """Exposes /metrics on `port` from a background thread (no-op for port 0)."""
    if port:
        start_http_server(port, addr=addr)
