"""Watches an artifacts root and hands each newly published bundle to a callback (hot reload)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.common.metrics import BUNDLE_RELOADS
from wren.core.bundle import CURRENT, Bundle, resolve_bundle_dir
from wren.core.errors import BundleError

log = logging.getLogger(__name__)

OnBundle = Callable[[Bundle], Awaitable[None]]


class BundleWatcher:
    """Polls `<root>/current` every `interval` seconds; when it names a different bundle, loads it and
    awaits `on_bundle(bundle)`. A bundle that fails to load or to apply is logged and counted, and the
    service keeps serving the one it has. Watching a bundle directory (no `current`) does nothing."""

    def __init__(
        self,
        root: str | Path,
        current_version: str,
        on_bundle: OnBundle,
        service: str,
        interval: float = 5.0,
        user_state: str = "served",
    ) -> None:
        self.root = Path(root)
        self.user_state = user_state
        self.version = current_version
        self.on_bundle = on_bundle
        self.service = service
        self.interval = interval
        self._task: asyncio.Task | None = None

    @property
    def watchable(self) -> bool:
        return (self.root / CURRENT).exists() and self.interval > 0

    def start(self) -> None:
        if self.watchable and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.service}-bundle-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check(self) -> bool:
        """One poll; True when a new bundle was applied."""
        try:
            path = resolve_bundle_dir(self.root)
        except BundleError:
            return False
        if path.name == self.version:
            return False
        try:
            bundle = Bundle(path, self.user_state)
            await self.on_bundle(bundle)
        except Exception:  # keep serving the old bundle whatever went wrong
            log.exception("could not switch to bundle %s", path.name)
            BUNDLE_RELOADS.labels(self.service, "failed").inc()
            self.version = path.name  # do not retry a broken bundle every poll
            return False
        log.info("switched to bundle %s", bundle.version)
        BUNDLE_RELOADS.labels(self.service, "ok").inc()
        self.version = bundle.version
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.check()
