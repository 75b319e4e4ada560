"""Unit tests of the offline pipeline's pieces: split, point-in-time features, embeddings, cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from pipeline import coldstart, embeddings, features
from pipeline.config import load_config
from pipeline.split import tail_mask, time_split

GENRES = ["A", "B", "C"]


def ratings_frame(rows: list[tuple[int, int, float, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return frame.astype({"user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64"})


def catalog(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": np.arange(1, n + 1, dtype=np.int64),
            "title": [f"t{i}" for i in range(n)],
            "genres": [("A",), ("B",), ("A", "C"), ("C",), ("B", "C"), ()][:n],
            "year": np.array([1990, 0, 2000, 2010, 1995, 0][:n], np.int32),
        }
    )


def test_time_split_takes_each_users_last_fifth_with_ties_by_item() -> None:
    rows = [(1, item, 4.0, 100 + item) for item in range(1, 11)]  # user 1: 10 ratings
    rows += [(2, 5, 3.0, 50), (2, 3, 3.0, 50), (2, 4, 3.0, 40), (2, 6, 3.0, 60), (2, 1, 3.0, 70)]  # tie at 50
    split = time_split(ratings_frame(rows), 0.2)
    assert split.test[split.test.user_id == 1].item_id.tolist() == [9, 10]
    assert split.test[split.test.user_id == 2].item_id.tolist() == [1]
    # the tie (items 3 and 5 at t=50) is broken by item id, identically on every run
    assert split.train[split.train.user_id == 2].item_id.tolist() == [4, 3, 5, 6]
    assert split.user_cutoff[1] == 109


def test_time_split_rejects_bad_fraction() -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        time_split(ratings_frame([(1, 1, 4.0, 1)]), 1.0)


def test_tail_mask_floor_rule() -> None:
    frame = ratings_frame([(1, i, 4.0, i) for i in range(1, 8)])  # 7 ratings -> floor(0.5*7) = 3
    assert tail_mask(frame, 0.5).tolist() == [False] * 4 + [True] * 3


def small_world() -> tuple[pd.DataFrame, features.ItemFeatures]:
    rows = [
        (1, 1, 5.0, 10),
        (1, 2, 2.0, 20),
        (1, 3, 4.0, 30),
        (1, 4, 4.5, 40),
        (2, 1, 3.0, 15),
        (2, 3, 5.0, 25),
        (2, 5, 1.0, 35),
        (3, 1, 4.0, 12),
        (3, 4, 3.5, 22),
    ]
    train = ratings_frame(rows).sort_values(["user_id", "timestamp"]).reset_index(drop=True)
    return train, features.item_features(train, catalog(), GENRES, 3.5, 0.0)


def test_point_in_time_user_features_use_only_earlier_ratings() -> None:
    train, items = small_world()
    history = features.point_in_time_user_features(train, items, 3.5, recent_len=3)
    for row in range(len(train)):
        user, ts = train.user_id[row], train.timestamp[row]
        earlier = train[(train.user_id == user) & (train.timestamp < ts)]
        ratings = earlier.rating
        expected = np.array([len(earlier), ratings.sum(), (ratings**2).sum(), (ratings >= 3.5).sum()])
        np.testing.assert_allclose(history.counters[row], expected, rtol=1e-6)
        positives = earlier[earlier.rating >= 3.5].item_id.tolist()[::-1][:3]
        assert history.recent[row][: len(positives)].tolist() == positives
        assert (history.recent[row][len(positives) :] == -1).all()
        rated_genres = items.genres[items.rows(earlier.item_id.to_numpy())].sum(axis=0)
        np.testing.assert_allclose(history.genre_rated[row], rated_genres)


def test_point_in_time_item_features_never_see_their_own_rating() -> None:
    train, items = small_world()
    dense = features.point_in_time_item_dense(train, items, 3.5, 0.0)
    for row in range(len(train)):
        item, ts = train.item_id[row], train.timestamp[row]
        earlier = train[(train.item_id == item) & (train.timestamp < ts)]
        assert dense[row, 0] == pytest.approx(np.log1p(len(earlier)))
        expected_mean = earlier.rating.mean() if len(earlier) else 3.5
        assert dense[row, 1] == pytest.approx(expected_mean, rel=1e-5)


def test_snapshot_recent_items_are_newest_positive_first() -> None:
    train, items = small_world()
    user_ids, snapshot = features.user_snapshot(train, items, 3.5, recent_len=2)
    assert user_ids.tolist() == [1, 2, 3]
    assert snapshot.recent[0].tolist() == [4, 3]  # user 1 liked 1, 3, 4 (in that order)
    assert snapshot.recent[2].tolist() == [4, 1]
    assert snapshot.counters[1, 0] == 3


def test_item_features_fill_missing_years_with_the_median() -> None:
    _, items = small_world()
    assert items.years.tolist() == [1990, 0, 2000, 2010, 1995, 0]
    assert items.dense[1, 4] == items.fill_year == 1997  # median of 1990, 1995, 2000, 2010


def test_transition_graph_rows_are_probabilities_and_walks_follow_edges() -> None:
    sequences = [np.array([1, 2, 3]), np.array([1, 2, 4]), np.array([3, 1])]
    nodes, graph = embeddings.transition_graph(sequences)
    assert nodes.tolist() == [1, 2, 3, 4]
    sums = np.asarray(graph.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums[sums > 0], 1.0)
    walks = embeddings.random_walks(graph, walks_per_node=5, length=6, rng=np.random.default_rng(0))
    dense = graph.toarray()
    for walk in walks:
        steps = walk[walk >= 0]
        for a, b in zip(steps[:-1], steps[1:], strict=True):
            assert dense[a, b] > 0
    again = embeddings.random_walks(graph, walks_per_node=5, length=6, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(walks, again)


@pytest.mark.parametrize("method", ["item2vec", "deepwalk"])
def test_embeddings_are_deterministic_for_a_seed(method: str) -> None:
    rng = np.random.default_rng(1)
    rows = [(u, int(i), 4.0, t) for u in range(1, 30) for t, i in enumerate(rng.choice(40, 12, replace=False) + 1)]
    train = ratings_frame(rows).sort_values(["user_id", "timestamp"]).reset_index(drop=True)
    config = embeddings.EmbeddingConfig(method=method, dim=8, epochs=2)
    ids = np.arange(1, 41)
    first, trained = embeddings.train_embeddings(train, ids, 3.5, config, seed=3)
    second, _ = embeddings.train_embeddings(train, ids, 3.5, config, seed=3)
    other, _ = embeddings.train_embeddings(train, ids, 3.5, config, seed=4)
    assert trained.sum() > 30
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_unknown_embedding_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown embedding method"):
        embeddings.train_embeddings(
            ratings_frame([(1, 1, 4.0, 1)]), np.array([1]), 3.5, embeddings.EmbeddingConfig(method="glove"), 0
        )


def test_cold_items_get_content_neighbour_embeddings_and_rare_ones_are_shrunk() -> None:
    vectors = np.array([[1, 0], [0, 1], [0, 0], [0.6, 0.8], [0, 0]], np.float32)
    trained = np.array([True, True, False, True, False])
    interactions = np.array([10, 10, 0, 1, 0])
    content = sparse.csr_matrix(np.array([[1, 0], [0, 1], [1, 0], [0, 1], [0, 0]], np.float32))
    filled, has, report = coldstart.fill_cold_embeddings(vectors, trained, interactions, content, 3, 1)
    np.testing.assert_allclose(filled[2], [1, 0])  # unseen item 2 shares content with warm item 0
    assert not has[4]  # no content and no interactions: nothing to place it by
    expected = (1 * np.array([0.6, 0.8]) + 3 * np.array([0, 1])) / 4  # rare item: shrinkage blend
    np.testing.assert_allclose(filled[3], expected, rtol=1e-6)
    assert report == {
        "warm_items": 2,
        "rare_items_shrunk_to_content": 1,
        "unseen_items_from_content": 1,
        "items_without_embedding": 1,
    }


def test_activity_and_demographic_segments() -> None:
    ids = np.array([1, 2, 3])
    index, names, kind = coldstart.assign_segments(ids, np.array([0, 5, 150]), None)
    assert kind == "activity" and names[0] == coldstart.NEW_SEGMENT
    assert [names[i] for i in index] == ["new", "activity:light", "activity:heavy"]
    demographics = pd.DataFrame({"user_id": [1, 2, 3], "age": [15, 30, 60], "gender": ["F", "M", "F"]})
    index, names, kind = coldstart.assign_segments(ids, np.array([3, 3, 3]), demographics)
    assert kind == "demographics"
    assert [names[i] for i in index] == ["age:<18|gender:F", "age:25-34|gender:M", "age:55+|gender:F"]


def test_config_file_overrides_defaults_and_rejects_unknown_keys(tmp_path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("seed = 3\n[embedding]\nmethod = 'deepwalk'\n[ranking]\nmodels = ['ncf']\n")
    config = load_config(good, seed=9)
    assert (config.seed, config.embedding.method, config.ranking.models) == (9, "deepwalk", ("ncf",))
    bad = tmp_path / "bad.toml"
    bad.write_text("[embedding]\nsize = 3\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_config(bad)
