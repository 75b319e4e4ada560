"""The CF fold-in and inner-product search, the co-visitation graph and channel, and merged recall features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from pipeline.cf import CFConfig, fit_als, interaction_matrix
from pipeline.covisit import CovisitConfig, covisit_graph, top_per_row
from pipeline.models.pairwise import candidate_ndcg, sample_pairs
from pipeline.ranking_candidates import CandidateRows
from wren.core.cf import CFModel
from wren.core.index.factory import build_index
from wren.core.recall.channels import SeenFilter
from wren.core.recall.merge import merge


def ratings(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    users, items, times = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "user_id": np.array(users, np.int64),
            "item_id": np.array(items, np.int64),
            "rating": np.float32(4.0),
            "timestamp": np.array(times, np.int64),
        }
    )


def test_fold_in_is_implicits_own_user_solve() -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    matrix = sparse.random(120, 80, density=0.08, random_state=3, format="csr", dtype=np.float32)
    matrix.data[:] = 1.0
    for alpha in (1.0, 3.0):
        model = AlternatingLeastSquares(
            factors=8, regularization=0.1, alpha=alpha, iterations=3, random_state=0, use_cg=False, num_threads=1
        )
        model.fit(matrix, show_progress=False)
        cf = CFModel(np.asarray(model.item_factors), 0.1, alpha)
        for user in (0, 7, 42):
            expected = model.recalculate_user(user, matrix[user])
            np.testing.assert_allclose(cf.fold_in(matrix[user].indices), expected, rtol=1e-4, atol=1e-5)
    assert cf.fold_in(np.array([], np.int64)) is None
    assert cf.fold_in(np.array([-1, 10_000])) is None  # unknown rows are ignored


def test_inner_product_search_through_the_cosine_index_matches_exact_scores() -> None:
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(300, 6)).astype(np.float32) * rng.uniform(0.1, 3.0, size=(300, 1)).astype(np.float32)
    cf = CFModel(factors, 0.1, 1.0)
    vectors = cf.index_vectors()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), cf.max_norm, rtol=1e-5)
    index = build_index("exact", vectors.shape[1], np.arange(300, dtype=np.int64), vectors)
    user = rng.normal(size=6).astype(np.float32)
    ids, cosines = index.search(cf.query(user)[None, :], 20)
    exact = np.argsort(-(factors @ user))[:20]
    np.testing.assert_array_equal(ids[0], exact)
    np.testing.assert_allclose(cf.inner_products(user, cosines[0]), (factors @ user)[exact], rtol=1e-4, atol=1e-4)


def test_covisit_weights_pairs_by_distance_and_keeps_the_strongest() -> None:
    frame = ratings([(1, 10, 1), (1, 20, 2), (1, 30, 3), (2, 20, 1), (2, 30, 2)])
    graph = covisit_graph(frame, np.array([10, 20, 30, 40]), CovisitConfig(window=2, normalisation=0.0))
    # user 1: 10-20 (d=1), 20-30 (d=1), 10-30 (d=2); user 2: 20-30 (d=1)
    np.testing.assert_allclose(graph.toarray(), [[0, 1, 0.5, 0], [1, 0, 2, 0], [0.5, 2, 0, 0], [0, 0, 0, 0]])
    top = top_per_row(graph.tocsr(), 1).toarray()
    np.testing.assert_allclose(top, [[0, 1, 0, 0], [0, 0, 2, 0], [0, 2, 0, 0], [0, 0, 0, 0]])
    normalised = covisit_graph(frame, np.array([10, 20, 30, 40]), CovisitConfig(window=2, normalisation=0.5))
    # counts: 10 -> 1, 20 -> 2, 30 -> 2; weight / sqrt(c_i c_j)
    assert normalised[1, 2] == pytest.approx(2 / 2) and normalised[0, 1] == pytest.approx(1 / np.sqrt(2))


def test_merge_gives_each_candidate_its_rank_in_every_channel() -> None:
    proposals = {"a": (np.array([5, 6, 7]), np.ones(3, np.float32)), "b": (np.array([7, 8]), np.ones(2, np.float32))}
    merged = merge(proposals, {"a": 0.5, "b": 0.5}, 4)
    features = dict(zip(merged.item_ids.tolist(), merged.recall_features.tolist(), strict=True))
    # ranks, then scores over each channel's best (all ones here)
    assert features[7] == pytest.approx([1 / 3, 1.0, 1.0, 1.0]) and features[5] == pytest.approx([1.0, 0.0, 1.0, 0.0])
    assert features[8] == pytest.approx([0.0, 1 / 2, 0.0, 1.0])
    assert [merged.sources(i) for i in range(len(merged))] == [
        [name for name, value in zip("ab", features[int(item)][:2], strict=True) if value > 0]
        for item in merged.item_ids
    ]


def test_interaction_matrix_and_als_are_deterministic() -> None:
    frame = ratings([(u, i, u * 10 + i) for u in range(1, 30) for i in range(1, 40) if (u * i) % 3 == 0])
    users, items = np.unique(frame.user_id), np.arange(1, 45, dtype=np.int64)
    matrix = interaction_matrix(frame, users, items)
    assert matrix.shape == (len(users), len(items)) and matrix.nnz == len(frame)
    first = fit_als(matrix, CFConfig(factors=4, iterations=3), seed=1)[1]
    np.testing.assert_array_equal(first, fit_als(matrix, CFConfig(factors=4, iterations=3), seed=1)[1])
    assert not first[items > 39].any()  # items nobody rated keep zero factors


def _rows(users: list[int], gain: list[float], hard: list[bool]) -> CandidateRows:
    n = len(users)
    return CandidateRows(
        {"x": np.zeros((n, 1), np.float32)},
        np.array(users, np.int64),
        np.arange(n, dtype=np.int64),
        np.array(gain, np.float32),
        np.array(hard),
    )


def test_pairs_stay_within_a_user_and_pair_positives_with_negatives() -> None:
    rows = _rows([1, 1, 1, 1, 2, 2, 2], [2, 0, 0, 0, 1, 0, 0], [True, True, True, False, True, True, False])
    pos, neg = sample_pairs(rows, 4, np.random.default_rng(0))
    assert len(pos) == len(neg) == 8
    assert np.all(rows.users[pos] == rows.users[neg]) and np.all(rows.gain[pos] > 0) and np.all(rows.gain[neg] == 0)
    assert set(neg[pos == 0].tolist()) <= {1, 2, 3} and (~rows.hard[neg]).sum() == 4  # half random


def test_candidate_ndcg_by_hand() -> None:
    rows = _rows([1, 1, 1, 2, 2], [0, 1, 0, 1, 1], [True, True, True, True, True])
    # user 1: the relevant row is ranked 2nd -> (1/log2 3) / 1; user 2: both relevant on top -> 1
    scores = np.array([0.9, 0.5, 0.1, 0.3, 0.2])
    assert candidate_ndcg(rows, scores, 10) == pytest.approx((1 / np.log2(3) + 1.0) / 2)


def test_seen_filter_still_excludes_rated_items() -> None:
    assert SeenFilter(np.array([3, 1])).unseen(np.array([1, 2, 3])).tolist() == [False, True, False]


def test_ease_weights_solve_the_ridge_regression_with_a_zero_diagonal() -> None:
    from pipeline.ease import EaseConfig, ease_graph, ease_weights
    from wren.core.item_graph import DenseItemGraph, SparseItemGraph

    matrix = sparse.random(60, 12, density=0.3, random_state=5, format="csr", dtype=np.float32)
    matrix.data[:] = 1.0
    kept, weights = ease_weights(matrix, EaseConfig(l2=5.0, min_count=1))
    x = matrix[:, kept].toarray().astype(np.float64)
    assert np.allclose(np.diag(weights), 0.0)
    # each column j of B minimises |x_j - X b_j|^2 + l2 |b_j|^2 subject to b_jj = 0: check the optimality
    # condition on the free coordinates (the gradient vanishes everywhere but at j)
    gram = x.T @ x + 5.0 * np.eye(len(kept))
    gradient = gram @ weights.astype(np.float64) - x.T @ x
    off_diagonal = ~np.eye(len(kept), dtype=bool)
    assert np.abs(gradient[off_diagonal]).max() < 1e-3
    dense = ease_graph(matrix, EaseConfig(l2=5.0, min_count=1))
    assert isinstance(dense, DenseItemGraph) and np.array_equal(dense.weights, weights)
    user = matrix[0].indices  # the item rows user 0 interacted with: their scores are X_u B
    expected = np.zeros(12)
    expected[kept] = x[0] @ weights
    assert np.allclose(dense.scores(user, np.ones(len(user))), expected, atol=1e-5)
    top = ease_graph(matrix, EaseConfig(l2=5.0, min_count=1, dense_items=0, neighbours=3))
    assert isinstance(top, SparseItemGraph)
    assert np.all(np.diff(top.matrix.indptr) <= 3) and top.matrix[0, 0] == 0


def test_ease_solves_over_the_most_interacted_items_only_when_capped() -> None:
    from pipeline.ease import EaseConfig, ease_weights

    matrix = sparse.random(80, 20, density=0.3, random_state=6, format="csr", dtype=np.float32)
    matrix.data[:] = 1.0
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    kept, weights = ease_weights(matrix, EaseConfig(l2=5.0, min_count=1, max_items=6))
    assert len(kept) == 6 and weights.shape == (6, 6) and np.all(np.diff(kept) > 0)
    assert counts[kept].min() >= np.sort(counts)[::-1][5]  # no left-out column was rated more often
    sub_kept, sub_weights = ease_weights(matrix[:, kept], EaseConfig(l2=5.0, min_count=1))
    assert np.array_equal(sub_kept, np.arange(6)) and np.allclose(sub_weights, weights, atol=1e-6)


def test_the_strongest_entries_of_a_dense_matrix_match_the_sparse_selection() -> None:
    from pipeline.covisit import top_per_row
    from pipeline.ease import strongest_per_row

    weights = np.random.default_rng(8).normal(size=(50, 40)).astype(np.float32)
    rows, columns = strongest_per_row(weights, 7, chunk=16)
    sparse_top = top_per_row(sparse.csr_matrix(weights), 7, by_magnitude=True).tocoo()
    assert set(zip(rows.tolist(), columns.tolist(), strict=True)) == set(
        zip(sparse_top.row.tolist(), sparse_top.col.tolist(), strict=True)
    )
    rows, columns = strongest_per_row(weights, 100)  # more than a row holds: every entry
    assert len(rows) == weights.size
