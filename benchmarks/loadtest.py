"""`wren bench --target/--grpc`: load a running gateway (closed loop, or an open-loop rate sweep) and report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import plots
from benchmarks.loadgen import RunResult, closed_loop, open_loop
from benchmarks.report import machine, table, write_json
from benchmarks.scrape import cache_lookups
from benchmarks.stats import subset_latency_ms, summarize
from benchmarks.suites.common import with_metrics
from benchmarks.targets import GrpcTarget, HttpTarget, Target
from benchmarks.users import UserSampler


@dataclass
class LoadTest:
    users: np.ndarray
    out: Path
    http: str | None = None  # gateway base URL
    grpc: str | None = None  # gateway host:port; the load goes here when set
    metrics: list[str] = field(default_factory=list)  # /metrics URLs diffed around each run
    mode: str = "closed"
    concurrency: int = 16
    rates: list[float] = field(default_factory=lambda: [100.0])
    arrival: str = "poisson"
    duration: float | None = 10.0
    requests: int | None = None
    zipf: float = 0.0
    k: int = 10
    warmup: float = 1.0
    timeout: float = 5.0
    seed: int = 0
    progress: bool = True

    def target(self) -> Target:
        if self.grpc:
            return GrpcTarget(self.grpc, self.timeout)
        if self.http:
            return HttpTarget(self.http, self.timeout, max(64, self.concurrency))
        raise ValueError("give --target http://HOST:PORT and/or --grpc HOST:PORT")

    def metrics_urls(self) -> dict[str, str]:
        urls = list(self.metrics) or ([f"{self.http.rstrip('/')}/metrics"] if self.http else [])
        return {f"process{i}": url for i, url in enumerate(urls)}


def _figures(result: RunResult, deltas: dict | None) -> dict[str, Any]:
    figures = summarize(result)
    hits = subset_latency_ms(result, result.cached & result.ok)
    if hits is not None:
        figures["cache_hit_latency_ms"] = hits
    if deltas is not None:
        figures["caches"] = cache_lookups(deltas)
    return figures


async def run_loadtest(test: LoadTest) -> dict[str, Any]:
    """Runs the load, writes OUT/loadtest.json and PNGs, prints a table; returns the JSON payload."""
    target = test.target()
    urls = test.metrics_urls()
    sampler = UserSampler(test.users, test.zipf, test.seed)
    runs: list[RunResult] = []
    figures: list[dict[str, Any]] = []
    try:
        if test.warmup > 0:
            await closed_loop(
                target,
                sampler,
                concurrency=test.concurrency,
                duration=test.warmup,
                k=test.k,
                label="warm-up",
                progress=test.progress,
            )
        for rate in [0.0] if test.mode == "closed" else test.rates:
            load = (
                closed_loop(
                    target,
                    sampler,
                    concurrency=test.concurrency,
                    duration=test.duration,
                    requests=test.requests,
                    k=test.k,
                    label=f"closed x{test.concurrency}",
                    progress=test.progress,
                )
                if test.mode == "closed"
                else open_loop(
                    target,
                    sampler,
                    rate=rate,
                    duration=test.duration,
                    requests=test.requests,
                    arrival=test.arrival,
                    k=test.k,
                    seed=test.seed,
                    label=f"open {rate:g} rps",
                    progress=test.progress,
                )
            )
            if urls:
                result, deltas = await with_metrics(urls, load)
            else:
                result, deltas = await load, None
            runs.append(result)
            figures.append(_figures(result, deltas))
    finally:
        await target.close()
    payload = {
        "target": target.name,
        "protocol": target.protocol,
        "users": len(test.users),
        "zipf": test.zipf,
        "machine": machine(),
        "runs": figures,
    }
    write_json(test.out / "loadtest.json", payload)
    series = {f"{r.label}": r.latencies for r in runs}
    plots.latency_cdf(test.out / "loadtest_latency_cdf.png", series, f"Latency against {target.name}")
    if test.mode == "open":
        plots.throughput_latency(
            test.out / "loadtest_throughput_latency.png",
            {target.name: [(f["throughput_rps"], f["latency_ms"]["p50"], f["latency_ms"]["p99"]) for f in figures]},
            "Open loop: latency vs achieved throughput",
        )
    print(
        table(
            [
                "run",
                "requests",
                "rps",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "p99.9 ms",
                "errors %",
                "degraded %",
                "cached %",
                "results-cache hit %",
            ],
            [
                [
                    f["label"],
                    f["requests"],
                    f["throughput_rps"],
                    f["latency_ms"]["p50"],
                    f["latency_ms"]["p90"],
                    f["latency_ms"]["p99"],
                    f["latency_ms"]["p99.9"],
                    100 * f["error_rate"],
                    100 * f["degraded_rate"],
                    100 * f["cached_ratio"],
                    100 * f["caches"]["gateway_results"]["hit_ratio"]
                    if "caches" in f and "hit_ratio" in f["caches"]["gateway_results"]
                    else None,
                ]
                for f in figures
            ],
            f"Load test of {target.name} ({target.protocol}, zipf s={test.zipf:g}, {len(test.users)} users)",
        )
    )
    print(f"wrote {test.out / 'loadtest.json'} and PNGs")
    return payload
