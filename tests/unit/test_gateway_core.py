"""The gateway core without transport: every fallback path, request ids on every hop, cache keys, bundle swaps.

The tiers are the in-process stand-ins of services.inprocess (the real servicers over the tiny bundle); the tier
under test is replaced by a fake that fails the way a TierClient does (UpstreamError with a status name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.common.caches import MISSING
from services.common.logs import request_id
from services.gateway.context import RequestContext
from services.gateway.errors import UpstreamError
from services.gateway.fallback import FALLBACK_GENRE, FALLBACK_POPULAR
from services.gateway.recommender import Recommender
from services.gateway.results import ranked_order
from services.gateway.served_bundle import GatewayBundle
from services.gateway.upstream import Routed
from services.inprocess import InProcessPipeline, build_pipeline
from wren.core.bundle import Bundle
from wren.core.errors import InvalidArgument, NotFound
from wren.core.types import Event, RankResult
from wren.v1 import ranking_pb2

K = 10


class Failing:
    """A tier whose every call fails with `code`, as TierClient reports a tier that is down or too slow."""

    def __init__(self, tier: str, code: str = "UNAVAILABLE") -> None:
        self.tier, self.code = tier, code
        self.calls: list[str] = []

    async def call(self, method: str, request: Any, context: RequestContext, **_: Any) -> Routed:
        self.calls.append(method)
        raise UpstreamError(self.tier, self.code, f"{self.tier} is down (test)")


class Recording:
    """Passes calls on to `inner` and keeps the request id of each (method, context) it saw."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[tuple[str, str]] = []

    async def call(self, method: str, request: Any, context: RequestContext, **options: Any) -> Routed:
        self.seen.append((method, context.metadata[0][1]))
        assert context.metadata == (("x-request-id", context.request_id),)
        return await self.inner.call(method, request, context, **options)


class Replying:
    """Answers Rank with a fixed reply (to test what the core does with what ranking says)."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    async def call(self, method: str, request: Any, context: RequestContext, **_: Any) -> Routed:
        return Routed(self.reply(request), "fake/ranking")


@pytest.fixture
async def pipeline(tiny_artifacts: Path) -> AsyncIterator[InProcessPipeline]:
    built = await build_pipeline(tiny_artifacts, cached=True)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def core(pipeline: InProcessPipeline) -> Recommender:
    return pipeline.recommender


@pytest.fixture(scope="module")
def bundle(tiny_artifacts: Path) -> Bundle:
    return Bundle(tiny_artifacts)


def known_user(bundle: Bundle, row: int = 3) -> int:
    return int(bundle.users.ids[row])


def assert_full_unseen_list(result: Any, bundle: Bundle, user_id: int) -> None:
    ids = [item.item_id for item in result.items]
    assert len(ids) == K and len(set(ids)) == K
    row = bundle.users.row(user_id)
    rated = bundle.users.rated(row) if row is not None else np.empty(0, np.int64)
    assert not np.isin(ids, rated).any(), "a fallback list re-served a rated item"
    assert all(item.title for item in result.items), "every item carries its title from the gateway's bundle"


async def test_a_healthy_request_is_ranked_full_and_not_degraded(core: Recommender, bundle: Bundle) -> None:
    user = known_user(bundle)
    result = await core.recommend(user, K)
    assert not result.degraded and result.degraded_reason == ""
    assert_full_unseen_list(result, bundle, user)
    assert set(result.served_by) == {"feature", "recall", "ranking"}
    assert result.model_version == f"{bundle.default_model}@{bundle.version}"
    scores = [item.rank_score for item in result.items]
    assert all(score is not None for score in scores)
    display = dict(zip(bundle.items.ids.tolist(), bundle.items.titles, strict=True))
    assert [item.title for item in result.items] == [display[item.item_id] for item in result.items]


async def test_features_unavailable_serves_a_ranked_cold_start_list(
    core: Recommender, pipeline: InProcessPipeline, bundle: Bundle
) -> None:
    core.feature = failing = Failing("feature")
    user = known_user(bundle)
    result = await core.recommend(user, K)
    assert failing.calls == ["GetUserFeatures"]
    assert result.degraded and result.degraded_reason == "features_unavailable"
    assert_full_unseen_list(result, bundle, user)
    assert "feature" not in result.served_by and {"recall", "ranking"} <= set(result.served_by)
    assert all(item.rank_score is not None for item in result.items), "the cold-start profile is still ranked"
    assert core.results.get(user, (K, bundle.version, "control")) is MISSING, "degraded lists are not cached"


async def test_recall_unavailable_ranks_the_segment_popular_list(core: Recommender, bundle: Bundle) -> None:
    core.recall = Failing("recall")
    user = known_user(bundle)
    result = await core.recommend(user, K)
    assert result.degraded_reason == "recall_unavailable"
    assert_full_unseen_list(result, bundle, user)
    assert all(item.sources == [FALLBACK_POPULAR] for item in result.items)
    assert all(item.rank_score is not None for item in result.items)
    row = bundle.users.row(user)
    assert row is not None
    segment = bundle.users.segment_names[int(bundle.users.segment[row])]
    popular = core.bundle.catalog.segments.get(segment, core.bundle.catalog.popular)
    assert np.isin([item.item_id for item in result.items], popular).all()


@pytest.mark.parametrize(
    ("code", "reason"), [("UNAVAILABLE", "ranking_unavailable"), ("DEADLINE_EXCEEDED", "ranking_timeout")]
)
async def test_ranking_down_or_late_serves_recall_order(
    core: Recommender, bundle: Bundle, code: str, reason: str
) -> None:
    core.ranking = Failing("ranking", code)
    user = known_user(bundle)
    result = await core.recommend(user, K)
    assert result.degraded_reason == reason
    assert_full_unseen_list(result, bundle, user)
    assert result.model_version == "" and all(item.rank_score is None for item in result.items)
    recall_scores = [item.recall_score for item in result.items]
    assert all(item.score == item.recall_score for item in result.items)
    assert recall_scores[0] == max(recall_scores)


async def test_every_fallback_at_once_still_fills_the_list(core: Recommender, bundle: Bundle) -> None:
    core.feature, core.recall, core.ranking = Failing("feature"), Failing("recall"), Failing("ranking")
    user = known_user(bundle)
    result = await core.recommend(user, K)
    assert result.degraded_reason == "features_unavailable,recall_unavailable,ranking_unavailable"
    assert_full_unseen_list(result, bundle, user)
    assert result.served_by == {}


async def test_similar_items_falls_back_to_popular_items_of_the_same_genre(core: Recommender, bundle: Bundle) -> None:
    core.recall = Failing("recall")
    catalog = core.bundle.catalog
    item = int(catalog.popular[0])
    genre = catalog.describe(item)[1][0]
    result = await core.similar(item, K)
    assert result.degraded_reason == "recall_unavailable" and result.item_id == item
    assert len(result.items) == K and item not in [entry.item_id for entry in result.items]
    assert all(entry.sources == [FALLBACK_GENRE] and genre in entry.genres for entry in result.items)
    assert [entry.score for entry in result.items] == sorted((entry.score for entry in result.items), reverse=True)
    with pytest.raises(NotFound, match="unknown item 999999"):
        await core.similar(999_999, K)


async def test_bad_input_found_by_a_tier_is_the_clients_error_not_a_fallback(core: Recommender, bundle: Bundle) -> None:
    core.feature = Failing("feature", "INVALID_ARGUMENT")
    with pytest.raises(InvalidArgument, match="feature is down"):
        await core.recommend(known_user(bundle), K)


async def test_every_hop_of_a_request_carries_its_request_id(core: Recommender, bundle: Bundle) -> None:
    tiers = {name: Recording(getattr(core, name)) for name in ("feature", "recall", "ranking")}
    for name, tier in tiers.items():
        setattr(core, name, tier)
    token = request_id.set("from-the-caller")
    try:
        await core.recommend(known_user(bundle), K)
    finally:
        request_id.reset(token)
    await core.recommend(known_user(bundle, 5), K)
    seen = [hop for tier in tiers.values() for hop in tier.seen]
    assert [method for method, _ in seen] == ["GetUserFeatures", "GetUserFeatures", "Recall", "Recall", "Rank", "Rank"]
    first = {rid for method, rid in (tiers[name].seen[0] for name in tiers)}
    second = {rid for method, rid in (tiers[name].seen[1] for name in tiers)}
    assert first == {"from-the-caller"}
    assert len(second) == 1 and len(second.pop()) == 32, "no id from the caller: one new uuid4 hex for all hops"


async def test_results_are_cached_on_bundle_version_and_variant_and_a_new_bundle_misses(
    core: Recommender, bundle: Bundle
) -> None:
    user = known_user(bundle)
    first = await core.recommend(user, K)
    assert core.results.get(user, (K, bundle.version, "control")) is not MISSING
    assert (await core.recommend(user, K)).items[0].cached
    core.reload(dataclasses.replace(core.bundle, version="next-bundle"))
    again = await core.recommend(user, K)
    assert not again.items[0].cached, "a new bundle's lists are not served from the old bundle's cache"
    assert [item.item_id for item in again.items] == [item.item_id for item in first.items]
    assert core.results.get(user, (K, "next-bundle", "control")) is not MISSING


async def test_cold_start_lists_are_shared_within_a_variant_only(core: Recommender, bundle: Bundle) -> None:
    split = GatewayBundle.load(bundle, "A=deepfm:50,B=widedeep:50", "salt")
    core.reload(split)
    cold = [user for user in range(10_000_000, 10_000_200)]
    by_variant: dict[str, list[int]] = {}
    for user in cold:
        by_variant.setdefault(split.variant(user), []).append(user)
    a, b = by_variant["A"][:2], by_variant["B"][:1]
    await core.recommend(a[0], K)
    assert (await core.recommend(a[1], K)).items[0].cached, "cold users of one segment and variant share a list"
    assert not (await core.recommend(b[0], K)).items[0].cached, "another variant never gets that list"


async def test_candidates_ranking_does_not_know_come_after_the_known_ones(core: Recommender, bundle: Bundle) -> None:
    def reply(request: ranking_pb2.RankRequest) -> ranking_pb2.RankResponse:
        n = len(request.item_ids)
        known = [i % 2 == 0 for i in range(n)]  # odd recall positions: unknown to ranking's bundle
        return ranking_pb2.RankResponse(
            scores=np.linspace(0, 1, n).tolist(), known=known, model_name="m", model_version="m@v", variant="control"
        )

    core.ranking = Replying(reply)
    result = await core.recommend(known_user(bundle), 300)
    ranked = [item for item in result.items if item.rank_score is not None]
    unranked = [item for item in result.items if item.rank_score is None]
    assert ranked and unranked
    assert result.items[: len(ranked)] == ranked, "every known candidate comes first"
    assert [item.rank_score for item in ranked] == sorted((item.rank_score for item in ranked), reverse=True)
    recall = [item.recall_score for item in unranked]
    assert recall == sorted(recall, reverse=True), "the unknown ones follow in recall order"


def test_ranked_order_without_ranking_is_recall_order() -> None:
    recall = np.array([0.9, 0.5, 0.7, 0.1], np.float32)
    assert ranked_order(recall, None).tolist() == [0, 2, 1, 3]
    rank = RankResult(np.array([0.1, 0.9, 0.5, 0.3], np.float32), np.array([True, False, True, True]), "m", "v", "c")
    assert ranked_order(recall, rank).tolist() == [2, 3, 0, 1]


async def test_a_recorded_event_drops_the_cached_list_and_hides_its_item_even_while_features_are_down(
    core: Recommender, bundle: Bundle
) -> None:
    user = known_user(bundle, 7)
    feature = Recording(core.feature)
    core.feature = feature
    item = (await core.recommend(user, K)).items[0].item_id
    assert await core.record_event(Event(user, item, "click", None, 0)) >= 1
    method, rid = feature.seen[-1]
    assert method == "RecordEvent" and len(rid) == 32
    after = await core.recommend(user, K)
    assert not after.items[0].cached and item not in [entry.item_id for entry in after.items]
    core.feature = Failing("feature")
    core.results.invalidate(user)  # as after the results TTL: the list is built again, without features
    down = await core.recommend(user, K)
    assert down.degraded_reason == "features_unavailable"
    assert item not in [entry.item_id for entry in down.items], "the gateway remembers the events it relayed"
