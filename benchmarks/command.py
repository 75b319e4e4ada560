"""`wren bench`: turns the command line into a load test of a running gateway or a run of suites."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path

from benchmarks.loadtest import LoadTest, run_loadtest
from benchmarks.names import SUITE_NAMES
from benchmarks.suites import SCALES, SuiteContext, expand, run_suites
from benchmarks.users import users_from_bundle, users_from_dataset

DEFAULT_DURATION = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `wren bench` and `python -m benchmarks`."""
    parser.add_argument(
        "--suite",
        choices=[*SUITE_NAMES, "all"],
        default=None,
        help="run a suite (stack, cache and ranking start what they measure from --artifacts; "
        "quality retrains the bundle's configuration on --data with several seeds; ladder "
        "trains on synthetic data of growing size; all = every suite but quality and ladder)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short runs; the index suite skips 1M items (`--suite all --quick` takes < 5 min)",
    )
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="bundle directory or artifacts root: what the suites serve, and whose users are requested",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="directory for <suite>.json / loadtest.json and the PNGs (default: bench-results)",
    )
    parser.add_argument(
        "--target",
        default=None,
        help="HTTP base URL of a running gateway, e.g. http://127.0.0.1:8080 (its /metrics is diffed)",
    )
    parser.add_argument(
        "--grpc",
        default=None,
        help="gRPC address of a running gateway, e.g. 127.0.0.1:50051 (takes the load when given)",
    )
    parser.add_argument(
        "--metrics",
        action="append",
        default=[],
        help="/metrics URL to diff around each run (repeatable; default: TARGET/metrics)",
    )
    parser.add_argument(
        "--mode",
        choices=["closed", "open"],
        default="closed",
        help="closed: --concurrency workers back to back; open: --rate arrivals/s (default closed)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="closed-loop workers (default 16; suites: their own setting)"
    )
    parser.add_argument("--rate", default="100", help="open loop: requests/s, or a sweep like 50,100,200 (default 100)")
    parser.add_argument(
        "--arrival",
        choices=["poisson", "fixed"],
        default="poisson",
        help="open-loop spacing: Poisson arrivals or fixed 1/rate gaps (default poisson)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds per run (default 10 unless --requests; suites: their own setting)",
    )
    parser.add_argument("--requests", type=int, default=None, help="stop a run after this many requests")
    parser.add_argument(
        "--zipf",
        type=float,
        default=0.0,
        help="user popularity skew: rank r drawn with weight 1/r^s (default 0 = uniform)",
    )
    parser.add_argument("--k", type=int, default=10, help="recommendations per request (default 10)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("data/ml-latest-small"),
        help="dataset whose users are requested when --artifacts is not given, and that the "
        "quality suite retrains on (default data/ml-latest-small)",
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of unmeasured load first (default 1)")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds (default 5)")
    parser.add_argument(
        "--protocol",
        choices=["grpc", "http"],
        default="grpc",
        help="how the stack and cache suites reach the gateway (default grpc)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for user draws and arrival times (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or phase messages")


def parse_rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--rate must be requests/s or a comma-separated list of them, got {text!r}") from None
    if not rates or any(rate <= 0 for rate in rates):
        raise ValueError(f"--rate needs positive numbers, got {text!r}")
    return rates


def scale_for(args: argparse.Namespace) -> str:
    return "tiny" if args.tiny else "quick" if args.quick else "full"


def suite_context(args: argparse.Namespace) -> SuiteContext:
    scale = SCALES[scale_for(args)]
    if args.concurrency is not None:
        scale = dataclasses.replace(scale, concurrency=(args.concurrency,), cache_concurrency=args.concurrency)
    if args.duration is not None:
        scale = dataclasses.replace(scale, duration=args.duration)
    return SuiteContext(
        scale=scale,
        out=args.out,
        artifacts=args.artifacts,
        data=args.data,
        protocol=args.protocol,
        progress=not args.no_progress,
        seed=args.seed,
    )


def load_test(args: argparse.Namespace) -> LoadTest:
    users = users_from_bundle(args.artifacts) if args.artifacts else users_from_dataset(args.data)
    duration = args.duration if args.duration is not None else (None if args.requests else DEFAULT_DURATION)
    return LoadTest(
        users=users,
        out=args.out,
        http=args.target,
        grpc=args.grpc,
        metrics=list(args.metrics),
        mode=args.mode,
        concurrency=args.concurrency or 16,
        rates=parse_rates(args.rate),
        arrival=args.arrival,
        duration=duration,
        requests=args.requests,
        zipf=args.zipf,
        k=args.k,
        warmup=args.warmup,
        timeout=args.timeout,
        seed=args.seed,
        progress=not args.no_progress,
    )


def run(args: argparse.Namespace) -> int:
    if args.suite:
        asyncio.run(run_suites(expand(args.suite), suite_context(args)))
        return 0
    if not (args.target or args.grpc):
        raise ValueError("give --suite NAME, or --target http://HOST:PORT / --grpc HOST:PORT to load a running gateway")
    asyncio.run(run_loadtest(load_test(args)))
    return 0
