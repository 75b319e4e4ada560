"""`wren bench`: turns the command line into a load test of a running gateway or a run of suites."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from wren.bench.loadtest import LoadTest, run_loadtest
from wren.bench.suites import SCALES, SuiteContext, expand, run_suites
from wren.bench.users import users_from_bundle, users_from_dataset

DEFAULT_DURATION = 10.0


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
    overrides: dict[str, object] = {}
    if args.concurrency is not None:
        overrides |= {"concurrency": (args.concurrency,), "cache_concurrency": args.concurrency}
    if args.duration is not None:
        overrides["duration"] = args.duration
    if overrides:
        scale = dataclasses.replace(scale, **overrides)
    return SuiteContext(scale=scale, out=args.out, artifacts=args.artifacts, data=args.data, protocol=args.protocol,
                        progress=not args.no_progress, seed=args.seed)


def load_test(args: argparse.Namespace) -> LoadTest:
    users = users_from_bundle(args.artifacts) if args.artifacts else users_from_dataset(args.data)
    duration = args.duration if args.duration is not None else (None if args.requests else DEFAULT_DURATION)
    return LoadTest(users=users, out=args.out, http=args.target, grpc=args.grpc, metrics=list(args.metrics),
                    mode=args.mode, concurrency=args.concurrency or 16, rates=parse_rates(args.rate),
                    arrival=args.arrival, duration=duration, requests=args.requests, zipf=args.zipf, k=args.k,
                    warmup=args.warmup, timeout=args.timeout, seed=args.seed, progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    if args.suite:
        asyncio.run(run_suites(expand(args.suite), suite_context(args)))
        return 0
    if not (args.target or args.grpc):
        raise ValueError("give --suite NAME, or --target http://HOST:PORT / --grpc HOST:PORT to load a running gateway")
    asyncio.run(run_loadtest(load_test(args)))
    return 0

