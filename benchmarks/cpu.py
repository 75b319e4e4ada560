"""CPU accounting around a run: this process's CPU time and how busy the whole machine was (/proc/stat)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the machine since boot; (0, 0) where /proc/stat is unavailable."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


@dataclass
class CpuMeter:
    """Started on creation; `stop()` gives this process's CPU seconds and the machine's busy cores since."""

    _own: float = field(default_factory=time.process_time)
    _wall: float = field(default_factory=time.perf_counter)
    _machine: tuple[int, int] = field(default_factory=_machine_ticks)

    def stop(self) -> dict[str, float]:
        own = time.process_time() - self._own
        wall = time.perf_counter() - self._wall
        busy, total = _machine_ticks()
        figures = {"own_cpu_s": own, "wall_s": wall}
        if total > self._machine[1] and wall > 0:
            figures["machine_busy_cores"] = (busy - self._machine[0]) / TICKS / wall
        return figures


def cpu_per_request(
    deltas: dict[str, dict], own_cpu_s: float, requests: int, own_label: str = "load generator"
) -> dict[str, float]:
    """Milliseconds of CPU per request: each stack process (process_cpu_seconds_total deltas, 10 ms
    resolution), this process under `own_label`, and their total."""
    per = {
        name: 1000.0 * samples.get(("process_cpu_seconds_total", ()), 0.0) / requests
        for name, samples in deltas.items()
    }
    per[own_label] = 1000.0 * own_cpu_s / requests
    per["total"] = sum(per.values())
    return per
