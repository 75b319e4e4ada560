"""Helpers the stack and cache suites share: a target for a stack and a run bracketed by /metrics scrapes."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from benchmarks.cpu import CpuMeter, cpu_per_request
from benchmarks.loadgen import RunResult
from benchmarks.scrape import Samples, delta, snapshot
from benchmarks.stacks import grpc_address, http_url
from benchmarks.stats import summarize
from benchmarks.targets import GrpcTarget, HttpTarget, Target
from services.stack import LocalStack

REQUEST_TIMEOUT = 5.0


def stack_target(stack: LocalStack, protocol: str, connections: int = 64) -> Target:
    if protocol == "http":
        return HttpTarget(http_url(stack), REQUEST_TIMEOUT, connections)
    return GrpcTarget(grpc_address(stack), REQUEST_TIMEOUT)


async def with_metrics(urls: dict[str, str], run: Awaitable[Any]) -> tuple[Any, dict[str, Samples]]:
    """Awaits `run` between two scrapes of `urls`; returns its result and the metrics' delta."""
    before = await snapshot(urls)
    result = await run
    after = await snapshot(urls)
    return result, delta(before, after)


async def measured(
    urls: dict[str, str], run: Awaitable[RunResult], own_label: str = "load generator"
) -> tuple[RunResult, dict[str, Any], dict[str, Samples]]:
    """Runs a load between /metrics scrapes and CPU readings; returns the raw result, its summary with
    `cpu_ms_per_request` (per process, from the deltas) and `machine_busy_cores` (everything running on
    the machine, other tenants included), and the metrics' delta."""
    before = await snapshot(urls)
    meter = CpuMeter()
    result = await run
    cpu = meter.stop()
    deltas = delta(before, await snapshot(urls))
    summary = summarize(result)
    summary["cpu_ms_per_request"] = cpu_per_request(deltas, cpu["own_cpu_s"], len(result.latencies), own_label)
    if "machine_busy_cores" in cpu:
        summary["machine_busy_cores"] = cpu["machine_busy_cores"]
    return result, summary, deltas
