"""The served list, fetched the way clients get it: through the serving code in this process, or over HTTP
from a running gateway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from tqdm.auto import tqdm

from services.inprocess import build_pipeline


@dataclass(frozen=True)
class ServedLists:
    """Each user's served top-k (item ids, best first) and how many answers said they were degraded."""

    lists: dict[int, np.ndarray]
    degraded: int


async def _served_in_process(bundle_dir: Path, user_ids: list[int], k: int, progress: bool) -> ServedLists:
    pipeline = await build_pipeline(bundle_dir, user_state="evaluation")
    try:
        lists, degraded = {}, 0
        for user_id in tqdm(user_ids, desc="served lists", unit="user", leave=False, disable=not progress):
            answer = await pipeline.recommender.recommend(int(user_id), k, timeout=30.0)
            lists[int(user_id)] = np.array([item.item_id for item in answer.items], np.int64)
            degraded += answer.degraded
        return ServedLists(lists, degraded)
    finally:
        pipeline.close()


def served_lists(bundle_dir: Path, user_ids: Iterable[int], k: int, progress: bool = False) -> ServedLists:
    """Each user's top-k as the gateway core serves it from the bundle's evaluation user state: feature,
    recall and ranking servicers and the gateway's re-rank, with every cache off."""
    return asyncio.run(_served_in_process(Path(bundle_dir), sorted(int(u) for u in user_ids), k, progress))


async def _served_over_http(target: str, user_ids: list[int], k: int, concurrency: int,
                            progress: bool) -> ServedLists:
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
    return ServedLists({user: ids for user, ids, _ in answers}, sum(degraded for *_, degraded in answers))


def served_lists_http(target: str, user_ids: Iterable[int], k: int, concurrency: int = 8,
                      progress: bool = False) -> ServedLists:
    """Each user's top-k from `GET {target}/v1/recommendations` (a gateway serving the evaluation state:
    `wren up --user-state evaluation`), asked with a 30 s budget; answers that are degraded anyway (a tier's
    per-attempt timeout) are counted."""
    return asyncio.run(_served_over_http(target, sorted(int(u) for u in user_ids), k, concurrency, progress))
