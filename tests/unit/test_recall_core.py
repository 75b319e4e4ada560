"""Recall core without transport: merge rules, channel exclusions, content vectors, new items."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wren.core.bundle import Bundle
from wren.core.errors import InvalidArgument, NotFound
from wren.core.profiles import ProfileBuilder
from wren.core.recall.merge import merge
from wren.core.recall.recaller import Recaller


def proposal(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(ids, np.int64), np.linspace(1, 0.5, len(ids)).astype(np.float32)


def test_merge_honours_quotas_dedupes_and_records_every_source() -> None:
    proposals = {"a": proposal([1, 2, 3, 4, 5, 6]), "b": proposal([7, 8, 1, 9]), "c": proposal([10, 11])}
    merged = merge(proposals, {"a": 0.5, "b": 0.25, "c": 0.25}, k=8)
    ids = merged.item_ids.tolist()
    assert len(ids) == len(set(ids)) == 8
    assert {1, 2, 3, 7, 10} <= set(ids)  # a's top 3 (half of 6 is rounded to 4 slots of 8), b's top 2, c's top 2
    assert merged.sources(ids.index(1)) == ["a", "b"]
    assert np.all(np.diff(merged.scores) <= 0)


def test_merge_fills_with_the_best_fused_items_when_quotas_leave_room() -> None:
    proposals = {"a": proposal([1, 2, 3, 4]), "b": proposal([4, 3, 5])}
    merged = merge(proposals, {"a": 0.25}, k=3)
    assert merged.item_ids[0] in (3, 4)  # proposed by both channels: highest fused score
    assert 1 in merged.item_ids.tolist()  # a's quota of 1 place


@pytest.fixture(scope="module")
def bundle(tiny_artifacts: Path) -> Bundle:
    return Bundle(tiny_artifacts)


@pytest.fixture(scope="module")
def recaller(bundle: Bundle) -> Recaller:
    return Recaller.from_bundle(bundle)


def known_profile(bundle: Bundle, row: int = 0):
    builder = ProfileBuilder.from_bundle(bundle)
    return builder.profile(int(bundle.users.ids[row]), builder.snapshot_state(bundle.users, row))


def test_no_channel_ever_proposes_a_rated_item(bundle: Bundle, recaller: Recaller) -> None:
    for row in range(0, len(bundle.users.ids), 7):
        profile = known_profile(bundle, row)
        assert len(profile.rated_items) > 0
        for name, (ids, _) in recaller.proposals(profile, 50).items():
            assert not np.isin(ids, profile.rated_items).any(), name
        assert not np.isin(recaller.recall(profile, 50).item_ids, profile.rated_items).any()


def test_a_cold_user_gets_segment_and_popular_items(bundle: Bundle, recaller: Recaller) -> None:
    builder = ProfileBuilder.from_bundle(bundle)
    cold = builder.profile(10**9, builder.empty_state())
    candidates = recaller.recall(cold, 20)
    assert len(candidates) == 20
    assert {source for i in range(20) for source in candidates.sources(i)} <= {"popularity", "segment"}


def test_offline_content_rows_equal_online_content_vectors(bundle: Bundle, recaller: Recaller) -> None:
    catalog = recaller.catalog
    tag_names = catalog.content_space.tags
    checked = 0
    for row in range(len(catalog.ids)):
        tag_columns = catalog.content[row].indices[catalog.content[row].indices >= len(catalog.content_space.genres)]
        if len(tag_columns) == 0:
            continue
        genres = [g for g, on in zip(bundle.genres, bundle.items.genres[row], strict=True) if on]
        stored = catalog.content[row].toarray().ravel()
        # rebuild the item's tag document from the stored TF-IDF weights: tf = weight / idf, up to scale
        tags: list[str] = []
        block = stored[len(catalog.content_space.genres) :]
        tf = (
            block[tag_columns - len(catalog.content_space.genres)]
            / catalog.content_space.idf[tag_columns - len(catalog.content_space.genres)]
        )
        tf = np.round(tf / tf.min()).astype(int)
        for column, count in zip(tag_columns - len(catalog.content_space.genres), tf, strict=True):
            tags += [tag_names[column]] * int(count)
        np.testing.assert_allclose(catalog.content_space.vector(genres, tags).toarray().ravel(), stored, atol=1e-5)
        checked += 1
    assert checked >= 5


def test_new_item_is_retrievable_at_once(bundle: Bundle) -> None:
    recaller = Recaller.from_bundle(bundle)
    anchor_row = int(np.flatnonzero(bundle.items.has_embedding)[0])
    genres = [g for g, on in zip(bundle.genres, bundle.items.genres[anchor_row], strict=True) if on]
    used = recaller.catalog.add_item(10**7, genres, [])
    assert used > 0
    similar, _ = recaller.similar_items(10**7, 20)
    assert len(similar) == 20 and 10**7 not in similar.tolist()
    ids, _ = recaller.catalog.index.search(recaller.catalog.embeddings[recaller.catalog.row(10**7)][None], 5)
    assert 10**7 in ids[0].tolist()


def test_bad_requests_are_domain_errors(bundle: Bundle, recaller: Recaller) -> None:
    profile = known_profile(bundle)
    with pytest.raises(InvalidArgument, match="k must be between"):
        recaller.recall(profile, 0)
    with pytest.raises(NotFound, match="unknown item"):
        recaller.similar_items(-5, 10)
    profile.embedding = np.full(bundle.embedding_dim, np.nan, np.float32)
    with pytest.raises(InvalidArgument, match="NaN"):
        recaller.recall(profile, 10)
    with pytest.raises(InvalidArgument, match="no known genre or tag"):
        recaller.catalog.add_item(10**8, ["Nope"], ["never-seen-tag"])
