"""Item graphs: dense and sparse forms score alike, and both survive the bundle's array round trip."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from wren.core.item_graph import DenseItemGraph, SparseItemGraph, item_graph_from_arrays

N = 16
COVERED = np.array([1, 2, 4, 6, 7, 8, 9, 10, 11, 12, 13, 15])  # 12 rows: up to 2 touched, a weighted row sum


def _weights() -> np.ndarray:
    weights = np.random.default_rng(3).normal(size=(len(COVERED), len(COVERED))).astype(np.float32)
    np.fill_diagonal(weights, 0.0)
    return weights


def _full(weights: np.ndarray) -> np.ndarray:
    full = np.zeros((N, N), np.float32)
    full[np.ix_(COVERED, COVERED)] = weights
    return full


def test_dense_scores_are_the_weighted_sum_of_the_touched_rows() -> None:
    weights = _weights()
    graph = DenseItemGraph(COVERED, weights, N)
    rows, scale = np.array([2, 0, 6]), np.array([1.0, 5.0, 0.5])  # row 0 is not covered: it adds nothing
    expected = _full(weights)[2] + 0.5 * _full(weights)[6]
    assert np.allclose(graph.scores(rows, scale), expected, atol=1e-6)
    assert np.all(graph.scores(np.array([0, 3]), np.ones(2)) == 0)  # nothing covered: all zero
    assert np.all(graph.scores(np.array([1]), np.ones(1))[[0, 3, 5, 14]] == 0)  # uncovered items get nothing


def test_a_user_touching_many_rows_is_scored_alike_by_the_whole_block_product() -> None:
    weights = _weights()
    graph = DenseItemGraph(COVERED, weights, N)
    rows, scale = np.array([1, 2, 4, 6, 0]), np.array([1.0, 0.5, 2.0, 0.25, 9.0])  # 4 of 12: one block product
    expected = _full(weights)[1] + 0.5 * _full(weights)[2] + 2.0 * _full(weights)[4] + 0.25 * _full(weights)[6]
    assert np.allclose(graph.scores(rows, scale), expected, atol=1e-5)


def test_dense_and_sparse_forms_of_one_matrix_score_the_same() -> None:
    weights = _weights()
    dense = DenseItemGraph(COVERED, weights, N)
    csr = SparseItemGraph(sparse.csr_matrix(_full(weights)))
    rows, scale = np.array([4, 1, 5]), np.array([0.9, 0.81, 0.729])
    assert np.allclose(dense.scores(rows, scale), csr.scores(rows, scale), atol=1e-6)


def test_both_forms_round_trip_through_their_arrays() -> None:
    weights = _weights()
    rows, scale = np.array([1, 6]), np.array([1.0, 2.0])
    for graph in (DenseItemGraph(COVERED, weights, N), SparseItemGraph(sparse.csr_matrix(_full(weights)))):
        again = item_graph_from_arrays(graph.arrays())
        assert type(again) is type(graph) and again.n == N
        assert np.array_equal(again.scores(rows, scale), graph.scores(rows, scale))


def test_dense_graph_rejects_weights_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="covered rows"):
        DenseItemGraph(COVERED, np.zeros((3, 3), np.float32), N)
