"""Every feature and recall RPC over real loopback gRPC, including bad input and internal errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from services.feature.main import FeatureSettings
from services.feature.main import start as start_feature
from services.recall.main import RecallSettings
from services.recall.main import start as start_recall
from tests.support.netutil import health_status
from wren.core.bundle import Bundle
from wren.v1 import common_pb2, feature_pb2, feature_pb2_grpc, recall_pb2, recall_pb2_grpc


@pytest.fixture
async def feature(tiny_artifacts: Path) -> AsyncIterator[tuple[feature_pb2_grpc.FeatureServiceStub, str]]:
    running = await start_feature(
        FeatureSettings(artifacts=str(tiny_artifacts), host="127.0.0.1", port=0, reload_seconds=0)
    )
    target = f"127.0.0.1:{running.service.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        yield feature_pb2_grpc.FeatureServiceStub(channel), target
    await running.stop()


@pytest.fixture
async def recall(tiny_artifacts: Path):
    running = await start_recall(
        RecallSettings(artifacts=str(tiny_artifacts), host="127.0.0.1", port=0, reload_seconds=0)
    )
    target = f"127.0.0.1:{running.service.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        yield recall_pb2_grpc.RecallServiceStub(channel), target, running.tier.core
    await running.stop()


async def expect_invalid(call, match: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    assert match in error.value.details()


async def test_user_features_for_known_and_unknown_users(feature, tiny_artifacts: Path) -> None:
    stub, _ = feature
    bundle = Bundle(tiny_artifacts)
    known_id = int(bundle.users.ids[3])
    known = await stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=known_id))
    assert known.known and len(known.rated_items) > 0 and len(known.embedding) == bundle.embedding_dim
    assert len(known.genre_ratings) == len(bundle.genres) == len(known.genre_affinity)
    unknown = await stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=99_999))
    assert not unknown.known and unknown.segment == "new" and len(unknown.embedding) == 0


async def test_item_features_keep_request_order_and_flag_unknown_ids(feature, tiny_artifacts: Path) -> None:
    stub, _ = feature
    ids = [3, 999_999, 1, 3]
    batch = await stub.GetItemFeatures(feature_pb2.GetItemFeaturesRequest(item_ids=ids))
    assert list(batch.item_ids) == ids and list(batch.known) == [True, False, True, True]
    embedding = np.frombuffer(batch.embedding.data, "<f4").reshape(batch.embedding.rows, batch.embedding.cols)
    assert embedding.shape == (4, Bundle(tiny_artifacts).embedding_dim)
    assert not embedding[1].any() and batch.titles[1] == "" and batch.titles[0].startswith("Movie 3")


async def test_recorded_event_is_visible_in_the_next_read(feature) -> None:
    stub, _ = feature
    before = await stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=5))
    unrated = next(i for i in range(1, 150) if i not in set(before.rated_items))
    reply = await stub.RecordEvent(common_pb2.Event(user_id=5, item_id=unrated, type="rating", rating=5.0))
    after = await stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=5))
    assert reply.user_version == after.version == before.version + 1
    assert after.recent_items[0] == unrated and unrated in after.rated_items
    assert after.dense[0] > before.dense[0]  # log rating count grew


@pytest.mark.parametrize(
    ("request_factory", "match"),
    [
        (lambda s: s.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=0)), "user_id must be a positive"),
        (lambda s: s.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=-4)), "user_id must be a positive"),
        (lambda s: s.GetItemFeatures(feature_pb2.GetItemFeaturesRequest(item_ids=[])), "item_ids must not be empty"),
        (
            lambda s: s.GetItemFeatures(feature_pb2.GetItemFeaturesRequest(item_ids=list(range(1, 2002)))),
            "at most 2000",
        ),
        (lambda s: s.GetItemFeatures(feature_pb2.GetItemFeaturesRequest(item_ids=[1, -2])), "positive integer ids"),
        (lambda s: s.RecordEvent(common_pb2.Event(user_id=1, item_id=1, type="purchase")), "type must be one of"),
        (lambda s: s.RecordEvent(common_pb2.Event(user_id=1, item_id=1, type="rating")), "needs a rating"),
        (
            lambda s: s.RecordEvent(common_pb2.Event(user_id=1, item_id=1, type="rating", rating=float("nan"))),
            "rating must be between",
        ),
        (
            lambda s: s.RecordEvent(common_pb2.Event(user_id=1, item_id=1, type="rating", rating=7)),
            "rating must be between",
        ),
        (lambda s: s.RecordEvent(common_pb2.Event(user_id=1, item_id=1, type="click", rating=4)), "carries no rating"),
        (lambda s: s.RecordEvent(common_pb2.Event(user_id=1, item_id=0, type="click")), "item_id must be a positive"),
    ],
)
async def test_feature_bad_input_is_invalid_argument_and_server_stays_healthy(feature, request_factory, match) -> None:
    stub, target = feature
    await expect_invalid(request_factory(stub), match)
    assert await health_status(target) == "SERVING"
    assert (await stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=1))).user_id == 1


async def test_recall_returns_unseen_candidates_with_sources_and_caches(feature, recall) -> None:
    feature_stub, _ = feature
    recall_stub, _, _ = recall
    user = await feature_stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=7))
    first = await recall_stub.Recall(recall_pb2.RecallRequest(user=user, k=40))
    assert len(first.item_ids) == 40 == len(set(first.item_ids)) and not first.cached
    assert not set(first.item_ids) & set(user.rated_items)
    assert all(mask != 0 for mask in first.source_masks) and "embedding" in first.channels
    assert list(first.scores) == sorted(first.scores, reverse=True)
    second = await recall_stub.Recall(recall_pb2.RecallRequest(user=user, k=40))
    assert second.cached and list(second.item_ids) == list(first.item_ids)
    liked = first.item_ids[0]
    await feature_stub.RecordEvent(common_pb2.Event(user_id=7, item_id=liked, type="rating", rating=5.0))
    updated = await feature_stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=7))
    third = await recall_stub.Recall(recall_pb2.RecallRequest(user=updated, k=40))
    assert not third.cached and liked not in third.item_ids


async def test_similar_items_and_new_items(recall, tiny_artifacts: Path) -> None:
    stub, _, _ = recall
    bundle = Bundle(tiny_artifacts)
    anchor = int(bundle.items.ids[np.flatnonzero(bundle.items.has_embedding)[0]])
    similar = await stub.SimilarItems(recall_pb2.SimilarItemsRequest(item_id=anchor, k=10))
    assert len(similar.item_ids) == 10 and anchor not in similar.item_ids
    added = await stub.AddItem(recall_pb2.AddItemRequest(item_id=5_000_001, title="New", genres=["Action", "Comedy"]))
    assert added.neighbours_used > 0
    found = await stub.SimilarItems(recall_pb2.SimilarItemsRequest(item_id=5_000_001, k=5))
    assert len(found.item_ids) == 5
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.SimilarItems(recall_pb2.SimilarItemsRequest(item_id=4_000_000, k=5))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_recall_bad_input(feature, recall) -> None:
    feature_stub, _ = feature
    stub, target, _ = recall
    user = await feature_stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=2))
    await expect_invalid(stub.Recall(recall_pb2.RecallRequest(user=user, k=0)), "k must be between 1 and")
    await expect_invalid(stub.Recall(recall_pb2.RecallRequest(user=user, k=100_000)), "k must be between 1 and")
    await expect_invalid(stub.Recall(recall_pb2.RecallRequest(k=10)), "user features are required")
    poisoned = common_pb2.UserFeatures()
    poisoned.CopyFrom(user)
    poisoned.embedding[0] = float("nan")
    await expect_invalid(stub.Recall(recall_pb2.RecallRequest(user=poisoned, k=10)), "NaN")
    poisoned.ClearField("embedding")
    poisoned.embedding.extend([0.1, 0.2])
    await expect_invalid(stub.Recall(recall_pb2.RecallRequest(user=poisoned, k=10)), "user embedding has 2 values")
    await expect_invalid(stub.SimilarItems(recall_pb2.SimilarItemsRequest(item_id=-1, k=5)), "item_id must be")
    await expect_invalid(stub.AddItem(recall_pb2.AddItemRequest(item_id=9_000_001)), "at least one genre or tag")
    assert await health_status(target) == "SERVING"


async def test_internal_errors_reach_the_client_without_their_text(recall, feature, monkeypatch) -> None:
    stub, target, core = recall
    feature_stub, _ = feature
    user = await feature_stub.GetUserFeatures(feature_pb2.GetUserFeaturesRequest(user_id=3))

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail: /etc/passwd")

    monkeypatch.setattr(core.recaller, "recall", explode)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Recall(recall_pb2.RecallRequest(user=user, k=5))
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (error.value.details() or "") and error.value.details() == "internal error"
    assert await health_status(target) == "SERVING"
