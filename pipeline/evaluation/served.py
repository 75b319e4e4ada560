"""The served list fetched over HTTP from a running gateway, the way clients get it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from tqdm.auto import tqdm

from wren.core.served import ServedLists, ServedListSource


async def _served_over_http(target: str, user_ids: list[int], k: int, concurrency: int, progress: bool) -> ServedLists:
    import aiohttp

    limit = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(user_ids), desc="served lists (HTTP)", unit="user", leave=False, disable=not progress)

    async def fetch(session: aiohttp.ClientSession, user_id: int) -> tuple[int, np.ndarray, bool]:
        async with limit:
            url = f"{target.rstrip('/')}/v1/recommendations?{urlencode({'user_id': user_id, 'k': k})}"
            async with session.get(url, headers={"X-Request-Timeout-Ms": "30000"}) as response:
                body = json.loads(await response.text())
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}: {body}")
        bar.update()
        return user_id, np.array([item["item_id"] for item in body["items"]], np.int64), bool(body["degraded"])

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            answers = await asyncio.gather(*(fetch(session, u) for u in user_ids))
    finally:
        bar.close()
    return ServedLists({user: ids for user, ids, _ in answers}, sum(degraded for *_, degraded in answers), target)


def served_lists_http(
    target: str, user_ids: Iterable[int], k: int, concurrency: int = 8, progress: bool = False
) -> ServedLists:
    """Each user's top-k from `GET {target}/v1/recommendations` (a gateway serving the evaluation state:
    `wren up --user-state evaluation`), asked with a 30 s budget; answers that are degraded anyway (a tier's
    per-attempt timeout) are counted."""
    return asyncio.run(_served_over_http(target, sorted(int(u) for u in user_ids), k, concurrency, progress))


def http_source(target: str, concurrency: int = 8) -> ServedListSource:
    """A ServedListSource that asks the gateway at `target` (its bundle is whatever it serves)."""

    def fetch(bundle_dir: Path, user_ids: Iterable[int], k: int, progress: bool = False) -> ServedLists:
        return served_lists_http(target, user_ids, k, concurrency, progress)

    return fetch
