"""Suite `cache`: every cache on, users drawn uniformly and with Zipf skews; hit ratios and throughput gain."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import plots
from benchmarks.loadgen import RunResult, closed_loop
from benchmarks.report import table
from benchmarks.scrape import CACHES, cache_lookups
from benchmarks.stacks import metrics_urls
from benchmarks.stats import subset_latency_ms, summarize
from benchmarks.suites import SuiteContext, SuiteReport
from benchmarks.suites.common import measured, stack_target
from benchmarks.users import UserSampler, users_from_bundle

K = 10
NEW_USER_SHARE = 0.1  # requests from users the bundle has never seen: the cold-start cache's traffic
NEW_USERS = 1_000


class MixedSampler(UserSampler):
    """Known users by Zipf rank; with probability `new_share` instead a uniformly chosen new user."""

    def __init__(self, known: np.ndarray, new: np.ndarray, s: float, new_share: float, seed: int) -> None:
        super().__init__(known, s, seed)
        self.new = new
        self.new_share = new_share

    def draw(self, size: int) -> np.ndarray:
        draws = super().draw(size)
        cold = self._rng.random(size) < self.new_share
        draws[cold] = self.new[self._rng.integers(0, len(self.new), int(cold.sum()))]
        return draws


def _sampler(known: np.ndarray, s: float, seed: int) -> MixedSampler:
    start = int(known.max()) + 1
    return MixedSampler(known, np.arange(start, start + NEW_USERS, dtype=np.int64), s, NEW_USER_SHARE, seed)


async def _uncached(ctx: SuiteContext, known: np.ndarray) -> tuple[dict[str, Any], RunResult]:
    stack = await ctx.stacks().shared(1)
    target = stack_target(stack, ctx.protocol, max(64, ctx.scale.cache_concurrency))
    scale = ctx.scale
    try:
        sampler = _sampler(known, 0.0, ctx.seed)
        await closed_loop(
            target,
            sampler,
            concurrency=scale.cache_concurrency,
            duration=scale.warmup,
            k=K,
            label="uncached warm-up",
            progress=ctx.progress,
        )
        result, summary, _ = await measured(
            metrics_urls(stack),
            closed_loop(
                target,
                sampler,
                concurrency=scale.cache_concurrency,
                duration=scale.duration,
                k=K,
                label="uncached closed",
                progress=ctx.progress,
            ),
        )
    finally:
        await target.close()
    return summary, result


async def _cached(ctx: SuiteContext, known: np.ndarray, s: float) -> tuple[dict[str, Any], RunResult]:
    """A freshly started stack with default caches: warm-up, measured closed loop, then one at a time."""
    scale = ctx.scale
    async with ctx.stacks().fresh(1, cached=True) as stack:
        target = stack_target(stack, ctx.protocol, max(64, scale.cache_concurrency))
        try:
            sampler = _sampler(known, s, ctx.seed)
            await closed_loop(
                target,
                sampler,
                concurrency=scale.cache_concurrency,
                duration=scale.warmup,
                k=K,
                label=f"zipf {s:g} warm-up",
                progress=ctx.progress,
            )
            urls = metrics_urls(stack)
            result, figures, deltas = await measured(
                urls,
                closed_loop(
                    target,
                    sampler,
                    concurrency=scale.cache_concurrency,
                    duration=scale.duration,
                    k=K,
                    label=f"zipf {s:g} closed x{scale.cache_concurrency}",
                    progress=ctx.progress,
                ),
            )
            unloaded = await closed_loop(
                target,
                sampler,
                concurrency=1,
                duration=scale.sequential,
                k=K,
                label=f"zipf {s:g} one at a time",
                progress=ctx.progress,
            )
        finally:
            await target.close()
    figures["caches"] = cache_lookups(deltas)
    for name, run in (("", result), ("unloaded_", unloaded)):
        for kind, mask in (("hit", run.cached & run.ok), ("miss", ~run.cached & run.ok)):
            latency = subset_latency_ms(run, mask)
            if latency is not None:
                figures[f"{name}{kind}_latency_ms"] = latency
    figures["unloaded"] = summarize(unloaded)
    return figures, result


def _tables(data: dict[str, Any]) -> list[str]:
    runs = data["runs"]
    hits = [
        [name]
        + [100 * run["caches"][cache]["hit_ratio"] if "hit_ratio" in run["caches"][cache] else None for cache in CACHES]
        + [100 * run["cached_ratio"]]
        for name, run in runs.items()
    ]
    base = data["uncached"]
    speed = [
        [
            "caches off (uniform)",
            base["throughput_rps"],
            base["goodput_rps"],
            1.0,
            100 * base["degraded_rate"],
            base["cpu_ms_per_request"]["total"],
            base["latency_ms"]["p50"],
            base["latency_ms"]["p99"],
            None,
            None,
        ]
    ]
    speed += [
        [
            name,
            run["throughput_rps"],
            run["goodput_rps"],
            run["goodput_gain"],
            100 * run["degraded_rate"],
            run["cpu_ms_per_request"]["total"],
            run["latency_ms"]["p50"],
            run["latency_ms"]["p99"],
            run.get("hit_latency_ms", {}).get("p50"),
            run.get("unloaded_hit_latency_ms", {}).get("p50"),
        ]
        for name, run in runs.items()
    ]
    return [
        table(
            ["users", *(f"{cache} hit %" for cache in CACHES), "answers from a gateway cache %"],
            hits,
            "Cache hit ratios per cache (from /metrics deltas over the measured run; "
            f"{100 * NEW_USER_SHARE:g}% of requests from new users)",
        ),
        table(
            [
                "users",
                "rps",
                "goodput rps",
                "goodput gain",
                "degraded %",
                "CPU ms/req",
                "p50 ms",
                "p99 ms",
                "hit p50 ms (loaded)",
                "hit p50 ms (one at a time)",
            ],
            speed,
            f"Throughput with caches on, closed loop with {data['settings']['concurrency']} workers",
        ),
    ]


async def run(ctx: SuiteContext) -> SuiteReport:
    known = users_from_bundle(ctx.require_artifacts("cache"))
    ctx.say("  uncached baseline (stack 1x, caches off)")
    uncached, baseline = await _uncached(ctx, known)
    runs: dict[str, dict[str, Any]] = {}
    results: dict[str, RunResult] = {"uncached": baseline}
    for s in ctx.scale.cache_zipf:
        name = "uniform" if s == 0 else f"zipf {s:g}"
        ctx.say(f"  caches on, {name} users (fresh stack)")
        figures, result = await _cached(ctx, known, s)
        figures["zipf"] = s
        figures["throughput_gain"] = figures["throughput_rps"] / uncached["throughput_rps"]
        figures["goodput_gain"] = figures["goodput_rps"] / uncached["goodput_rps"]
        runs[name] = figures
        results[name] = result
    skewed = runs[max(runs, key=lambda name: runs[name]["zipf"])]
    data: dict[str, Any] = {
        "settings": {
            "users": len(known),
            "new_users": NEW_USERS,
            "new_user_share": NEW_USER_SHARE,
            "k": K,
            "protocol": ctx.protocol,
            "concurrency": ctx.scale.cache_concurrency,
            "duration_s": ctx.scale.duration,
            "warmup_s": ctx.scale.warmup,
            "zipf": list(ctx.scale.cache_zipf),
        },
        "uncached": uncached,
        "runs": runs,
    }
    if "unloaded_hit_latency_ms" in skewed:
        data["gateway_cache_hit_p50_ms"] = skewed["unloaded_hit_latency_ms"]["p50"]
    png = [
        plots.grouped_bars(
            ctx.out / "cache_hit_ratios.png",
            list(CACHES),
            {name: [run["caches"][c].get("hit_ratio", 0.0) for c in CACHES] for name, run in runs.items()},
            ylabel="hit ratio",
            title="Hit ratio per cache by user distribution",
        ),
        plots.latency_cdf(
            ctx.out / "cache_latency_cdf.png",
            {n: r.latencies for n, r in results.items()},
            f"Latency with caches on vs off (closed loop x{ctx.scale.cache_concurrency})",
        ),
    ]
    return SuiteReport("cache", data, _tables(data), png)
