"""Figures of one run computed from its observations: throughput, latency percentiles, error/degraded/cached rates."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from benchmarks.loadgen import DROPPED, RunResult

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


class NoObservations(RuntimeError):
    """A run completed no request at all: there is nothing to report."""


def latency_ms(seconds: np.ndarray) -> dict[str, float]:
    """mean, min, p50, p90, p99, p99.9 and max in milliseconds (numpy linear-interpolated percentiles)."""
    if len(seconds) == 0:
        raise NoObservations("no latencies observed")
    ms = np.asarray(seconds, np.float64) * 1000.0
    figures = {"mean": float(ms.mean()), "min": float(ms.min())}
    figures |= {name: float(np.percentile(ms, q)) for name, q in PERCENTILES.items()}
    figures["max"] = float(ms.max())
    return figures


def ratio(part: float, whole: float) -> float:
    """part / whole, 0.0 when whole is 0 (a rate of something that could not happen)."""
    return float(part) / float(whole) if whole else 0.0


def summarize(result: RunResult) -> dict[str, Any]:
    """The JSON figures of a run. Latency percentiles cover every completed request, failed ones included
    (a timeout is a latency too); throughput counts successful answers per second of the run."""
    completed = len(result.latencies)
    if completed == 0:
        raise NoObservations(f"{result.label}: no request completed")
    ok = result.ok
    n_ok = int(ok.sum())
    degraded = int((result.degraded & ok).sum())
    cached = int((result.cached & ok).sum())
    requests = completed + result.dropped
    codes = Counter(code for code in result.codes if code != "OK")
    if result.dropped:
        codes[DROPPED] += result.dropped
    summary: dict[str, Any] = {
        "label": result.label,
        "mode": result.mode,
        "protocol": result.protocol,
        "zipf": result.zipf,
        "k": result.k,
        "requests": requests,
        "ok": n_ok,
        "errors": requests - n_ok,
        "error_rate": ratio(requests - n_ok, requests),
        "errors_by_code": dict(sorted(codes.items())),
        "degraded": degraded,
        "degraded_rate": ratio(degraded, n_ok),
        "cached_responses": cached,
        "cached_ratio": ratio(cached, n_ok),
        "elapsed_s": result.elapsed,
        "throughput_rps": ratio(n_ok, result.elapsed),
        "goodput_rps": ratio(n_ok - degraded, result.elapsed),
        "latency_ms": latency_ms(result.latencies),
    }
    if result.mode == "closed":
        summary["concurrency"] = result.concurrency
    else:
        summary |= {
            "offered_rps": result.rate,
            "arrival": result.arrival,
            "send_lag_ms": {"mean": float(result.send_lag.mean() * 1000), "max": float(result.send_lag.max() * 1000)},
        }
    return summary


def subset_latency_ms(result: RunResult, mask: np.ndarray) -> dict[str, float] | None:
    """Latency figures of the requests selected by `mask` (e.g. cache hits), None if it selects none."""
    chosen = result.latencies[mask]
    return latency_ms(chosen) if len(chosen) else None
