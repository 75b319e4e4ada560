"""The load generator: closed loop (N workers back to back) and open loop (arrivals on a fixed schedule).

Every request's latency is recorded. In the open loop it is measured from the request's *scheduled* send
time, so time spent waiting for a late dispatcher or for the server shows as latency instead of silently
lowering the offered rate (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks.targets import Outcome, Target
from benchmarks.users import UserSampler

DROPPED = "DROPPED"  # open loop: not sent because max_outstanding requests were already in flight


@dataclass
class RunResult:
    """Raw observations of one run; `latencies` (seconds) has one entry per completed request."""

    label: str
    mode: str  # "closed" | "open"
    protocol: str
    k: int
    zipf: float
    concurrency: int = 0
    rate: float = 0.0  # offered requests/s (open loop)
    arrival: str = ""  # "poisson" | "fixed" (open loop)
    elapsed: float = 0.0  # seconds from the first send (or scheduled send) to the last completion
    latencies: np.ndarray = field(default_factory=lambda: np.empty(0))
    codes: list[str] = field(default_factory=list)
    degraded: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    cached: np.ndarray = field(default_factory=lambda: np.empty(0, bool))
    dropped: int = 0
    send_lag: np.ndarray = field(default_factory=lambda: np.empty(0))  # open loop: actual - scheduled send

    @property
    def ok(self) -> np.ndarray:
        return np.array([code == "OK" for code in self.codes], bool)


class _Recorder:
    def __init__(self, bar: object | None) -> None:
        self.latencies: list[float] = []
        self.codes: list[str] = []
        self.degraded: list[bool] = []
        self.cached: list[bool] = []
        self.bar = bar

    def add(self, latency: float, outcome: Outcome) -> None:
        self.latencies.append(latency)
        self.codes.append(outcome.code)
        self.degraded.append(outcome.degraded)
        self.cached.append(outcome.cached)
        if self.bar is not None:
            self.bar.update(1)  # type: ignore[attr-defined]

    def fill(self, result: RunResult) -> RunResult:
        result.latencies = np.asarray(self.latencies, np.float64)
        result.codes = self.codes
        result.degraded = np.asarray(self.degraded, bool)
        result.cached = np.asarray(self.cached, bool)
        if self.bar is not None:
            self.bar.close()  # type: ignore[attr-defined]
        return result


def _bar(label: str, total: int | None, enabled: bool) -> object | None:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="req", file=sys.stderr, leave=False, mininterval=0.5, dynamic_ncols=True)


async def _call(target: Target, user_id: int, k: int) -> Outcome:
    try:
        return await target.recommend(user_id, k)
    except Exception as error:  # a failed request is an observation, not a crash
        return Outcome(type(error).__name__)


def _check_bounds(duration: float | None, requests: int | None) -> None:
    if duration is None and requests is None:
        raise ValueError("a run needs a duration, a request count, or both")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be > 0, got {duration}")
    if requests is not None and requests < 1:
        raise ValueError(f"requests must be >= 1, got {requests}")


async def closed_loop(
    target: Target,
    users: UserSampler,
    *,
    concurrency: int,
    duration: float | None = None,
    requests: int | None = None,
    k: int = 10,
    label: str = "closed",
    progress: bool = False,
) -> RunResult:
    """`concurrency` workers each send a request as soon as their previous one is answered, until
    `duration` seconds have passed or `requests` have been sent (whichever comes first)."""
    _check_bounds(duration, requests)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    recorder = _Recorder(_bar(label, requests, progress))
    started = time.perf_counter()
    stop_at = started + duration if duration is not None else math.inf
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while (requests is None or sent < requests) and time.perf_counter() < stop_at:
            sent += 1
            user = users.next()
            begin = time.perf_counter()
            outcome = await _call(target, user, k)
            recorder.add(time.perf_counter() - begin, outcome)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result = RunResult(
        label, "closed", target.protocol, k, users.s, concurrency=concurrency, elapsed=time.perf_counter() - started
    )
    return recorder.fill(result)


def send_offsets(rate: float, arrival: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Seconds from the start to each of `size` sends, the first at 0: exponential gaps (Poisson arrivals)
    or i / rate."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if arrival == "poisson":
        return np.concatenate([[0.0], np.cumsum(rng.exponential(1.0 / rate, size - 1))])
    if arrival == "fixed":
        return np.arange(size) / rate
    raise ValueError(f"arrival must be 'poisson' or 'fixed', got {arrival!r}")


async def open_loop(
    target: Target,
    users: UserSampler,
    *,
    rate: float,
    duration: float | None = None,
    requests: int | None = None,
    arrival: str = "poisson",
    k: int = 10,
    seed: int = 0,
    max_outstanding: int = 10_000,
    label: str = "open",
    progress: bool = False,
) -> RunResult:
    """Sends at `rate` requests/s on a precomputed schedule, whatever the answers do, for `duration`
    seconds of schedule or `requests` sends. Latency = completion - scheduled send time."""
    _check_bounds(duration, requests)
    count = requests if requests is not None else math.ceil(rate * duration) + 1  # type: ignore[operator]
    offsets = send_offsets(rate, arrival, np.random.default_rng(seed), count)
    if duration is not None:
        offsets = offsets[offsets < duration]
    recorder = _Recorder(_bar(label, len(offsets), progress))
    lags: list[float] = []
    pending: set[asyncio.Task[None]] = set()
    dropped = 0

    async def one(scheduled: float, user: int) -> None:
        outcome = await _call(target, user, k)
        recorder.add(time.perf_counter() - scheduled, outcome)

    started = time.perf_counter()
    for offset in offsets:
        scheduled = started + float(offset)
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(time.perf_counter() - scheduled)
        if len(pending) >= max_outstanding:
            dropped += 1
            continue
        task = asyncio.create_task(one(scheduled, users.next()))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    result = RunResult(
        label,
        "open",
        target.protocol,
        k,
        users.s,
        rate=rate,
        arrival=arrival,
        elapsed=time.perf_counter() - started,
        dropped=dropped,
        send_lag=np.asarray(lags),
    )
    return recorder.fill(result)
