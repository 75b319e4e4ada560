"""Recommender: the gateway's orchestration core — features, recall, ranking, re-rank.

It knows the tiers only through TierClients (routing, failover) and works on the domain types of wren.core.types
(conversion at the edge, services.common.convert); it never sees HTTP or the gateway's own gRPC service. Item
titles and genres come from the gateway's own bundle (GatewayBundle), as do the fallbacks.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from services.common.caches import MISSING, MeteredCache, UserKeyedCache
from services.common.convert import (
    candidates_from_proto,
    event_to_proto,
    profile_from_proto,
    profile_to_proto,
    rank_request_to_proto,
    rank_result_from_proto,
)
from services.common.metrics import DEGRADED
from services.common.validation import check_id, check_k
from services.gateway.context import RequestContext
from services.gateway.errors import UpstreamError, raise_client_errors
from services.gateway.fallback import FALLBACK_GENRE, FALLBACK_POPULAR
from services.gateway.results import Pool, Recommendations, RecommendedItem, ranked_order
from services.gateway.served_bundle import GatewayBundle
from services.gateway.upstream import TierCaller, deadline_after
from wren.core.arrays import rank_scores
from wren.core.errors import InvalidArgument, NotFound, Unavailable
from wren.core.rerank import MAX_GENRE_SHARE, diversify, unseen
from wren.core.types import Candidates, Event, RankResult, UserProfile
from wren.v1 import feature_pb2, recall_pb2

log = logging.getLogger(__name__)
MAX_K = 500
DEFAULT_K = 10
Broadcast = Callable[[int, int], Awaitable[None]]  # (user id, item id) of a stored event, to the other gateways


@dataclass(frozen=True)
class RecommenderConfig:
    candidates: int = 300  # asked from recall, scored by ranking
    budget_seconds: float = 0.25  # default per-request deadline when the caller sets none
    ranking_reserve_seconds: float = 0.005  # kept back from the ranking hop for re-rank and reply
    max_genre_share: float = MAX_GENRE_SHARE  # see wren.core.rerank
    remembered_users: int = 100_000  # users whose relayed events this gateway remembers (see Recommender)
    remembered_items: int = 1_000  # newest items remembered per user


class Recommender:
    """Cache keys: (k, bundle version, the user's A/B variant), both from the gateway's own bundle, so lists
    age out when a new bundle is published and users of different variants never share a cold-start list.
    The results cache is per gateway replica; events invalidate it here and, with Redis, on every replica
    (services.gateway.invalidation).

    Candidates ranking's bundle does not know (recall and ranking on different bundles during a rollout) are
    kept, ranked after every known candidate in recall order, with no rank score."""

    def __init__(
        self,
        feature: TierCaller,
        recall: TierCaller,
        ranking: TierCaller,
        bundle: GatewayBundle,
        results: UserKeyedCache,
        cold_lists: MeteredCache,
        config: RecommenderConfig = RecommenderConfig(),
        broadcast: Broadcast | None = None,
    ) -> None:
        self.feature, self.recall, self.ranking = feature, recall, ranking
        self.broadcast = broadcast
        self.bundle = bundle
        self.results = results
        self.cold_lists = cold_lists
        self.config = config
        # Items of events this gateway relayed, per user: excluded from every list even when the feature
        # tier is down or has not applied the event yet (bounded: LRU over users, newest items per user).
        self.relayed: LRUCache[int, dict[int, None]] = LRUCache(config.remembered_users)

    def reload(self, bundle: GatewayBundle) -> None:
        """Switches to a new bundle (one assignment: a request reads `self.bundle` once and finishes on it).
        Cached lists of the old bundle are no longer hit; they age out with the caches' TTL."""
        self.bundle = bundle

    def deadline(self, timeout: float | None) -> float:
        return deadline_after(self.config.budget_seconds, timeout)

    async def recommend(self, user_id: int, k: int = DEFAULT_K, timeout: float | None = None) -> Recommendations:
        check_id(user_id, "user_id")
        k = check_k(k, MAX_K)
        served = self.bundle
        key = (k, served.version, served.variant(user_id))
        cached = self.results.get(user_id, key)
        if cached is not MISSING:
            return cached.from_cache(user_id)

        context = RequestContext.begin(str(user_id), self.deadline(timeout))
        user = await self._user(context, user_id, served)
        cold_key = (user.segment, *key)
        if not user.known and not context.degraded:
            cold = self.cold_lists.get(cold_key)
            if cold is not MISSING:
                return cold.from_cache(user_id)

        pool = await self._candidates(context, user, served)
        rank = await self._rank(context, user, pool.candidates) if len(pool.candidates) else None
        result = self._assemble(context, user, k, pool, rank, served)
        if not result.degraded:
            self.results.put(user_id, key, result)
            if not user.known:
                self.cold_lists.put(cold_key, result)
        for reason in context.reasons:
            DEGRADED.labels(reason).inc()
        return result

    async def _user(self, context: RequestContext, user_id: int, served: GatewayBundle) -> UserProfile:
        request = feature_pb2.GetUserFeaturesRequest(user_id=user_id)
        try:
            routed = await self.feature.call("GetUserFeatures", request, context)
        except UpstreamError as error:
            raise_client_errors(error)
            context.degrade("features_unavailable")
            return served.catalog.cold_profile(user_id, self._seen(user_id, served.catalog.rated(user_id)))
        context.served("feature", routed.replica)
        return profile_from_proto(routed.response)

    async def _candidates(self, context: RequestContext, user: UserProfile, served: GatewayBundle) -> Pool:
        request = recall_pb2.RecallRequest(user=profile_to_proto(user), k=self.config.candidates)
        try:
            routed = await self.recall.call("Recall", request, context)
        except UpstreamError as error:
            raise_client_errors(error)
            return self._popular(context, user, served)
        try:
            candidates = candidates_from_proto(routed.response)
        except InvalidArgument as error:
            log.warning("recall replica %s sent a malformed reply: %s", routed.replica, error)
            return self._popular(context, user, served)
        context.served("recall", routed.replica)
        return Pool(candidates)

    def _popular(self, context: RequestContext, user: UserProfile, served: GatewayBundle) -> Pool:
        """The recall fallback: the user's segment's popular list, minus what they have seen."""
        context.degrade("recall_unavailable")
        seen = self._seen(user.user_id, user.rated_items)
        return Pool(served.catalog.popular_candidates(user.segment, seen, self.config.candidates), FALLBACK_POPULAR)

    async def _rank(self, context: RequestContext, user: UserProfile, candidates: Candidates) -> RankResult | None:
        request = rank_request_to_proto(user, candidates.item_ids, candidates.recall_features)
        deadline = context.deadline - self.config.ranking_reserve_seconds
        try:
            routed = await self.ranking.call("Rank", request, context, deadline=deadline)
        except UpstreamError as error:
            context.degrade("ranking_timeout" if error.code == "DEADLINE_EXCEEDED" else "ranking_unavailable")
            return None
        try:
            result = rank_result_from_proto(routed.response, len(candidates))
        except InvalidArgument as error:
            log.warning("ranking replica %s sent a malformed reply: %s", routed.replica, error)
            context.degrade("ranking_unavailable")
            return None
        context.served("ranking", routed.replica)
        return result

    def _assemble(
        self,
        context: RequestContext,
        user: UserProfile,
        k: int,
        pool: Pool,
        rank: RankResult | None,
        served: GatewayBundle,
    ) -> Recommendations:
        candidates = pool.candidates
        ids, recall_scores = candidates.item_ids, candidates.scores
        keep = unseen(ids, self._seen(user.user_id, user.rated_items))
        ranked = ranked_order(recall_scores, rank)
        order = ranked[keep[ranked]].tolist()
        catalog = served.catalog
        rows = catalog.rows(ids)
        genres = [catalog.genres[row] for row in rows]
        items = []
        for i in diversify(order, genres, k, self.config.max_genre_share):
            rank_score = float(rank.scores[i]) if rank is not None and rank.known[i] else None
            recall_score = float(recall_scores[i])
            score = rank_score if rank_score is not None else recall_score
            title, sources = catalog.titles[rows[i]], pool.sources(i)
            items.append(RecommendedItem(int(ids[i]), title, genres[i], score, sources, rank_score, recall_score))
        return Recommendations(
            user_id=user.user_id,
            items=items,
            model_version=rank.model_version if rank is not None else "",
            variant=rank.variant if rank is not None else "",
            degraded=context.degraded,
            degraded_reason=context.degraded_reason,
            served_by=context.served_by,
        )

    async def similar(self, item_id: int, k: int = DEFAULT_K, timeout: float | None = None) -> Recommendations:
        check_id(item_id, "item_id")
        k = check_k(k, MAX_K)
        served = self.bundle
        context = RequestContext.begin(f"item:{item_id}", self.deadline(timeout))
        try:
            routed = await self.recall.call(
                "SimilarItems", recall_pb2.SimilarItemsRequest(item_id=item_id, k=k), context
            )
            context.served("recall", routed.replica)
            ids = np.asarray(routed.response.item_ids, np.int64)
            scores = np.asarray(routed.response.scores, np.float32)
            source = "embedding"
        except UpstreamError as error:
            raise_client_errors(error)
            if not served.catalog.describe(item_id)[0]:
                raise NotFound(f"unknown item {item_id}") from None
            context.degrade("recall_unavailable")
            ids = served.catalog.similar_by_genre(item_id, k)
            scores = rank_scores(len(ids))
            source = FALLBACK_GENRE
        titles, genres = served.catalog.display(ids)
        for reason in context.reasons:
            DEGRADED.labels(reason).inc()
        return Recommendations(
            user_id=0,
            item_id=item_id,
            items=[
                RecommendedItem(int(ids[i]), titles[i], genres[i], float(scores[i]), [source], None, float(scores[i]))
                for i in range(len(ids))
            ],
            degraded=context.degraded,
            degraded_reason=context.degraded_reason,
            served_by=context.served_by,
        )

    def _seen(self, user_id: int, rated: np.ndarray | Sequence[int]) -> np.ndarray:
        """`rated` (the feature tier's, or the bundle's when the feature tier is down) plus the items of events
        this gateway relayed for `user_id`, which the feature tier may not have applied."""
        rated = np.asarray(rated, np.int64)
        relayed = self.relayed.get(user_id)
        return np.concatenate([rated, np.fromiter(relayed, np.int64, len(relayed))]) if relayed else rated

    def _remember(self, user_id: int, item_id: int) -> None:
        items = self.relayed.get(user_id)
        if items is None:
            items = self.relayed[user_id] = {}
        items.pop(item_id, None)
        items[item_id] = None
        while len(items) > self.config.remembered_items:
            del items[next(iter(items))]

    def forget(self, user_id: int, item_id: int) -> None:
        """Another gateway stored an event of `user_id` on `item_id`: this one's lists for the user are stale."""
        self.results.invalidate(user_id)
        self._remember(user_id, item_id)

    async def record_event(self, event: Event, timeout: float | None = None) -> int:
        """Stores `event` through the feature tier (assigning an event_id when it has none); returns the user's
        feature version after it."""
        check_id(event.user_id, "user_id")
        if not event.event_id:
            event = dataclasses.replace(event, event_id=uuid.uuid4().hex)
        context = RequestContext.begin(str(event.user_id), self.deadline(timeout))
        try:
            routed = await self.feature.call("RecordEvent", event_to_proto(event), context)
        except UpstreamError as error:
            raise_client_errors(error)
            raise Unavailable(f"the event could not be stored: {error.message}") from None
        finally:
            self.results.invalidate(event.user_id)
        self._remember(event.user_id, event.item_id)
        if self.broadcast is not None:
            await self.broadcast(event.user_id, event.item_id)
        return routed.response.user_version
