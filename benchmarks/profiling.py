"""cProfile of the in-process pipeline: which functions one uncached request spends its time in."""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path
from typing import Any

from benchmarks.targets import Target
from benchmarks.users import UserSampler

ROOT = Path(__file__).resolve().parents[1]


def _where(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    path = Path(filename)
    try:
        filename = str(path.resolve().relative_to(ROOT))
    except ValueError:
        filename = path.name if filename != "~" else ""
    return f"{filename}:{line}({function})" if filename else function


async def profile_requests(
    target: Target, users: UserSampler, requests: int, k: int = 10, top: int = 15
) -> dict[str, Any]:
    """Runs `requests` requests one at a time under cProfile (event-loop thread only: work handed to
    threads, like onnxruntime runs in the ranking worker pool, shows up as time waiting in the loop's
    select/poll). Returns the top functions by cumulative time among the project's own code and the
    top functions by self time overall, in milliseconds per request."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for _ in range(requests):
            await target.recommend(users.next(), k)
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [
        {
            "function": _where(key),
            "calls_per_request": calls / requests,
            "self_ms_per_request": 1000.0 * own / requests,
            "cumulative_ms_per_request": 1000.0 * cumulative / requests,
        }
        for key, (_, calls, own, cumulative, _) in stats.items()
    ]
    own_code = [row for row in rows if row["function"].startswith(("services/", "pipeline/", "wren/"))]
    return {
        "requests": requests,
        "total_ms_per_request": 1000.0 * sum(own for _, _, own, _, _ in stats.values()) / requests,
        "by_cumulative": sorted(own_code, key=lambda row: -row["cumulative_ms_per_request"])[:top],
        "by_self": sorted(rows, key=lambda row: -row["self_ms_per_request"])[:top],
    }
