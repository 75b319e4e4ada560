"""Recommender: the gateway's orchestration core — features, recall, item features, ranking, re-rank.

It knows the tiers only through TierClients (routing, failover) and protobuf messages it mostly passes
along; it never sees HTTP or the gateway's own gRPC service.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from cachetools import LRUCache

from services.common.caches import MISSING, MeteredCache, UserKeyedCache
from services.common.convert import matrix_from_proto, matrix_to_proto
from services.common.metrics import DEGRADED
from services.common.validation import check_id, check_k
from services.gateway.errors import UpstreamError, raise_client_errors
from services.gateway.fallback import FallbackCatalog
from services.gateway.upstream import TierClient, deadline_after
from wren.core.errors import NotFound, Unavailable
from wren.core.rerank import MAX_GENRE_SHARE, diversify, unseen
from wren.v1 import common_pb2, feature_pb2, ranking_pb2, recall_pb2

MAX_K = 500
DEFAULT_K = 10
Broadcast = Callable[[int, int], Awaitable[None]]  # (user id, item id) of a stored event, to the other gateways


@dataclass
class RecommendedItem:
    item_id: int
    title: str
    genres: list[str]
    score: float
    sources: list[str]
    rank_score: float | None
    recall_score: float
    cached: bool = False


@dataclass
class Recommendations:
    """One answer. degraded_reason lists every fallback taken, comma-separated, in request order."""

    user_id: int
    items: list[RecommendedItem]
    model_version: str = ""
    variant: str = ""
    degraded: bool = False
    degraded_reason: str = ""
    served_by: dict[str, str] = field(default_factory=dict)
    item_id: int = 0

    def from_cache(self, user_id: int) -> Recommendations:
        items = [dataclasses.replace(item, cached=True) for item in self.items]
        return dataclasses.replace(self, user_id=user_id, items=items, served_by={"gateway": "cache"})


@dataclass(frozen=True)
class RecommenderConfig:
    candidates: int = 300  # asked from recall, scored by ranking
    budget_seconds: float = 0.25  # default per-request deadline when the caller sets none
    ranking_reserve_seconds: float = 0.005  # kept back from the ranking hop for re-rank and reply
    max_genre_share: float = MAX_GENRE_SHARE  # see wren.core.rerank
    remembered_users: int = 100_000  # users whose relayed events this gateway remembers (see Recommender)
    remembered_items: int = 1_000  # newest items remembered per user


class Recommender:
    def __init__(
        self,
        feature: TierClient,
        recall: TierClient,
        ranking: TierClient,
        fallback: FallbackCatalog,
        results: UserKeyedCache,
        cold_lists: MeteredCache,
        config: RecommenderConfig = RecommenderConfig(),
        broadcast: Broadcast | None = None,
    ) -> None:
        self.feature, self.recall, self.ranking = feature, recall, ranking
        self.broadcast = broadcast
        self.fallback = fallback
        self.results = results
        self.cold_lists = cold_lists
        self.config = config
        self.model_version = ""  # newest ranking model seen; part of every cache key
        # Items of events this gateway relayed, per user: excluded from every list even when the feature
        # tier is down or has not applied the event yet (bounded: LRU over users, newest items per user).
        self.relayed: LRUCache[int, dict[int, None]] = LRUCache(config.remembered_users)

    def deadline(self, timeout: float | None) -> float:
        return deadline_after(self.config.budget_seconds, timeout)

    async def recommend(self, user_id: int, k: int = DEFAULT_K, timeout: float | None = None) -> Recommendations:
        check_id(user_id, "user_id")
        k = check_k(k, MAX_K)
        deadline = self.deadline(timeout)
        key = str(user_id)
        cached = self.results.get(user_id, (k, self.model_version))
        if cached is not MISSING:
            return cached.from_cache(user_id)

        reasons: list[str] = []
        served: dict[str, str] = {}
        user = await self._user(user_id, key, deadline, reasons, served)
        cold_key = (user.segment, k, self.model_version)
        if not user.known and not reasons:
            cold = self.cold_lists.get(cold_key)
            if cold is not MISSING:
                return cold.from_cache(user_id)

        candidate_ids, recall_scores, sources, features = await self._candidates(user, key, deadline, reasons, served)
        items = await self._item_features(candidate_ids, key, deadline, reasons, served)
        rank = await self._rank(user, items, features, key, deadline, reasons, served) if items is not None else None
        result = self._assemble(user, k, candidate_ids, recall_scores, sources, items, rank, reasons, served)
        if not result.degraded:
            self.results.put(user_id, (k, self.model_version), result)
            if not user.known:
                self.cold_lists.put(cold_key, result)
        for reason in reasons:
            DEGRADED.labels(reason).inc()
        return result

    async def _user(
        self, user_id: int, key: str, deadline: float, reasons: list[str], served: dict[str, str]
    ) -> common_pb2.UserFeatures:
        try:
            routed = await self.feature.call(
                "GetUserFeatures", feature_pb2.GetUserFeaturesRequest(user_id=user_id), key, deadline
            )
        except UpstreamError as error:
            raise_client_errors(error)
            reasons.append("features_unavailable")
            fallback = common_pb2.UserFeatures(user_id=user_id, known=False, segment=self.fallback.default_segment)
            fallback.rated_items.extend(self._seen(user_id, self.fallback.rated(user_id)).tolist())
            return fallback
        served["feature"] = routed.replica
        return routed.response

    async def _candidates(
        self, user: common_pb2.UserFeatures, key: str, deadline: float, reasons: list[str], served: dict[str, str]
    ) -> tuple[np.ndarray, np.ndarray, list[list[str]], np.ndarray]:
        try:
            routed = await self.recall.call(
                "Recall", recall_pb2.RecallRequest(user=user, k=self.config.candidates), key, deadline
            )
        except UpstreamError as error:
            raise_client_errors(error)
            reasons.append("recall_unavailable")
            ids = self.fallback.popular_for(
                user.segment, self._seen(user.user_id, user.rated_items), self.config.candidates
            )
            scores = (1.0 / (1.0 + np.arange(len(ids)))).astype(np.float32)
            return ids, scores, [["fallback_popular"]] * len(ids), self.fallback.recall_features(len(ids))
        served["recall"] = routed.replica
        reply = routed.response
        channels = list(reply.channels)
        sources = [[name for bit, name in enumerate(channels) if mask >> bit & 1] for mask in reply.source_masks]
        features = (
            matrix_from_proto(reply.recall_features, "recall_features")
            if reply.HasField("recall_features")
            else self.fallback.recall_features(len(reply.item_ids), "")
        )
        return np.asarray(reply.item_ids, np.int64), np.asarray(reply.scores, np.float32), sources, features

    async def _item_features(
        self, ids: np.ndarray, key: str, deadline: float, reasons: list[str], served: dict[str, str]
    ) -> common_pb2.ItemFeatureBatch | None:
        if len(ids) == 0:
            return None
        try:
            routed = await self.feature.call(
                "GetItemFeatures", feature_pb2.GetItemFeaturesRequest(item_ids=ids.tolist()), key, deadline
            )
        except UpstreamError as error:
            raise_client_errors(error)
            reasons.append("item_features_unavailable")
            return None
        served.setdefault("feature", routed.replica)
        return routed.response

    async def _rank(
        self,
        user: common_pb2.UserFeatures,
        items: common_pb2.ItemFeatureBatch,
        features: np.ndarray,
        key: str,
        deadline: float,
        reasons: list[str],
        served: dict[str, str],
    ) -> ranking_pb2.RankResponse | None:
        request = ranking_pb2.RankRequest(user=user, items=items, recall_features=matrix_to_proto(features))
        try:
            routed = await self.ranking.call("Rank", request, key, deadline - self.config.ranking_reserve_seconds)
        except UpstreamError as error:
            reasons.append("ranking_timeout" if error.code == "DEADLINE_EXCEEDED" else "ranking_unavailable")
            return None
        served["ranking"] = routed.replica
        self.model_version = routed.response.model_version or self.model_version
        return routed.response

    def _assemble(
        self,
        user: common_pb2.UserFeatures,
        k: int,
        ids: np.ndarray,
        recall_scores: np.ndarray,
        sources: list[list[str]],
        items: common_pb2.ItemFeatureBatch | None,
        rank: ranking_pb2.RankResponse | None,
        reasons: list[str],
        served: dict[str, str],
    ) -> Recommendations:
        rank_scores = np.asarray(rank.scores, np.float32) if rank is not None else None
        final = rank_scores if rank_scores is not None else recall_scores
        keep = unseen(ids, self._seen(user.user_id, user.rated_items))
        order = [int(i) for i in np.argsort(-final, kind="stable") if keep[i]]
        titles, genres = self._display(ids, items)
        chosen = diversify(order, genres, k, self.config.max_genre_share)
        return Recommendations(
            user_id=user.user_id,
            items=[
                RecommendedItem(
                    item_id=int(ids[i]),
                    title=titles[i],
                    genres=genres[i],
                    score=float(final[i]),
                    sources=sources[i],
                    rank_score=float(rank_scores[i]) if rank_scores is not None else None,
                    recall_score=float(recall_scores[i]),
                )
                for i in chosen
            ],
            model_version=rank.model_version if rank is not None else "",
            variant=rank.variant if rank is not None else "",
            degraded=bool(reasons),
            degraded_reason=",".join(reasons),
            served_by=served,
        )

    def _display(self, ids: np.ndarray, items: common_pb2.ItemFeatureBatch | None) -> tuple[list[str], list[list[str]]]:
        if items is not None and len(items.titles) == len(ids):
            genres = [names.split("|") if names else [] for names in items.genre_names]
            return list(items.titles), genres
        described = [self.fallback.describe(int(i)) for i in ids]
        return [title for title, _ in described], [names for _, names in described]

    async def similar(self, item_id: int, k: int = DEFAULT_K, timeout: float | None = None) -> Recommendations:
        check_id(item_id, "item_id")
        k = check_k(k, MAX_K)
        deadline = self.deadline(timeout)
        key = f"item:{item_id}"
        reasons: list[str] = []
        served: dict[str, str] = {}
        try:
            routed = await self.recall.call(
                "SimilarItems", recall_pb2.SimilarItemsRequest(item_id=item_id, k=k), key, deadline
            )
            served["recall"] = routed.replica
            ids = np.asarray(routed.response.item_ids, np.int64)
            scores = np.asarray(routed.response.scores, np.float32)
            sources = [["embedding"]] * len(ids)
        except UpstreamError as error:
            raise_client_errors(error)
            if not self.fallback.describe(item_id)[0]:
                raise NotFound(f"unknown item {item_id}") from None
            reasons.append("recall_unavailable")
            ids = self.fallback.similar_by_genre(item_id, k)
            scores = (1.0 / (1.0 + np.arange(len(ids)))).astype(np.float32)
            sources = [["fallback_genre"]] * len(ids)
        items = await self._item_features(ids, key, deadline, reasons, served)
        titles, genres = self._display(ids, items)
        for reason in reasons:
            DEGRADED.labels(reason).inc()
        return Recommendations(
            user_id=0,
            item_id=item_id,
            items=[
                RecommendedItem(int(ids[i]), titles[i], genres[i], float(scores[i]), sources[i], None, float(scores[i]))
                for i in range(len(ids))
            ],
            degraded=bool(reasons),
            degraded_reason=",".join(reasons),
            served_by=served,
        )

    def _seen(self, user_id: int, rated: np.ndarray | Sequence[int]) -> np.ndarray:
        """`rated` (the feature tier's, or the bundle's when the feature tier is down) plus the items of events
        this gateway relayed for `user_id`, which the feature tier may not have applied."""
        rated = np.asarray(rated, np.int64)
        relayed = self.relayed.get(user_id)
        return np.concatenate([rated, np.fromiter(relayed, np.int64, len(relayed))]) if relayed else rated

    def _remember(self, event: common_pb2.Event) -> None:
        items = self.relayed.get(event.user_id)
        if items is None:
            items = self.relayed[event.user_id] = {}
        items.pop(event.item_id, None)
        items[event.item_id] = None
        while len(items) > self.config.remembered_items:
            del items[next(iter(items))]

    def forget(self, user_id: int, item_id: int) -> None:
        """Another gateway stored an event of `user_id` on `item_id`: this one's lists for the user are stale."""
        self.results.invalidate(user_id)
        self._remember(common_pb2.Event(user_id=user_id, item_id=item_id))

    async def record_event(self, event: common_pb2.Event, timeout: float | None = None) -> int:
        check_id(event.user_id, "user_id")
        if not event.event_id:
            event.event_id = uuid.uuid4().hex
        try:
            routed = await self.feature.call("RecordEvent", event, str(event.user_id), self.deadline(timeout))
        except UpstreamError as error:
            raise_client_errors(error)
            raise Unavailable(f"the event could not be stored: {error.message}") from None
        finally:
            self.results.invalidate(event.user_id)
        self._remember(event)
        if self.broadcast is not None:
            await self.broadcast(event.user_id, event.item_id)
        return routed.response.user_version
