"""Catalogue units: title search, genre rows, history merging, the catalogue core's rules, older bundles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from services.feature.catalogue import Catalogue, fold
from services.feature.catalogue_core import CatalogueCore
from services.feature.history import merge_history
from services.feature.memory import MemoryFeatureStore
from wren.core.bundle import Bundle
from wren.core.errors import InvalidArgument, NotFound
from wren.core.types import Event

GENRES = ["Comedy", "Drama", "Sci-Fi"]


def small_catalogue() -> Catalogue:
    rows = [  # id, title, year, genres, rating count, mean
        (1, "Amélie (2001)", 2001, [1, 1, 0], 200, 4.2),
        (2, "Ameli, the remake (2020)", 2020, [1, 0, 0], 3, 2.0),
        (3, "Le Fabuleux Destin d'Amélie Poulain (2001)", 2001, [0, 1, 0], 50, 4.0),
        (4, "One Great Night (1990)", 1990, [0, 0, 1], 1, 5.0),
        (5, "Solid Space Opera (1980)", 1980, [0, 0, 1], 120, 4.4),
        (6, "Unrated Space (1970)", 0, [0, 0, 1], 0, np.nan),
        (7, "Big Space (1999)", 1999, [0, 0, 1], 400, 3.1),
        (8, "Matrix, The (1999)", 1999, [0, 0, 1], 10, 4.0),
        (9, "Matrix Reloaded, The (2003)", 2003, [0, 0, 1], 90, 3.5),
        (10, "Auberge espagnole, L' (2002)", 2002, [1, 0, 0], 5, 3.5),
    ]
    return Catalogue(
        "v1",
        np.array([r[0] for r in rows]),
        [r[1] for r in rows],
        np.array([r[2] for r in rows]),
        np.array([r[3] for r in rows], np.uint8),
        GENRES,
        np.array([r[4] for r in rows]),
        np.array([r[5] for r in rows], np.float64),
    )


def test_fold_ignores_case_accents_and_spacing() -> None:
    assert fold("  AMÉLIE   Poulain ") == fold("amelie poulain") == "amelie poulain"
    assert fold("Ｆｕｌｌ") == "full" and fold("Straße") == "strasse"


def test_search_matches_without_case_or_accents_best_first() -> None:
    catalogue = small_catalogue()
    assert [s.item_id for s in catalogue.search("AMELIE", 10)] == [1, 3]
    assert [s.item_id for s in catalogue.search("amél", 10)] == [1, 2, 3]  # prefix, then by rating count
    assert [s.item_id for s in catalogue.search("space", 10)] == [7, 5, 6]  # word matches by rating count
    assert [s.item_id for s in catalogue.search("destin amelie", 10)] == [3]  # every word, any order
    assert catalogue.search("space", 1)[0].item_id == 7 and catalogue.search("zzz", 5) == []
    assert [s.item_id for s in catalogue.search("solid space opera", 3)] == [5]
    assert [s.item_id for s in catalogue.search("the matrix", 3)] == [8, 9]  # "Matrix, The" is the exact title
    assert [s.item_id for s in catalogue.search("Matrix", 3)] == [8, 9]
    assert [s.item_id for s in catalogue.search("l'auberge espagnole", 3)] == [10]


def test_genre_rows_sort_by_bayesian_rating_or_popularity() -> None:
    catalogue = small_catalogue()
    assert catalogue.genre("sci-fi") == "Sci-Fi" and catalogue.genre("SCI-FI") == "Sci-Fi"
    by_rating = [s.item_id for s in catalogue.genre_items("Sci-Fi", "rating", 10)]
    assert by_rating == [5, 8, 4, 9, 7]  # the one 5-star rating ranks below 120 ratings at 4.4; unrated items left out
    assert [s.item_id for s in catalogue.genre_items("Sci-Fi", "popularity", 3)] == [7, 5, 9]
    assert catalogue.genre_counts() == [("Comedy", 3), ("Drama", 2), ("Sci-Fi", 6)]
    with pytest.raises(NotFound, match="unknown genre 'Western'"):
        catalogue.genre("Western")


def test_summaries_and_the_bytes_form_agree() -> None:
    catalogue = small_catalogue()
    copy = Catalogue.from_bytes("v1", catalogue.to_bytes(), GENRES)
    assert copy.summaries([6, 1, 99]) == catalogue.summaries([6, 1, 99])
    unrated, amelie, unknown = copy.summaries([6, 1, 99])
    assert (unrated.year, unrated.rating_mean, unrated.rating_count) == (None, None, 0)
    assert (amelie.title, amelie.genres, amelie.rating_mean) == ("Amélie (2001)", ["Comedy", "Drama"], 4.2)
    assert unknown.title == "" and unknown.genres == []
    with pytest.raises(NotFound, match="unknown item 99"):
        copy.summary(99)


def test_history_merge_puts_events_first_and_keeps_ratings_of_clicked_items() -> None:
    ids, ratings, stamps = np.array([30, 20, 10]), np.array([4.0, np.nan, 2.0], np.float32), np.array([300, 200, 100])
    events = [Event(1, 10, "click", None, 400), Event(1, 40, "rating", 5.0, 400), Event(1, 20, "rating", 1.5, 150)]
    merged = [(e.item_id, e.rating, e.timestamp) for e in merge_history(ids, ratings, stamps, events)]
    assert merged == [(40, 5.0, 400), (10, 2.0, 400), (30, 4.0, 300), (20, 1.5, 150)]


async def test_core_rejects_bad_input_naming_it(tiny_bundle: Bundle) -> None:
    store = MemoryFeatureStore(tiny_bundle)
    core = CatalogueCore(lambda: store)
    for call, message in [
        (core.item(0), "item_id must be a positive integer id"),
        (core.search("   ", 5), "q must not be empty"),
        (core.search("x" * 201, 5), "q must be at most 200 characters"),
        (core.search("?!", 5), "q must contain a letter or a digit"),
        (core.search("movie", 101), "k must be between 1 and 100"),
        (core.genre_items("Drama", "newest", 5), "sort must be one of popularity, rating"),
        (core.genre_items("Drama", "rating", 0), "k must be between 1 and 100"),
        (core.user_ratings(1, -1, 5), "offset must be between 0 and"),
        (core.user_ratings(1, 0, 500), "limit must be between 1 and 100"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            await call
    with pytest.raises(NotFound, match="unknown user 999999"):
        await core.user_ratings(999_999, 0, 5)
    with pytest.raises(NotFound, match="unknown genre"):
        await core.genre_items("Western", "rating", 5)


async def test_item_details_count_ratings_recorded_after_the_bundle(tiny_bundle: Bundle) -> None:
    store = MemoryFeatureStore(tiny_bundle)
    core = CatalogueCore(lambda: store)
    item_id = int(tiny_bundle.items.ids[3])
    before = (await core.item(item_id)).summary
    users = [int(u) for u in tiny_bundle.users.ids[:3]]
    for user, rating in zip(users, (5.0, 4.0, 1.0), strict=True):
        await store.record_event(Event(user, item_id, "rating", rating, tiny_bundle.data_cutoff + 10))
    await store.record_event(Event(users[0], item_id, "rating", 2.0, tiny_bundle.data_cutoff))  # in the bundle
    await store.record_event(Event(users[1], item_id, "click", None, tiny_bundle.data_cutoff + 10))
    after = (await core.item(item_id)).summary
    assert after.rating_count == before.rating_count + 3
    known = before.rating_count * (before.rating_mean or 0.0)
    assert after.rating_mean == round((known + 10.0) / after.rating_count, 4)


async def test_core_pages_a_users_ratings(tiny_bundle: Bundle) -> None:
    core = CatalogueCore(lambda: MemoryFeatureStore(tiny_bundle))
    user_id = int(tiny_bundle.users.ids[2])
    everything = await core.user_ratings(user_id, 0, 100)
    page = await core.user_ratings(user_id, 3, 4)
    assert page.total == everything.total == len(tiny_bundle.users.rated(2))
    assert [r.item.item_id for r in page.ratings] == [r.item.item_id for r in everything.ratings[3:7]]
    assert all(r.item.title and r.rating is not None for r in page.ratings)
    stamps = [r.timestamp for r in everything.ratings]
    assert stamps == sorted(stamps, reverse=True)
    beyond = await core.user_ratings(user_id, everything.total, 10)
    assert beyond.ratings == [] and beyond.total == everything.total


async def test_bundles_from_before_the_catalogue_still_load(tiny_artifacts: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(Bundle(tiny_artifacts).path, old)
    items = dict(np.load(old / "items.npz"))
    for name in ("rating_count", "rating_sum", "counters"):
        items.pop(name)
    np.savez(old / "items.npz", **items)
    users = dict(np.load(old / "users.npz"))
    users.pop("rated_ratings"), users.pop("rated_timestamps")
    np.savez(old / "users.npz", **users)
    (old / "items.json").write_text(json.dumps({"titles": json.loads((old / "items.json").read_text())["titles"]}))

    new_bundle, old_bundle = Bundle(tiny_artifacts), Bundle(old)
    np.testing.assert_array_equal(old_bundle.items.rating_count[:5] > 0, old_bundle.items.dense[:5, 0] > 0)
    core = CatalogueCore(lambda: MemoryFeatureStore(old_bundle))
    item = await core.item(int(old_bundle.items.ids[0]))
    assert item.tags == [] and item.links.imdb is None and item.links.tmdb is None
    assert item.links.movielens.endswith(f"/movies/{old_bundle.items.ids[0]}")
    user = await core.user_ratings(int(old_bundle.users.ids[0]), 0, 5)
    assert [r.rating for r in user.ratings] == [None] * 5 and [r.timestamp for r in user.ratings] == [0] * 5
    assert [r.item.item_id for r in user.ratings] == new_bundle.users.rated(0)[:5].tolist()
