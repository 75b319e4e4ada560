"""In-flight accounting of one process: the utilization and busy-time series autoscaling reads."""

from __future__ import annotations

import time

from services.common.metrics import BUSY_SECONDS, CAPACITY, GRPC_IN_FLIGHT, UTILIZATION


class InFlight:
    """Counts requests being handled (gRPC and, at the gateway, HTTP) against the process's capacity.

    wren_utilization = in-flight / capacity right now; wren_busy_seconds_total grows by each request's
    duration, so rate(wren_busy_seconds_total[1m]) / wren_capacity is the average utilization over the
    minute (Little's law) — the smooth signal the HPA scales on.
    """

    def __init__(self, service: str, capacity: int) -> None:
        self.service = service
        self.capacity = max(1, capacity)
        self.count = 0
        self._utilization = UTILIZATION.labels(service)
        self._busy = BUSY_SECONDS.labels(service)
        CAPACITY.labels(service).set(self.capacity)
        self._utilization.set(0)

    def enter(self, method: str) -> float:
        self.count += 1
        GRPC_IN_FLIGHT.labels(self.service, method).inc()
        self._utilization.set(self.count / self.capacity)
        return time.perf_counter()

    def leave(self, method: str, started: float) -> float:
        elapsed = time.perf_counter() - started
        self.count -= 1
        GRPC_IN_FLIGHT.labels(self.service, method).dec()
        self._utilization.set(self.count / self.capacity)
        self._busy.inc(elapsed)
        return elapsed


_TRACKERS: dict[str, InFlight] = {}


def tracker(service: str, capacity: int) -> InFlight:
    """The process's tracker for `service` (shared by its gRPC interceptor and HTTP front)."""
    existing = _TRACKERS.get(service)
    if existing is None or existing.capacity != max(1, capacity):
        existing = _TRACKERS[service] = InFlight(service, capacity)
    return existing
