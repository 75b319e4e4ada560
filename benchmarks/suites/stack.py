"""Suite `stack`: the in-process pipeline vs the stack with 1 and with 2 replicas per tier, every cache off."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from benchmarks import plots
from benchmarks.loadgen import RunResult, closed_loop, open_loop
from benchmarks.profiling import profile_requests
from benchmarks.report import table
from benchmarks.scrape import hop_breakdown
from benchmarks.stacks import metrics_urls
from benchmarks.suites import SuiteContext, SuiteReport
from benchmarks.suites.common import measured, stack_target
from benchmarks.targets import RecommenderTarget, Target
from benchmarks.users import UserSampler, users_from_bundle
from services.inprocess import build_pipeline
from wren.core.bundle import Bundle

K = 10
HEADLINE_RATE = 100.0
IN_PROCESS = "bench process (pipeline + load generator)"
LOAD_GENERATOR = "load generator"


async def _load(
    ctx: SuiteContext,
    target: Target,
    users: np.ndarray,
    label: str,
    runs: dict[str, RunResult],
    urls: dict[str, str],
    own: str,
) -> dict[str, Any]:
    """Warm-up, the closed loop at each concurrency of the sweep, then the open loop at each rate.

    max_rps is the best *goodput* of the sweep: full answers per second, degraded ones (ranking or recall
    skipped because a deadline ran out) not counted; max_rps_any counts them too."""
    scale = ctx.scale
    sampler = UserSampler(users, 0.0, ctx.seed)
    await closed_loop(
        target,
        sampler,
        concurrency=max(scale.concurrency),
        duration=scale.warmup,
        k=K,
        label=f"{label} warm-up",
        progress=ctx.progress,
    )
    closed = {}
    for concurrency in scale.concurrency:
        result, closed[str(concurrency)], _ = await measured(
            urls,
            closed_loop(
                target,
                sampler,
                concurrency=concurrency,
                duration=scale.duration,
                k=K,
                label=f"{label} closed x{concurrency}",
                progress=ctx.progress,
            ),
            own,
        )
        runs[f"{label} closed x{concurrency}"] = result
    best = max(closed.values(), key=lambda run: run["goodput_rps"])
    opened = {}
    for rate in scale.rates:
        result, opened[f"{rate:g}"], _ = await measured(
            urls,
            open_loop(
                target,
                sampler,
                rate=rate,
                duration=scale.duration,
                k=K,
                seed=ctx.seed,
                label=f"{label} open {rate:g} rps",
                progress=ctx.progress,
            ),
            own,
        )
        runs[f"{label} open {rate:g}"] = result
    return {
        "max_rps": best["goodput_rps"],
        "max_rps_concurrency": best["concurrency"],
        "max_rps_any": max(run["throughput_rps"] for run in closed.values()),
        f"p99_ms_at_{HEADLINE_RATE:g}rps": opened[f"{HEADLINE_RATE:g}"]["latency_ms"]["p99"],
        "closed": closed,
        "open": opened,
    }


async def _inprocess(ctx: SuiteContext, users: np.ndarray, runs: dict[str, RunResult]) -> dict[str, Any]:
    pipeline = await build_pipeline(ctx.require_artifacts("stack"), cached=False)
    try:
        target = RecommenderTarget(pipeline.recommender)
        pipeline.reset_timers()
        result = await _load(ctx, target, users, "inprocess", runs, {}, IN_PROCESS)
        pipeline.reset_timers()
        sequential, result["sequential"], _ = await measured(
            {},
            closed_loop(
                target,
                UserSampler(users, 0.0, ctx.seed + 1),
                concurrency=1,
                duration=ctx.scale.sequential,
                k=K,
                label="inprocess one at a time",
                progress=ctx.progress,
            ),
            IN_PROCESS,
        )
        result["sequential_hops_ms"] = pipeline.hops_ms(len(sequential.latencies))
        ctx.say(f"  profiling {ctx.scale.profile_requests} in-process requests")
        result["profile"] = await profile_requests(
            target, UserSampler(users, 0.0, ctx.seed + 2), ctx.scale.profile_requests, K
        )
    finally:
        pipeline.close()
    return result


async def _stack(ctx: SuiteContext, replicas: int, users: np.ndarray, runs: dict[str, RunResult]) -> dict[str, Any]:
    stack = await ctx.stacks().shared(replicas)
    target = stack_target(stack, ctx.protocol, connections=max(64, *ctx.scale.concurrency))
    label = f"stack {replicas}x"
    try:
        urls = metrics_urls(stack)
        result = await _load(ctx, target, users, label, runs, urls, LOAD_GENERATOR)
        if replicas == 1:
            _, result["sequential"], deltas = await measured(
                urls,
                closed_loop(
                    target,
                    UserSampler(users, 0.0, ctx.seed + 1),
                    concurrency=1,
                    duration=ctx.scale.sequential,
                    k=K,
                    label=f"{label} one at a time",
                    progress=ctx.progress,
                ),
            )
            result["breakdown"] = hop_breakdown(deltas, result["sequential"]["latency_ms"]["mean"], ctx.protocol)
    finally:
        await target.close()
    return result


def _tables(data: dict[str, Any]) -> list[str]:
    setups = {"in-process": data["inprocess"], "stack 1x": data["stack_1x"], "stack 2x": data["stack_2x"]}
    rate = f"{HEADLINE_RATE:g}"
    tables = [
        table(
            [
                "setup",
                "max rps (full answers)",
                "at concurrency",
                "max rps incl. degraded",
                f"p50 ms at {rate} rps",
                f"p99 ms at {rate} rps",
            ],
            [
                [
                    name,
                    s["max_rps"],
                    s["max_rps_concurrency"],
                    s["max_rps_any"],
                    s["open"][rate]["latency_ms"]["p50"],
                    s["open"][rate]["latency_ms"]["p99"],
                ]
                for name, s in setups.items()
            ],
            f"Uncached, side by side: stack 1x / in-process = {data['ratio_stack_to_inprocess']:.2f}, "
            f"stack 2x / 1x = {data['ratio_2x_to_1x']:.2f} (max rps = best goodput of the closed-loop sweep)",
        )
    ]
    rows = [
        [
            name,
            int(c),
            run["throughput_rps"],
            run["goodput_rps"],
            100 * run["degraded_rate"],
            100 * run["error_rate"],
            run["latency_ms"]["p50"],
            run["latency_ms"]["p99"],
            run["latency_ms"]["p99.9"],
        ]
        for name, s in setups.items()
        for c, run in s["closed"].items()
    ]
    tables.append(
        table(
            ["setup", "workers", "rps", "goodput rps", "degraded %", "errors %", "p50 ms", "p99 ms", "p99.9 ms"],
            rows,
            "Closed loop, every cache off: throughput by number of workers",
        )
    )
    rows = []
    for name, s in setups.items():
        for offered, run in s["open"].items():
            latency = run["latency_ms"]
            rows.append(
                [
                    name,
                    float(offered),
                    run["throughput_rps"],
                    latency["p50"],
                    latency["p90"],
                    latency["p99"],
                    latency["p99.9"],
                    100 * run["degraded_rate"],
                    100 * run["error_rate"],
                ]
            )
    tables.append(
        table(
            [
                "setup",
                "offered rps",
                "achieved rps",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "p99.9 ms",
                "degraded %",
                "errors %",
            ],
            rows,
            "Latency at fixed arrival rates (open loop, Poisson arrivals, from the scheduled send time)",
        )
    )
    tables.append(_cpu_table(setups))
    tables.append(_breakdown_table(data))
    profile = data["inprocess"]["profile"]
    tables.append(
        table(
            ["function (in-process, by cumulative time)", "calls/req", "cum ms/req", "self ms/req"],
            [
                [
                    row["function"],
                    row["calls_per_request"],
                    row["cumulative_ms_per_request"],
                    row["self_ms_per_request"],
                ]
                for row in profile["by_cumulative"][:12]
            ],
            f"cProfile of {profile['requests']} in-process requests, one at a time",
        )
    )
    return tables


def _cpu_table(setups: dict[str, dict[str, Any]]) -> str:
    """CPU per request at each setup's best concurrency, summed per tier, and the throughput ceiling it
    implies if every core of the machine did nothing else."""
    cores = os.cpu_count() or 1
    columns = ["gateway", "feature", "recall", "ranking", LOAD_GENERATOR, IN_PROCESS]
    rows = []
    for name, setup in setups.items():
        run = setup["closed"][str(setup["max_rps_concurrency"])]
        by_tier: dict[str, float] = {}
        for process, ms in run["cpu_ms_per_request"].items():
            if process != "total":
                tier = process.rsplit("-", 1)[0] if process[-1:].isdigit() else process
                by_tier[tier] = by_tier.get(tier, 0.0) + ms
        total = run["cpu_ms_per_request"]["total"]
        rows.append(
            [
                name,
                setup["max_rps_concurrency"],
                *(by_tier.get(c) for c in columns),
                total,
                cores * 1000.0 / total,
                run.get("machine_busy_cores"),
            ]
        )
    return table(
        [
            "setup",
            "workers",
            "gateway",
            "feature",
            "recall",
            "ranking",
            "load generator",
            "in-process",
            "total CPU ms",
            f"ceiling rps ({cores} cores)",
            "machine busy cores",
        ],
        rows,
        "CPU per request at the best concurrency (process CPU time / requests; the machine's busy cores "
        "include other tenants)",
    )


def _breakdown_table(data: dict[str, Any]) -> str:
    breakdown = data["stack_1x"]["breakdown"]
    local = data["inprocess"]["sequential_hops_ms"]
    local_total = data["inprocess"]["sequential"]["latency_ms"]["mean"]
    local_tiers = sum(hop["server_ms"] for hop in local.values())
    rows: list[list[Any]] = [
        [
            f"{tier} ({hop['calls_per_request']:.0f} call(s))",
            local[tier]["server_ms"],
            hop["server_ms"],
            hop["gateway_seen_ms"],
            hop["rpc_overhead_ms"],
        ]
        for tier, hop in breakdown["hops"].items()
    ]
    rows += [
        ["gateway own work", local_total - local_tiers, breakdown["gateway_own_ms"], None, None],
        ["gateway handler, all of the above", local_total, None, breakdown["gateway_server_ms"], None],
        ["client ↔ gateway", None, None, None, breakdown["client_to_gateway_ms"]],
        ["total, seen by the client", local_total, None, breakdown["client_ms"], None],
    ]
    return table(
        ["hop", "in-process ms", "stack: handler ms", "stack: seen by caller ms", "stack: RPC/transport ms"],
        rows,
        f"Where one uncached request's time goes (means per request over {breakdown['requests']} "
        "requests sent one at a time; stack 1x figures from /metrics deltas)",
    )


def _plots(ctx: SuiteContext, runs: dict[str, RunResult], data: dict[str, Any]) -> list:
    rate = f"{HEADLINE_RATE:g}"
    cdf = {}
    for label, key in (("inprocess", "inprocess"), ("stack 1x", "stack_1x"), ("stack 2x", "stack_2x")):
        best = data[key]["max_rps_concurrency"]
        cdf[f"{label} closed x{best}"] = runs[f"{label} closed x{best}"].latencies
        cdf[f"{label} open {rate} rps"] = runs[f"{label} open {rate}"].latencies
    curves = {
        name: [
            (run["throughput_rps"], run["latency_ms"]["p50"], run["latency_ms"]["p99"])
            for run in data[key]["open"].values()
        ]
        for name, key in (("in-process", "inprocess"), ("stack 1x", "stack_1x"), ("stack 2x", "stack_2x"))
    }
    return [
        plots.latency_cdf(
            ctx.out / "stack_latency_cdf.png",
            cdf,
            f"Uncached latency: closed loop at the best concurrency, open loop at {rate} rps",
        ),
        plots.throughput_latency(
            ctx.out / "stack_throughput_latency.png",
            curves,
            "Open-loop sweep: latency vs achieved throughput (caches off)",
        ),
    ]


async def run(ctx: SuiteContext) -> SuiteReport:
    artifacts = ctx.require_artifacts("stack")
    users = users_from_bundle(artifacts)
    runs: dict[str, RunResult] = {}
    data: dict[str, Any] = {
        "settings": {
            "bundle": Bundle(artifacts).version,
            "users": len(users),
            "k": K,
            "zipf": 0.0,
            "protocol": ctx.protocol,
            "concurrency": list(ctx.scale.concurrency),
            "duration_s": ctx.scale.duration,
            "rates": list(ctx.scale.rates),
            "caches": "off",
        },
    }
    ctx.say("  in-process pipeline")
    data["inprocess"] = await _inprocess(ctx, users, runs)
    ctx.say("  stack, 1 replica per tier")
    data["stack_1x"] = await _stack(ctx, 1, users, runs)
    ctx.say("  stack, 2 replicas per tier")
    data["stack_2x"] = await _stack(ctx, 2, users, runs)
    data["ratio_stack_to_inprocess"] = data["stack_1x"]["max_rps"] / data["inprocess"]["max_rps"]
    data["ratio_stack_to_inprocess_any"] = data["stack_1x"]["max_rps_any"] / data["inprocess"]["max_rps_any"]
    data["ratio_2x_to_1x"] = data["stack_2x"]["max_rps"] / data["stack_1x"]["max_rps"]
    return SuiteReport("stack", data, _tables(data), _plots(ctx, runs, data))
