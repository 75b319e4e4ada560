"""Progress reporting for `wren train`: numbered steps with their time and peak memory, and tqdm bars."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from tqdm import tqdm

MB = 1024 * 1024


class PeakMemory:
    """Samples this process's resident memory every `interval` seconds on a daemon thread; `peak` is the
    highest reading since the last `reset()` (a step's allocations that live shorter than the interval
    can be missed, so read it as a floor)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self._process = psutil.Process()
        self._peak = self._rss()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = self._rss()
            with self._lock:
                self._peak = max(self._peak, rss)

    @property
    def peak(self) -> int:
        rss = self._rss()
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak

    def reset(self) -> None:
        with self._lock:
            self._peak = self._rss()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class Steps:
    """Prints `[i/n] title ... done in 1.2s, peak 0.4 GB` for each step of a run to stderr and keeps, per step
    title, its seconds (`timings`) and its peak resident memory in MB (`peak_mb`)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.timings: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self._memory: PeakMemory | None = None

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.done += 1
        if self._memory is None:
            self._memory = PeakMemory()
        self._memory.reset()
        if self.enabled:
            print(f"[{self.done}/{self.total}] {title} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.timings[title] = elapsed
        self.peak_mb[title] = self._memory.peak / MB
        if self.enabled:
            peak = self.peak_mb[title] / 1024
            print(
                f"[{self.done}/{self.total}] {title} done in {elapsed:.1f}s, peak {peak:.2f} GB",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
            self._memory = None


def bar(total: int, description: str, enabled: bool = True) -> tqdm:
    return tqdm(total=total, desc=description, leave=False, disable=not enabled, file=sys.stderr, dynamic_ncols=True)
