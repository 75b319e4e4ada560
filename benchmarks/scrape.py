"""Prometheus /metrics snapshots of the stack's processes and what their deltas over a run say."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Mapping
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from services.common.tiers import BACKEND_TIERS

Key = tuple[str, tuple[tuple[str, str], ...]]  # (sample name, sorted labels)
Samples = dict[Key, float]
CACHES = ("gateway_results", "gateway_coldstart", "recall_candidates", "feature_user")
TIERS = BACKEND_TIERS


def parse(text: str) -> Samples:
    """Counter and histogram samples of a Prometheus text page (`_created` timestamps left out)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def fetch(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


async def snapshot(urls: Mapping[str, str]) -> dict[str, Samples]:
    """Scrapes every process at once: process name -> samples."""
    pages = await asyncio.gather(*(asyncio.to_thread(fetch, url) for url in urls.values()))
    return {name: parse(page) for name, page in zip(urls, pages, strict=True)}


def delta(before: dict[str, Samples], after: dict[str, Samples]) -> dict[str, Samples]:
    """after - before, per process and sample (a sample new since `before` counts from 0)."""
    return {
        name: {key: value - before.get(name, {}).get(key, 0.0) for key, value in samples.items()}
        for name, samples in after.items()
    }


def total(samples: Mapping[str, Samples], name: str, **labels: str) -> float:
    """Sum of `name` over every process and every series whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(
        value
        for process in samples.values()
        for (sample, series), value in process.items()
        if sample == name and wanted <= set(series)
    )


def cache_lookups(samples: Mapping[str, Samples]) -> dict[str, dict[str, Any]]:
    """Per cache: hits, misses and hit ratio (ratio only for caches that were consulted)."""
    report: dict[str, dict[str, Any]] = {}
    for cache in CACHES:
        hits = total(samples, "wren_cache_requests_total", cache=cache, result="hit")
        misses = total(samples, "wren_cache_requests_total", cache=cache, result="miss")
        entry: dict[str, Any] = {"hits": int(hits), "misses": int(misses)}
        if hits + misses:
            entry["hit_ratio"] = hits / (hits + misses)
        report[cache] = entry
    return report


def _mean_ms(samples: Mapping[str, Samples], histogram: str, per: float, **labels: str) -> float:
    return 1000.0 * total(samples, f"{histogram}_sum", **labels) / per


def hop_breakdown(samples: Mapping[str, Samples], client_mean_ms: float, protocol: str) -> dict[str, Any]:
    """Where one request's time goes, as means per gateway request over the run:

    client_ms (observed by the load generator) = client_to_gateway_ms (client library, network, the
    gateway's HTTP/gRPC front) + gateway_server_ms (the gateway's handler); gateway_server_ms =
    gateway_own_ms (cache lookups, re-rank, assembling the reply) + the tier calls as the gateway saw them.
    Each tier call = server_ms (the tier's handler, from its own histogram) + rpc_overhead_ms
    (serialisation, HTTP/2, the two event loops' scheduling)."""
    if protocol == "http":
        histogram, labels = "wren_http_latency_seconds", {"route": "/v1/recommendations"}
    else:
        histogram, labels = "wren_grpc_server_latency_seconds", {"service": "gateway", "method": "Recommend"}
    requests = total(samples, f"{histogram}_count", **labels)
    if requests <= 0:
        raise ValueError("the gateway's metrics saw no Recommend request during the run")
    gateway_ms = _mean_ms(samples, histogram, requests, **labels)
    hops: dict[str, Any] = {}
    for tier in TIERS:
        calls = total(samples, "wren_upstream_latency_seconds_count", tier=tier)
        seen = _mean_ms(samples, "wren_upstream_latency_seconds", requests, tier=tier)
        server = _mean_ms(samples, "wren_grpc_server_latency_seconds", requests, service=tier)
        methods: dict[str, float] = {}
        for (_, series), value in _series(samples, "wren_grpc_server_latency_seconds_sum", service=tier):
            method = dict(series)["method"]
            if method != "Check" and value > 0:
                methods[method] = methods.get(method, 0.0) + 1000.0 * value / requests
        hops[tier] = {
            "calls_per_request": calls / requests,
            "gateway_seen_ms": seen,
            "server_ms": server,
            "rpc_overhead_ms": seen - server,
            "methods_ms": methods,
        }
    model = total(samples, "wren_ranking_inference_seconds_sum")
    if model:
        hops["ranking"]["model_ms"] = 1000.0 * model / requests
    upstream = sum(hop["gateway_seen_ms"] for hop in hops.values())
    return {
        "requests": int(requests),
        "client_ms": client_mean_ms,
        "client_to_gateway_ms": client_mean_ms - gateway_ms,
        "gateway_server_ms": gateway_ms,
        "gateway_own_ms": gateway_ms - upstream,
        "hops": hops,
    }


def _series(samples: Mapping[str, Samples], name: str, **labels: str) -> list[tuple[Key, float]]:
    wanted = set(labels.items())
    return [
        (key, value)
        for process in samples.values()
        for key, value in process.items()
        if key[0] == name and wanted <= set(key[1])
    ]
