"""The in-process pipeline: the gateway's Recommender over the three tiers' servicers, in one process, no RPC.

Each tier is built from the bundle exactly as its `start()` builds it (same core classes, same settings
read from WREN_* variables), and the Recommender gets `DirectTier` stand-ins for its TierClients whose
`call` awaits the servicer method with the very protobuf request it would have sent. Compared with the
stack, only the RPCs and the process boundaries are missing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from services.common.caches import MeteredCache, UserKeyedCache
from services.common.config import load_settings
from services.common.threads import limit_blas_threads
from services.feature.catalogue_core import CatalogueCore
from services.feature.core import FeatureCore
from services.feature.main import FeatureSettings, build_store
from services.feature.servicer import FeatureServicer
from services.gateway.context import RequestContext
from services.gateway.errors import UpstreamError
from services.gateway.main import GatewaySettings, load_bundle
from services.gateway.recommender import Recommender, RecommenderConfig
from services.gateway.upstream import Routed
from services.ranking.main import RankingSettings
from services.ranking.ranker import Ranker
from services.ranking.servicer import RankingServicer
from services.recall.core import RecallCore
from services.recall.main import RecallSettings
from services.recall.servicer import RecallServicer
from wren.core.bundle import Bundle
from wren.core.errors import WrenError
from wren.core.recall.recaller import Recaller
from wren.core.served import ServedLists

UNCACHED = {
    "feature": {"user_cache_ttl_seconds": 0},
    "recall": {"cache_ttl_seconds": 0},
    "gateway": {"results_cache_ttl_seconds": 0, "coldstart_cache_ttl_seconds": 0},
}


class DirectTier:
    """Stands in for a TierClient: `call` runs the servicer method in this process and times it."""

    def __init__(self, tier: str, servicer: Any) -> None:
        self.tier = tier
        self.servicer = servicer
        self.seconds = 0.0
        self.calls = 0

    async def call(
        self,
        method: str,
        request: Any,
        context: RequestContext,
        *,
        deadline: float | None = None,
        attempt_timeout: float | None = None,
    ) -> Routed:
        started = time.perf_counter()
        try:
            response = await getattr(self.servicer, method)(request, None)
        except WrenError as error:  # what the tier's interceptor would turn into a status
            raise UpstreamError(self.tier, error.code, str(error)) from None
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1
        return Routed(response, f"inprocess/{self.tier}")

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


@dataclass
class InProcessPipeline:
    recommender: Recommender
    tiers: dict[str, DirectTier]
    ranker: Ranker
    blas: Any = None  # the BLAS thread limit in force while the pipeline exists

    def reset_timers(self) -> None:
        for tier in self.tiers.values():
            tier.reset()

    def hops_ms(self, requests: int) -> dict[str, dict[str, float]]:
        """Mean time per request spent in each tier's servicer since the last reset."""
        return {
            name: {"calls_per_request": tier.calls / requests, "server_ms": 1000.0 * tier.seconds / requests}
            for name, tier in self.tiers.items()
        }

    def close(self) -> None:
        self.ranker.close()
        if self.blas is not None:
            self.blas.restore_original_limits()


async def build_pipeline(
    artifacts: str | Path, *, cached: bool = False, user_state: str = "served"
) -> InProcessPipeline:
    """The three tiers and the gateway core from one bundle; with cached=False every cache is off.
    user_state "evaluation" serves the bundle's training-part user table (see Bundle)."""
    bundle = Bundle(artifacts, user_state)
    path = str(bundle.path)

    def settings(cls: type, tier: str) -> Any:
        uncached = {} if cached else UNCACHED.get(tier, {})
        return load_settings(cls, artifacts=path, user_state=user_state, **uncached)

    feature = settings(FeatureSettings, "feature")
    blas = limit_blas_threads(feature.blas_threads)  # as every tier's `serve` does; undone by close()
    feature_core = FeatureCore(
        await build_store(feature, bundle),
        UserKeyedCache("feature_user", feature.user_cache_size, feature.user_cache_ttl_seconds),
        feature.max_items,
    )
    recall = settings(RecallSettings, "recall")
    recall_core = RecallCore(
        Recaller.from_bundle(bundle, recall.index or None, max_k=recall.max_k),
        UserKeyedCache("recall_candidates", recall.cache_size, recall.cache_ttl_seconds),
        MeteredCache("recall_similar", recall.cache_size, recall.cache_ttl_seconds),
        recall.index or None,
    )
    ranker = await Ranker.load(bundle, settings(RankingSettings, "ranking").ranker_options())
    tiers = {
        "feature": DirectTier("feature", FeatureServicer(feature_core, CatalogueCore(lambda: feature_core.store))),
        "recall": DirectTier("recall", RecallServicer(recall_core)),
        "ranking": DirectTier("ranking", RankingServicer(ranker)),
    }
    gateway = load_settings(
        GatewaySettings,
        artifacts=path,
        user_state=user_state,
        feature_replicas="-",
        recall_replicas="-",
        ranking_replicas="-",
        **({} if cached else UNCACHED["gateway"]),
    )
    recommender = Recommender(
        tiers["feature"],
        tiers["recall"],
        tiers["ranking"],
        load_bundle(bundle, gateway),
        UserKeyedCache("gateway_results", gateway.results_cache_size, gateway.results_cache_ttl_seconds),
        MeteredCache("gateway_coldstart", 1_000, gateway.coldstart_cache_ttl_seconds),
        RecommenderConfig(
            candidates=gateway.candidates,
            budget_seconds=gateway.budget_ms / 1000,
            max_genre_share=gateway.max_genre_share,
        ),
    )
    return InProcessPipeline(recommender, tiers, ranker, blas)


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
    """A ServedListSource: each user's top-k as the gateway core serves it from the bundle's evaluation user
    state (feature, recall and ranking servicers and the gateway's re-rank, with every cache off)."""
    return asyncio.run(_served_in_process(Path(bundle_dir), sorted(int(u) for u in user_ids), k, progress))
