"""The FeatureStore contract, written once and run against every backend (embedded memory and Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.feature.items import ItemCatalog
from services.feature.memory import MemoryFeatureStore
from services.feature.publish import publish_bundle
from services.feature.redis_store import RedisFeatureStore, RedisFeatureStoreConfig
from services.feature.store import FeatureStore
from wren.core.arrays import mean_embeddings
from wren.core.bundle import Bundle
from wren.core.schema import genre_affinity, genre_rating_deviation, user_dense
from wren.core.types import Event, UserProfile

UNKNOWN_USER = 10**9
UNKNOWN_ITEM = 10**9


async def open_store(kind: str, bundle: Bundle, url: str = "") -> FeatureStore:
    if kind == "memory":
        return MemoryFeatureStore(bundle)
    publish_bundle(bundle, url, progress=False)
    return await RedisFeatureStore.connect(RedisFeatureStoreConfig(url=url, timeout_ms=1000))


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, tiny_bundle: Bundle) -> AsyncIterator[FeatureStore]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    opened = await open_store(request.param, tiny_bundle, url)
    yield opened
    await opened.close()


def assert_same_profile(got: UserProfile, want: UserProfile) -> None:
    assert (got.user_id, got.known, got.segment, got.version, got.bundle_version) == (
        want.user_id,
        want.known,
        want.segment,
        want.version,
        want.bundle_version,
    )
    np.testing.assert_allclose(got.dense, want.dense, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.genre_affinity, want.genre_affinity, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.genre_ratings, want.genre_ratings, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.recent_items, want.recent_items)
    assert set(got.rated_items.tolist()) == set(want.rated_items.tolist())
    assert (got.embedding is None) == (want.embedding is None)
    if want.embedding is not None:
        np.testing.assert_allclose(got.embedding, want.embedding, rtol=0, atol=1e-6)


def fresh_item(bundle: Bundle, row: int) -> int:
    """An item the user of `row` never interacted with that has genres and an embedding."""
    rated = set(bundle.users.rated(row).tolist())
    items = bundle.items
    return next(
        int(i)
        for i, g, e in zip(items.ids, items.genres, items.has_embedding, strict=True)
        if int(i) not in rated and g.any() and e
    )


async def test_known_user_matches_the_snapshot(store: FeatureStore, tiny_bundle: Bundle) -> None:
    users, items = tiny_bundle.users, tiny_bundle.items
    for row in range(0, len(users.ids), 7):
        profile = await store.get_user(int(users.ids[row]))
        assert profile.known and profile.version == 0 and profile.bundle_version == tiny_bundle.version
        assert profile.segment == users.segment_names[int(users.segment[row])]
        np.testing.assert_allclose(profile.dense, user_dense(users.counters[row])[0], atol=1e-6)
        np.testing.assert_allclose(profile.genre_affinity, genre_affinity(users.genre_counts[row])[0], atol=1e-6)
        deviation = genre_rating_deviation(users.genre_rated[row], users.genre_rating_sum[row], users.counters[row])
        np.testing.assert_allclose(profile.genre_ratings, deviation[0], atol=1e-6)
        recent = users.recent[row][users.recent[row] >= 0]
        np.testing.assert_array_equal(profile.recent_items, recent)
        assert set(profile.rated_items.tolist()) == set(users.rated(row).tolist())
        rows, found = items.rows(recent)
        want = mean_embeddings(np.where(found, rows, -1), tiny_bundle.embeddings, items.has_embedding)[0]
        np.testing.assert_allclose(profile.embedding, want, atol=1e-6)


async def test_unknown_user_is_cold(store: FeatureStore, tiny_bundle: Bundle) -> None:
    profile = await store.get_user(UNKNOWN_USER)
    assert not profile.known and profile.version == 0 and profile.embedding is None
    assert profile.segment == tiny_bundle.cold_start["default_segment"]
    np.testing.assert_allclose(profile.dense, user_dense(np.zeros(4))[0])
    assert not profile.genre_affinity.any() and not profile.genre_ratings.any()
    assert len(profile.recent_items) == 0 and len(profile.rated_items) == 0


async def test_get_items_keeps_order_duplicates_and_unknown_ids(store: FeatureStore, tiny_bundle: Bundle) -> None:
    ids = tiny_bundle.items.ids
    request = np.array([ids[3], ids[0], UNKNOWN_ITEM, ids[3], ids[-1]], np.int64)
    got = await store.get_items(request)
    want = ItemCatalog(tiny_bundle).batch(request)
    np.testing.assert_array_equal(got.item_ids, request)
    np.testing.assert_array_equal(got.known, [True, True, False, True, True])
    for name in ("dense", "genres", "embedding", "years"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert not got.dense[2].any() and not got.embedding[2].any() and got.titles[2] == "" and got.years[2] == 0
    assert (got.titles, got.genre_names) == (want.titles, want.genre_names)
    assert got.bundle_version == tiny_bundle.version
    assert len((await store.get_items(np.array([], np.int64))).item_ids) == 0


@pytest.mark.parametrize("kind", ["rating", "click", "view"])
async def test_an_event_is_read_back_at_once(store: FeatureStore, tiny_bundle: Bundle, kind: str) -> None:
    users, row = tiny_bundle.users, 5
    user_id, item_id = int(users.ids[row]), fresh_item(tiny_bundle, row)
    item_genres = tiny_bundle.items.genres[tiny_bundle.items.rows(np.array([item_id]))[0][0]]
    before = await store.get_user(user_id)
    rating = 5.0 if kind == "rating" else None
    version = await store.record_event(Event(user_id, item_id, kind, rating, tiny_bundle.data_cutoff + 60))
    after = await store.get_user(user_id)

    assert version == after.version == before.version + 1
    assert item_id in after.rated_items.tolist()
    counters, genre_counts = users.counters[row].copy(), users.genre_counts[row].copy()
    genre_rated, genre_sum = users.genre_rated[row].copy(), users.genre_rating_sum[row].copy()
    if kind == "rating":
        counters += (1, 5.0, 25.0, 1)
        genre_rated, genre_sum = genre_rated + item_genres, genre_sum + 5.0 * item_genres
    if kind != "view":
        genre_counts = genre_counts + item_genres
        assert after.recent_items[0] == item_id
        np.testing.assert_array_equal(after.recent_items[1:], before.recent_items[: len(after.recent_items) - 1])
    else:
        np.testing.assert_array_equal(after.recent_items, before.recent_items)
    np.testing.assert_allclose(after.dense, user_dense(counters)[0], atol=1e-6)
    np.testing.assert_allclose(after.genre_affinity, genre_affinity(genre_counts)[0], atol=1e-6)
    deviation = genre_rating_deviation(genre_rated, genre_sum, counters)[0]
    np.testing.assert_allclose(after.genre_ratings, deviation, atol=1e-6)
    assert (kind == "rating") == (not np.allclose(after.genre_ratings, before.genre_ratings))


async def test_many_events_in_sequence(store: FeatureStore, tiny_bundle: Bundle) -> None:
    users, row = tiny_bundle.users, 9
    user_id, recent_len = int(users.ids[row]), tiny_bundle.schema.recent_len
    rng = np.random.default_rng(3)
    recent = [int(i) for i in users.recent[row] if i >= 0]
    rated, counters = set(users.rated(row).tolist()), users.counters[row].copy()
    for step in range(1, 31):
        item_id = int(rng.choice(tiny_bundle.items.ids))
        kind = ("rating", "click", "view")[step % 3]
        rating = float(rng.choice([1.0, 2.5, 4.0, 5.0])) if kind == "rating" else None
        assert await store.record_event(Event(user_id, item_id, kind, rating, tiny_bundle.data_cutoff + step)) == step
        rated.add(item_id)
        if kind == "rating":
            counters += (1, rating, rating * rating, float(rating >= tiny_bundle.positive_threshold))
        if kind == "click" or (kind == "rating" and rating >= tiny_bundle.positive_threshold):
            recent = ([item_id] + [i for i in recent if i != item_id])[:recent_len]
    profile = await store.get_user(user_id)
    assert profile.version == 30
    np.testing.assert_array_equal(profile.recent_items, recent)
    assert set(profile.rated_items.tolist()) == rated
    np.testing.assert_allclose(profile.dense, user_dense(counters)[0], atol=1e-6)


async def test_memory_and_redis_agree_after_the_same_events(tiny_bundle: Bundle, redis_url: str) -> None:
    memory = await open_store("memory", tiny_bundle)
    redis = await open_store("redis", tiny_bundle, redis_url)
    try:
        users = [int(u) for u in tiny_bundle.users.ids[[0, 11, 42]]] + [UNKNOWN_USER]
        items = np.append(tiny_bundle.items.ids, UNKNOWN_ITEM)
        rng = np.random.default_rng(11)
        for step in range(1, 61):
            kind = str(rng.choice(["rating", "click", "view"]))
            rating = float(rng.integers(1, 11)) / 2 if kind == "rating" else None
            event = Event(int(rng.choice(users)), int(rng.choice(items)), kind, rating, tiny_bundle.data_cutoff + step)
            assert await redis.record_event(event) == await memory.record_event(event)
        for user_id in users:
            assert_same_profile(await redis.get_user(user_id), await memory.get_user(user_id))
    finally:
        await redis.close()


def data_frames(tiny_data: Path) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_csv(tiny_data / f"{name}.csv", dtype={"imdbId": str, "tmdbId": str})
        for name in ("ratings", "movies", "tags", "links")
    }


async def test_catalogue_summarises_every_item_over_all_ratings(
    store: FeatureStore, tiny_bundle: Bundle, tiny_data: Path
) -> None:
    catalogue = await store.catalogue()
    assert catalogue.version == tiny_bundle.version
    np.testing.assert_array_equal(catalogue.ids, tiny_bundle.items.ids)
    ratings = data_frames(tiny_data)["ratings"].groupby("movieId")["rating"]
    counts, means = ratings.count(), ratings.mean()
    titles = data_frames(tiny_data)["movies"].set_index("movieId")["title"]
    ids = [int(i) for i in tiny_bundle.items.ids[::9]] + [7]
    for summary in catalogue.summaries(ids + [UNKNOWN_ITEM]):
        if summary.item_id == UNKNOWN_ITEM:
            assert (summary.title, summary.genres, summary.rating_count, summary.rating_mean) == ("", [], 0, None)
            continue
        assert summary.title == titles[summary.item_id] and summary.year == int(summary.title[-5:-1])
        assert summary.rating_count == counts.get(summary.item_id, 0)
        if summary.rating_count:
            assert summary.rating_mean == pytest.approx(means[summary.item_id], abs=1e-4)
        row = tiny_bundle.items.rows(np.array([summary.item_id]))[0][0]
        assert summary.genres == [
            g for g, on in zip(tiny_bundle.genres, tiny_bundle.items.genres[row], strict=True) if on
        ]
    assert catalogue.search("amelie", 5)[0].item_id == 7


async def test_item_extras_hold_tags_by_use_and_links(store: FeatureStore, tiny_data: Path) -> None:
    frames = data_frames(tiny_data)
    tags = frames["tags"].assign(tag=frames["tags"]["tag"].str.strip().str.lower())
    tagged = tags.groupby("movieId")["tag"].value_counts()
    item_id = int(tagged.index[0][0])
    want = tagged[item_id].reset_index().sort_values(["count", "tag"], ascending=[False, True])["tag"].tolist()
    extras = await store.item_extras(item_id)
    assert extras is not None and extras.tags == want
    links = frames["links"].set_index("movieId")
    assert (extras.imdb_id, extras.tmdb_id) == (links.at[item_id, "imdbId"], links.at[item_id, "tmdbId"])
    untagged = next(int(i) for i in links.index if i not in tags["movieId"].values and pd.isna(links.at[i, "tmdbId"]))
    bare = await store.item_extras(untagged)
    assert bare is not None and bare.tags == [] and bare.tmdb_id is None
    assert bare.imdb_id == links.at[untagged, "imdbId"]
    assert await store.item_extras(UNKNOWN_ITEM) is None


async def test_user_history_lists_the_bundle_ratings_newest_first(
    store: FeatureStore, tiny_bundle: Bundle, tiny_data: Path
) -> None:
    ratings = data_frames(tiny_data)["ratings"]
    row = 3
    user_id = int(tiny_bundle.users.ids[row])
    history = await store.user_history(user_id)
    mine = ratings[ratings["userId"] == user_id].sort_values(["timestamp", "movieId"], ascending=False)
    assert history.known and history.event_count == 0
    assert history.segment == tiny_bundle.users.segment_names[int(tiny_bundle.users.segment[row])]
    assert [(e.item_id, e.rating, e.timestamp) for e in history.entries] == list(
        zip(mine["movieId"], mine["rating"], mine["timestamp"], strict=True)
    )
    np.testing.assert_allclose(history.counters, tiny_bundle.users.counters[row])
    unknown = await store.user_history(UNKNOWN_USER)
    assert not unknown.known and unknown.entries == [] and unknown.segment == tiny_bundle.cold_start["default_segment"]


async def test_user_history_shows_recorded_events_at_once(store: FeatureStore, tiny_bundle: Bundle) -> None:
    row = 6
    user_id = int(tiny_bundle.users.ids[row])
    before = await store.user_history(user_id)
    old = before.entries[-1]  # the user's oldest rating
    fresh = fresh_item(tiny_bundle, row)
    now = tiny_bundle.data_cutoff + 100
    await store.record_event(Event(user_id, fresh, "rating", 2.5, now))
    await store.record_event(Event(user_id, old.item_id, "click", None, now + 1))
    after = await store.user_history(user_id)
    assert [(e.item_id, e.rating, e.timestamp) for e in after.entries[:2]] == [
        (old.item_id, old.rating, now + 1),
        (fresh, 2.5, now),
    ]
    assert len(after.entries) == len(before.entries) + 1 and after.event_count == 2
    assert after.counters[0] == before.counters[0] + 1
    await store.record_event(Event(UNKNOWN_USER, fresh, "view", None, now))
    newcomer = await store.user_history(UNKNOWN_USER)
    assert newcomer.known and [(e.item_id, e.rating) for e in newcomer.entries] == [(fresh, None)]
