"""Progress reporting for `wren train`: numbered steps with timings, and tqdm bars for long loops."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


class Steps:
    """Prints `[i/n] title ... 1.2s` for each step of a run to stderr."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.done += 1
        if self.enabled:
            print(f"[{self.done}/{self.total}] {title} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.timings[title] = elapsed
        if self.enabled:
            print(f"[{self.done}/{self.total}] {title} done in {elapsed:.1f}s", file=sys.stderr, flush=True)


def bar(total: int, description: str, enabled: bool = True) -> tqdm:
    return tqdm(total=total, desc=description, leave=False, disable=not enabled, file=sys.stderr, dynamic_ncols=True)
