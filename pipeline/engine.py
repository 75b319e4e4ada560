"""Where a run's heavy, independent parts execute: here, one after another, or as tasks on a Ray cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
ENGINES = ("local", "ray")


class Engine(Protocol):
    """Runs `fn(*args)` for each args tuple and returns the results in order. `put` hands a large argument
    to the engine once (a Ray object reference, or the object itself) so that several calls share it."""

    name: str

    @property
    def parallelism(self) -> int:
        """Calls that run at once."""
        ...

    def map(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> list[T]: ...

    def put(self, value: Any) -> Any: ...


class LocalEngine:
    """Every call in this process, in order: what `wren train` does by default."""

    name = "local"
    parallelism = 1

    def map(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> list[T]:
        return [fn(*args) for args in calls]

    def put(self, value: Any) -> Any:
        return value


class RayEngine:
    """Each call a Ray task of `cpus_per_task` CPUs. `address`: a running cluster ("auto", "ray://head:10001");
    None starts a local one of `num_cpus` CPUs for this process (what the tests use). Ray does the scheduling,
    retries and data movement; the results equal the local engine's, since every call is deterministic."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_task: float = 1.0) -> None:
        import ray

        self._ray = ray
        self.cpus_per_task = cpus_per_task
        self.started_here = not ray.is_initialized()
        if self.started_here:
            ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)

    def map(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> list[T]:
        task = self._ray.remote(num_cpus=self.cpus_per_task, max_retries=2)(fn)
        return list(self._ray.get([task.remote(*args) for args in calls]))

    @property
    def parallelism(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1) // self.cpus_per_task))

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def close(self) -> None:
        """Stops the local cluster this engine started (a cluster it joined keeps running)."""
        if self.started_here and self._ray.is_initialized():
            self._ray.shutdown()


def make_engine(name: str, address: str | None = None) -> Engine:
    """The engine `wren train --engine NAME [--ray-address ADDRESS]` asks for."""
    if name == "local":
        return LocalEngine()
    if name == "ray":
        return RayEngine(address)
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")
