"""Local stacks for the suites: started from a bundle with `wren up`'s LocalStack, caches on or off."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from services.stack import LocalStack, StackConfig

# Every cache of every tier off (each tier reads only its own variables).
CACHES_OFF = {
    "WREN_RESULTS_CACHE_TTL_SECONDS": "0",  # gateway: whole answers
    "WREN_COLDSTART_CACHE_TTL_SECONDS": "0",  # gateway: cold-start lists per segment
    "WREN_CACHE_TTL_SECONDS": "0",  # recall: candidate and similar-item lists
    "WREN_USER_CACHE_TTL_SECONDS": "0",  # feature: user rows
}


def metrics_urls(stack: LocalStack) -> dict[str, str]:
    """Process name -> its /metrics URL (every tier process and the gateway)."""
    host = stack.config.host
    return {member.name: f"http://{host}:{member.metrics_port}/metrics" for member in stack.members}


def grpc_address(stack: LocalStack) -> str:
    return f"{stack.config.host}:{stack.gateway.port}"


def http_url(stack: LocalStack) -> str:
    return f"http://{stack.config.host}:{stack.gateway.http_port}"


class StackPool:
    """Starts stacks on demand. `shared` stacks (caches off, so they carry no state between runs) are
    reused by every suite of one `wren bench` invocation; `fresh` ones are started for one use and
    stopped after it (a cached stack must start cold). `close` stops whatever is still running."""

    def __init__(self, artifacts: Path, state_root: Path | None = None, verbose: bool = True) -> None:
        self.artifacts = Path(artifacts).resolve()
        self._root = Path(state_root) if state_root else Path(tempfile.mkdtemp(prefix="wren-bench-"))
        self._shared: dict[int, LocalStack] = {}
        self._live: list[LocalStack] = []  # every stack started and not yet stopped
        self._started = 0
        self.verbose = verbose

    async def _start(self, replicas: int, cached: bool) -> LocalStack:
        self._started += 1
        label = f"{replicas}x-{'cached' if cached else 'uncached'}-{self._started}"
        stack = LocalStack(
            StackConfig(
                artifacts=self.artifacts,
                replicas=replicas,
                grpc_port=0,
                http_port=0,
                state_dir=self._root / label,
                grace_seconds=2.0,
                env={} if cached else dict(CACHES_OFF),
            )
        )
        began = time.perf_counter()
        self._live.append(stack)
        try:
            await stack.start()
        except BaseException:
            await self._stop(stack)
            raise
        if self.verbose:
            print(
                f"  started stack {label} ({len(stack.members)} processes) in {time.perf_counter() - began:.1f}s;"
                f" logs in {stack.config.directory / 'logs'}",
                file=sys.stderr,
                flush=True,
            )
        return stack

    async def shared(self, replicas: int) -> LocalStack:
        """The uncached stack with `replicas` per tier, started on first request."""
        if replicas not in self._shared:
            self._shared[replicas] = await self._start(replicas, cached=False)
        return self._shared[replicas]

    @contextlib.asynccontextmanager
    async def fresh(self, replicas: int, cached: bool) -> AsyncIterator[LocalStack]:
        stack = await self._start(replicas, cached)
        try:
            yield stack
        finally:
            await self._stop(stack)

    async def _stop(self, stack: LocalStack) -> None:
        await stack.stop()
        if stack in self._live:
            self._live.remove(stack)

    async def close(self) -> None:
        """Stops every stack still running (graceful: gateway first, then the tiers)."""
        for stack in list(self._live):
            await self._stop(stack)
        self._shared.clear()

    def terminate(self) -> None:
        """SIGTERM to every process still running, without waiting: for an interrupted run, whose event
        loop may be gone (the processes run in their own sessions, so Ctrl-C never reaches them)."""
        for stack in self._live:
            for process in stack.processes.values():
                if process.poll() is None:
                    process.terminate()
        self._live.clear()
        self._shared.clear()
