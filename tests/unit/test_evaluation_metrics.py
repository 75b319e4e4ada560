"""Top-K metrics against hand-computed values, the random split protocol, and the baseline recommenders."""
# Long: each metric and baseline is checked against hand-computed values, which take the room.

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from pipeline.cf import CFConfig
from pipeline.evaluation.baselines import (
    BASELINE_NAMES,
    BPRConfig,
    fit_baselines,
    jaccard_similarity,
    top_k_unseen,
)
from pipeline.evaluation.metrics import interaction_counts, list_metrics, relevant_items, sample_interval
from pipeline.evaluation.report import comparison_chart, comparison_table
from pipeline.split import PROTOCOLS, make_split, random_split, time_split

L3 = math.log2(3)  # 1 / log2(i + 1) discounts at positions 1, 2, 3: 1, 1/log2(3) = 0.6309, 1/log2(4) = 0.5

# Two users, k = 3, catalogue of 10 items.
LISTS = {1: np.array([10, 20, 30]), 2: np.array([50, 60, 70])}
RELEVANT = {1: np.array([20, 40]), 2: np.array([50, 70, 80, 90])}
POPULARITY = {10: 5, 20: 3, 30: 1, 50: 2, 70: 4}  # item 60 has no training interaction: counts 0
# user 1: one hit, at position 2; |rel| = 2
#   P = 1/3, R = 1/2, DCG = 1/log2(3), IDCG = 1 + 1/log2(3), AP = (1/2) / min(2, 3) = 1/4
# user 2: hits at positions 1 and 3; |rel| = 4
#   P = 2/3, R = 2/4, DCG = 1 + 1/2, IDCG (min(4, 3) = 3 positions) = 1 + 1/log2(3) + 1/2,
#   AP = (1/1 + 2/3) / min(4, 3) = 5/9
NDCG_1 = (1 / L3) / (1 + 1 / L3)  # 0.38685
NDCG_2 = 1.5 / (1.5 + 1 / L3)  # 0.70393
EXPECTED = {
    "ndcg_at_3": (NDCG_1 + NDCG_2) / 2,  # 0.54539
    "precision_at_3": (1 / 3 + 2 / 3) / 2,  # 0.5
    "recall_at_3": (1 / 2 + 2 / 4) / 2,  # 0.5
    "map_at_3": (1 / 4 + 5 / 9) / 2,  # 29/72 = 0.40278
    "coverage": 6 / 10,  # 10, 20, 30, 50, 60, 70 over a catalogue of 10
    "mean_popularity": (5 + 3 + 1 + 2 + 0 + 4) / 6,  # 2.5, over the 6 list slots
    "users": 2.0,
    # per-user standard deviations (ddof 1): two values a, b give |a - b| / sqrt(2)
    "ndcg_at_3_sd": abs(NDCG_1 - NDCG_2) / math.sqrt(2),
    "precision_at_3_sd": (1 / 3) / math.sqrt(2),
    "recall_at_3_sd": 0.0,
    "map_at_3_sd": abs(1 / 4 - 5 / 9) / math.sqrt(2),
}


def assert_metrics(actual: dict[str, float], expected: dict[str, float]) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, abs=1e-12), name


def test_list_metrics_match_the_hand_computed_example() -> None:
    assert_metrics(list_metrics(LISTS, RELEVANT, 3, 10, POPULARITY), EXPECTED)
    assert EXPECTED["ndcg_at_3"] == pytest.approx(0.545385, abs=1e-6)
    assert EXPECTED["map_at_3"] == pytest.approx(0.402778, abs=1e-6)


def test_the_sample_interval_follows_the_formula_and_vanishes_for_the_whole_population() -> None:
    assert sample_interval(0.3, 100, 10_000) == pytest.approx(1.96 * 0.03 * math.sqrt(9_900 / 9_999))
    assert sample_interval(0.3, 500, 500) == 0.0
    assert sample_interval(0.3, 400, 1_000) < sample_interval(0.3, 100, 1_000)
    for sample, population in ((0, 10), (11, 10)):
        with pytest.raises(ValueError, match="sample"):
            sample_interval(0.3, sample, population)


def test_sampled_ndcg_falls_within_its_interval_about_as_often_as_stated() -> None:
    """A population of 3,000 users with random lists; 200 seeded samples of 300 users each: the 95 %
    interval of each sample covers the population's NDCG in 90-99 % of the samples."""
    rng = np.random.default_rng(5)
    lists = {user: rng.choice(60, 10, replace=False) for user in range(3_000)}
    relevant = {user: np.sort(rng.choice(60, rng.integers(1, 12), replace=False)) for user in range(3_000)}
    full = list_metrics(lists, relevant, 10, 60, {})["ndcg_at_10"]
    covered = 0
    for seed in range(200):
        users = np.random.default_rng(seed).choice(3_000, 300, replace=False)
        sample = list_metrics(lists, {int(u): relevant[int(u)] for u in users}, 10, 60, {})
        covered += abs(sample["ndcg_at_10"] - full) <= sample_interval(sample["ndcg_at_10_sd"], 300, 3_000)
    assert 180 <= covered <= 198


def test_popularity_may_be_a_series_of_training_counts() -> None:
    train = pd.DataFrame({"item_id": [10] * 5 + [20] * 3 + [30] + [50] * 2 + [70] * 4})
    counts = interaction_counts(train)
    assert counts.to_dict() == POPULARITY
    assert_metrics(list_metrics(LISTS, RELEVANT, 3, 10, counts), EXPECTED)


def test_a_user_without_a_list_counts_zero_and_is_not_skipped() -> None:
    relevant = {**RELEVANT, 3: np.array([10])}
    result = list_metrics(LISTS, relevant, 3, 10, POPULARITY)
    # the sums of the two-user example, now over 3 users; coverage and popularity only see listed slots
    assert result["precision_at_3"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert result["recall_at_3"] == pytest.approx((1 / 2 + 2 / 4 + 0) / 3)
    assert result["ndcg_at_3"] == pytest.approx((NDCG_1 + NDCG_2 + 0) / 3)
    assert result["map_at_3"] == pytest.approx((1 / 4 + 5 / 9 + 0) / 3)
    assert result["users"] == 3.0
    assert result["coverage"] == pytest.approx(0.6)
    assert result["mean_popularity"] == pytest.approx(2.5)


def test_lists_are_truncated_to_k_and_short_lists_score_lower() -> None:
    # user 1's 4th item (40) is relevant but beyond k = 3: the result is the two-user example's
    longer = {1: np.array([10, 20, 30, 40]), 2: LISTS[2]}
    assert_metrics(list_metrics(longer, RELEVANT, 3, 10, POPULARITY), EXPECTED)
    # a one-item list [40] for user 1 (|rel| = 2): P = 1/3, R = 1/2, NDCG = 1 / (1 + 1/log2(3)), AP = 1 / 2
    short = list_metrics({1: np.array([40])}, {1: RELEVANT[1]}, 3, 10, POPULARITY)
    assert short["precision_at_3"] == pytest.approx(1 / 3)
    assert short["recall_at_3"] == pytest.approx(1 / 2)
    assert short["ndcg_at_3"] == pytest.approx(1 / (1 + 1 / L3))
    assert short["map_at_3"] == pytest.approx(1 / 2)
    assert short["coverage"] == pytest.approx(1 / 10)
    assert short["mean_popularity"] == 0.0


def test_a_perfect_list_scores_one_and_users_outside_relevant_are_ignored() -> None:
    lists = {1: np.array([20, 40, 99]), 7: np.array([1, 2, 3])}
    result = list_metrics(lists, {1: RELEVANT[1]}, 3, 10, POPULARITY)
    # hits at 1 and 2 of |rel| = 2: NDCG = 1, recall = 1, AP = (1 + 1) / 2 = 1, precision = 2/3
    assert result["ndcg_at_3"] == pytest.approx(1.0)
    assert result["recall_at_3"] == pytest.approx(1.0)
    assert result["map_at_3"] == pytest.approx(1.0)
    assert result["precision_at_3"] == pytest.approx(2 / 3)
    assert result["users"] == 1.0
    assert result["coverage"] == pytest.approx(3 / 10)  # user 7's list is not evaluated


def test_duplicates_in_a_list_raise_naming_the_user() -> None:
    with pytest.raises(ValueError, match="user 2 "):
        list_metrics({1: LISTS[1], 2: np.array([50, 60, 50])}, RELEVANT, 3, 10, POPULARITY)
    with pytest.raises(ValueError, match="user 1 "):  # beyond k still counts as a broken list
        list_metrics({1: np.array([10, 20, 30, 10])}, RELEVANT, 3, 10, POPULARITY)


def test_empty_evaluation_and_bad_arguments() -> None:
    assert list_metrics(LISTS, {}, 3, 10, POPULARITY) == {
        "ndcg_at_3": 0.0,
        "precision_at_3": 0.0,
        "recall_at_3": 0.0,
        "map_at_3": 0.0,
        "coverage": 0.0,
        "mean_popularity": 0.0,
        "users": 0.0,
        "ndcg_at_3_sd": 0.0,
        "precision_at_3_sd": 0.0,
        "recall_at_3_sd": 0.0,
        "map_at_3_sd": 0.0,
    }
    with pytest.raises(ValueError, match="k must"):
        list_metrics(LISTS, RELEVANT, 0, 10, POPULARITY)
    with pytest.raises(ValueError, match="catalog_size"):
        list_metrics(LISTS, RELEVANT, 3, 0, POPULARITY)


def test_relevant_items_keeps_every_held_out_item_sorted_and_distinct() -> None:
    test = pd.DataFrame({"user_id": [2, 1, 2, 1, 2], "item_id": [70, 40, 50, 20, 70], "rating": [0.5, 5, 1, 3, 2]})
    relevant = relevant_items(test)
    assert list(relevant) == [1, 2]
    np.testing.assert_array_equal(relevant[1], [20, 40])
    np.testing.assert_array_equal(relevant[2], [50, 70])  # a 0.5-star rating is relevant too
    assert relevant[1].dtype == np.int64
    assert relevant_items(test.iloc[:0]) == {}


# ---------------------------------------------------------------------------- random split


def synthetic_ratings(users: int = 30, items: int = 60, seed: int = 0) -> pd.DataFrame:
    """User u rates min(u, items // 2) distinct random items at random times, rows in random order."""
    rng = np.random.default_rng(seed)
    sizes = {u: min(u, items // 2) for u in range(1, users + 1)}
    rows = [(u, int(i)) for u, size in sizes.items() for i in rng.choice(items, size=size, replace=False)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    frame["rating"] = rng.integers(1, 11, len(frame)) / 2
    frame["timestamp"] = rng.integers(0, 1000, len(frame))  # ties included
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_random_split_sizes_disjoint_and_covering() -> None:
    ratings = synthetic_ratings()
    split = random_split(ratings, 0.25, 42)
    n = ratings.groupby("user_id").size()
    test_sizes = split.test.groupby("user_id").size().reindex(n.index, fill_value=0)
    assert (test_sizes == np.floor(n * 0.25).astype(int)).all()
    pairs = ["user_id", "item_id"]
    assert split.train.merge(split.test, on=pairs).empty
    together = pd.concat([split.train, split.test]).sort_values(pairs).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, ratings.sort_values(pairs).reset_index(drop=True))
    for part in (split.train, split.test):
        assert isinstance(part.index, pd.RangeIndex)
        pd.testing.assert_frame_equal(
            part, part.sort_values(["user_id", "timestamp", "item_id"]).reset_index(drop=True)
        )
    pd.testing.assert_series_equal(split.user_cutoff, split.test.groupby("user_id")["timestamp"].min())


def test_random_split_is_deterministic_for_a_seed_and_ignores_row_order() -> None:
    ratings = synthetic_ratings()
    first = random_split(ratings, 0.25, 42)
    again = random_split(ratings, 0.25, 42)
    reordered = random_split(ratings.sample(frac=1.0, random_state=7).reset_index(drop=True), 0.25, 42)
    other = random_split(ratings, 0.25, 43)
    for split in (again, reordered):
        pd.testing.assert_frame_equal(split.train, first.train)
        pd.testing.assert_frame_equal(split.test, first.test)
    assert len(other.test) == len(first.test)
    assert not other.test[["user_id", "item_id"]].equals(first.test[["user_id", "item_id"]])


def test_random_split_is_not_a_time_split() -> None:
    ratings = synthetic_ratings()
    assert not random_split(ratings, 0.25, 42).test.equals(time_split(ratings, 0.25).test)


def test_make_split_dispatches_and_rejects_unknown_protocols() -> None:
    ratings = synthetic_ratings()
    assert PROTOCOLS == ("time", "random")
    pd.testing.assert_frame_equal(make_split(ratings, "random", 0.25, 5).test, random_split(ratings, 0.25, 5).test)
    pd.testing.assert_frame_equal(make_split(ratings, "time", 0.2, 5).test, time_split(ratings, 0.2).test)
    with pytest.raises(ValueError, match="'leave-one-out'"):
        make_split(ratings, "leave-one-out", 0.2, 5)
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(ratings, 1.0, 5)


# ---------------------------------------------------------------------------- baselines

# 6 users, 8 items. Interaction counts: item 1: 5, item 2: 4, items 3-7: 2 each, item 8: 1.
# Items 1 and 2 are watched together by users 1-4; user 5 watched item 1 (and 7) without item 2.
TINY = {1: [1, 2, 3], 2: [1, 2, 4], 3: [1, 2, 5], 4: [1, 2, 6], 5: [1, 7], 6: [3, 4, 5, 6, 7, 8]}
SMALL_CF = CFConfig(factors=8, regularization=0.05, alpha=1.0, iterations=5)
SMALL_BPR = BPRConfig(factors=8, learning_rate=0.01, regularization=0.01, iterations=20)


def tiny_ratings() -> pd.DataFrame:
    rows = [(u, i, 4.0, 100 * u + i) for u, items in TINY.items() for i in items]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture(scope="module")
def tiny_baselines() -> dict[str, object]:
    fitted = fit_baselines(tiny_ratings(), seed=3, cf=SMALL_CF, bpr=SMALL_BPR)
    assert [b.name for b in fitted] == list(BASELINE_NAMES)
    return {b.name: b for b in fitted}


@pytest.mark.parametrize("name", BASELINE_NAMES)
def test_baselines_never_recommend_training_items(tiny_baselines: dict, name: str) -> None:
    lists = tiny_baselines[name].recommend(np.array(list(TINY)), 4)
    assert list(lists) == list(TINY)
    for user, items in lists.items():
        assert items.dtype == np.int64
        assert len(set(items.tolist())) == len(items), (user, items)
        assert not set(items.tolist()) & set(TINY[user]), (user, items)
        assert len(items) == min(4, 8 - len(TINY[user]))  # user 6 has only items 1 and 2 left
        assert set(items.tolist()) <= set(range(1, 9))


def test_popularity_follows_the_count_order(tiny_baselines: dict) -> None:
    # count order: 1 (5), 2 (4), 3..7 (2 each, ties by id), 8 (1)
    lists = tiny_baselines["popularity"].recommend(np.array([1, 5, 6, 99]), 3)
    assert lists[1].tolist() == [4, 5, 6]
    assert lists[5].tolist() == [2, 3, 4]
    assert lists[6].tolist() == [1, 2]
    assert lists[99].tolist() == [1, 2, 3]  # unknown to training: the plain popularity list
    assert tiny_baselines["popularity"].recommend(np.array([6]), 10)[6].tolist() == [1, 2]


def test_unknown_users_get_the_popularity_list_from_every_baseline(tiny_baselines: dict) -> None:
    for baseline in tiny_baselines.values():
        assert baseline.recommend(np.array([42]), 3)[42].tolist() == [1, 2, 3]


def test_cooccurrence_ranks_the_co_watched_item_first(tiny_baselines: dict) -> None:
    # Jaccard: S_12 = C_12 / (C_11 + C_22 - C_12) = 4 / (5 + 4 - 4) = 0.8.
    # User 5 (items 1, 7) scores item 2: S_12 + S_72 = 0.8 + 0 = 0.8; item 3: S_13 + S_73 =
    # 1/(5+2-1) + 1/(2+2-1) = 1/6 + 1/3 = 0.5; items 4-6 likewise 0.5; item 8: 0 + 1/(2+1-1) = 0.5.
    lists = tiny_baselines["cooccurrence"].recommend(np.array([5]), 3)
    assert lists[5][0] == 2
    assert set(lists[5][1:].tolist()) <= {3, 4, 5, 6, 8}
    similarity = tiny_baselines["cooccurrence"].similarity.toarray()
    assert similarity[0, 1] == pytest.approx(0.8)  # columns are item ids 1..8 in order
    assert similarity[0, 0] == pytest.approx(1.0)
    assert similarity[1, 7] == 0.0  # items 2 and 8 never co-occur


def test_jaccard_similarity_stays_sparse() -> None:
    seen = sparse.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 1]], np.float32))
    similarity = jaccard_similarity(seen)
    assert sparse.issparse(similarity) and similarity.nnz == 8
    np.testing.assert_allclose(similarity.toarray(), [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])


def test_top_k_unseen_masks_orders_and_breaks_ties_by_column() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.3], [5.0, 4.0, 3.0, 2.0, 1.0]])
    seen = sparse.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 1, 1, 1, 0]], np.float32))
    top = top_k_unseen(scores, seen, 3)
    assert [row.tolist() for row in top] == [[3, 2, 4], [4]]
    tied = top_k_unseen(np.array([[1.0, 2.0, 2.0, 2.0]]), sparse.csr_matrix((1, 4)), 4)
    assert tied[0].tolist() == [1, 2, 3, 0]


def test_fit_baselines_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="knn"):
        fit_baselines(tiny_ratings(), seed=0, names=("popularity", "knn"))


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factor_baselines_are_deterministic_for_a_seed(name: str) -> None:
    ratings = synthetic_ratings(users=40, items=30, seed=2)
    users = np.unique(ratings["user_id"])

    def lists(seed: int) -> tuple[dict, np.ndarray]:
        (model,) = fit_baselines(ratings, seed=seed, cf=SMALL_CF, bpr=SMALL_BPR, names=(name,))
        return model.recommend(users, 5), model.item_factors

    first, factors = lists(11)
    again, factors_again = lists(11)
    _, other_factors = lists(12)
    np.testing.assert_array_equal(factors, factors_again)
    assert first.keys() == again.keys()
    assert all(np.array_equal(first[u], again[u]) for u in first)
    assert not np.array_equal(factors, other_factors)
    seen = ratings.groupby("user_id")["item_id"].apply(set)
    assert all(not set(first[u].tolist()) & seen[u] for u in first)


# ---------------------------------------------------------------------------- report


def test_comparison_table_and_chart(tmp_path) -> None:
    rows = {"popularity": list_metrics(LISTS, RELEVANT, 3, 10, POPULARITY), "wren": {"ndcg_at_3": 0.5}}
    table = comparison_table(rows, k=3).splitlines()
    assert table[0] == "| system | NDCG@3 | Precision@3 | Recall@3 | MAP@3 | coverage | mean popularity |"
    assert table[2] == "| popularity | 0.5454 | 0.5000 | 0.5000 | 0.4028 | 60.00% | 2.5 |"
    assert table[3] == "| wren | 0.5000 | – | – | – | – | – |"
    path = tmp_path / "chart" / "comparison.png"
    comparison_chart(rows, path, "tiny", k=3)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
