"""The bench suites, their sizes (full, quick, tiny) and the loop that runs them and writes their results."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.names import ALL, SUITE_NAMES
from benchmarks.report import machine, write_json
from benchmarks.stacks import StackPool

NEEDS_ARTIFACTS = ("stack", "cache", "ranking", "quality")
STACK_SUITES = {"stack", "cache"}


@dataclass(frozen=True)
class Scale:
    """How long and how big each suite runs."""

    name: str
    duration: float  # seconds per load-generator run
    warmup: float  # seconds of unmeasured load before a stack is measured
    sequential: float  # seconds of one-at-a-time requests (per-hop breakdown, unloaded cache-hit latency)
    concurrency: tuple[int, ...]  # closed-loop workers, swept: the stack saturates at a few on 2 cores
    cache_concurrency: int  # closed-loop workers of the cache suite
    rates: tuple[float, ...]  # open-loop offered rates (100 is always among them)
    profile_requests: int  # in-process requests under cProfile
    cache_zipf: tuple[float, ...]
    index_sizes: tuple[int, ...]
    index_queries: int
    index_query_budget: float  # seconds of single queries per backend and size at most
    ef_sweep: tuple[int, ...]
    ranking_batches: tuple[int, ...]
    ranking_iterations: int
    ranking_all_models: bool
    routing_keys: int
    routing_replicas: tuple[int, ...]
    quality_seeds: tuple[int, ...]  # seeds the quality suite trains with, under each protocol
    ladder_ratings: tuple[int, ...]  # data sizes the ladder suite generates and trains on


SCALES = {
    "full": Scale(
        "full",
        duration=15.0,
        warmup=2.0,
        sequential=6.0,
        concurrency=(1, 2, 4, 8, 16, 32),
        cache_concurrency=8,
        rates=(25.0, 50.0, 100.0, 150.0, 200.0, 300.0),
        profile_requests=300,
        cache_zipf=(0.0, 0.8, 1.2),
        index_sizes=(10_000, 100_000, 1_000_000),
        index_queries=1000,
        index_query_budget=60.0,
        ef_sweep=(100, 128, 200, 300, 500),
        ranking_batches=(50, 300, 1000),
        ranking_iterations=300,
        ranking_all_models=True,
        routing_keys=100_000,
        routing_replicas=(2, 3, 4, 5, 6, 7, 8),
        quality_seeds=(1, 2, 3, 4, 5),
        ladder_ratings=(100_000, 1_000_000, 5_000_000, 25_000_000),
    ),
    "quick": Scale(
        "quick",
        duration=4.0,
        warmup=1.0,
        sequential=3.0,
        concurrency=(4, 8, 16),
        cache_concurrency=8,
        rates=(50.0, 100.0, 200.0),
        profile_requests=100,
        cache_zipf=(0.0, 0.8, 1.2),
        index_sizes=(10_000, 100_000),
        index_queries=200,
        index_query_budget=8.0,
        ef_sweep=(100, 200, 500),
        ranking_batches=(50, 300, 1000),
        ranking_iterations=60,
        ranking_all_models=False,
        routing_keys=20_000,
        routing_replicas=(2, 3, 4, 5, 6, 7, 8),
        quality_seeds=(1, 2, 3),
        ladder_ratings=(100_000, 1_000_000),
    ),
    # Smoke-test size for the test suite: every code path, seconds in all; the numbers mean nothing.
    "tiny": Scale(
        "tiny",
        duration=1.0,
        warmup=0.3,
        sequential=0.5,
        concurrency=(2, 4),
        cache_concurrency=4,
        rates=(50.0, 100.0),
        profile_requests=10,
        cache_zipf=(0.0, 0.8, 1.2),
        index_sizes=(1_000, 3_000),
        index_queries=20,
        index_query_budget=2.0,
        ef_sweep=(100, 200),
        ranking_batches=(50, 300, 1000),
        ranking_iterations=5,
        ranking_all_models=False,
        routing_keys=2_000,
        routing_replicas=(2, 3, 4),
        quality_seeds=(1, 2),
        ladder_ratings=(4_000, 8_000),
    ),
}


@dataclass
class SuiteContext:
    scale: Scale
    out: Path
    artifacts: Path | None = None
    data: Path | None = None  # the dataset the quality suite retrains on
    protocol: str = "grpc"  # how the stack suites reach the gateway: grpc | http
    progress: bool = True
    seed: int = 0
    pool: StackPool | None = None

    def require_artifacts(self, suite: str) -> Path:
        if self.artifacts is None:
            raise ValueError(f"suite {suite!r} needs --artifacts: a trained bundle (e.g. `make train`)")
        return self.artifacts

    def require_data(self, suite: str) -> Path:
        if self.data is None:
            raise ValueError(f"suite {suite!r} needs --data: a MovieLens-format dataset directory")
        return self.data

    def stacks(self) -> StackPool:
        if self.pool is None:
            self.pool = StackPool(self.require_artifacts("stack"), self.out / ".stacks", verbose=self.progress)
        return self.pool

    def say(self, message: str) -> None:
        if self.progress:
            print(message, file=sys.stderr, flush=True)


@dataclass
class SuiteReport:
    """What a suite hands back: its JSON figures, the comparison tables it prints, the PNGs it wrote."""

    name: str
    data: dict[str, Any]
    tables: list[str] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)


SuiteRunner = Callable[[SuiteContext], Awaitable[SuiteReport]]


def runner(name: str) -> SuiteRunner:
    if name not in SUITE_NAMES:
        raise ValueError(f"unknown suite {name!r}; choose one of {', '.join(SUITE_NAMES)} or all")
    return importlib.import_module(f"benchmarks.suites.{name}").run


def expand(name: str) -> list[str]:
    """The suites `--suite name` stands for ("all" = the serving suites, ALL)."""
    if name == "all":
        return list(ALL)
    runner(name)  # validates the name
    return [name]


async def run_suites(names: list[str], context: SuiteContext) -> dict[str, SuiteReport]:
    """Runs the suites in order, writes OUT/<suite>.json after each and prints its tables; stops the stacks."""
    missing = [name for name in names if name in NEEDS_ARTIFACTS and context.artifacts is None]
    if missing:
        raise ValueError(f"suite(s) {', '.join(missing)} need --artifacts: a trained bundle (e.g. `make train`)")
    context.out.mkdir(parents=True, exist_ok=True)
    reports: dict[str, SuiteReport] = {}
    began = time.perf_counter()
    try:
        for position, name in enumerate(names):
            context.say(f"== suite {name} ({context.scale.name})")
            started, before = time.perf_counter(), machine()
            report = await runner(name)(context)
            after = machine()
            after["load_average_before"] = before.get("load_average", [])
            report.data = {
                "suite": name,
                "scale": context.scale.name,
                "elapsed_s": time.perf_counter() - started,
                "machine": after,
                **report.data,
            }
            write_json(context.out / f"{name}.json", report.data)
            print("\n\n".join(report.tables) + "\n", flush=True)
            print(
                f"wrote {context.out / f'{name}.json'} and {len(report.plots)} PNG(s) in "
                f"{report.data['elapsed_s']:.0f}s\n",
                flush=True,
            )
            reports[name] = report
            if context.pool is not None and not set(names[position + 1 :]) & STACK_SUITES:
                await context.pool.close()  # the remaining suites start no stack: free the cores
    except BaseException:
        if context.pool is not None:
            context.pool.terminate()
        raise
    finally:
        if context.pool is not None:
            await context.pool.close()
    if len(names) > 1:
        print(f"all {len(names)} suites finished in {time.perf_counter() - began:.0f}s", flush=True)
    return reports
