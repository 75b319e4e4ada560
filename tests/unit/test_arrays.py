"""The shared array helpers: id lookup, normalisation, top-k, rank scores, mean embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from wren.core.arrays import IdIndex, l2_normalize, mean_embeddings, rank_scores, top_k


def test_id_index_finds_rows_and_marks_absent_ids() -> None:
    index = IdIndex(np.array([3, 7, 10], np.int64))
    assert index.rows(np.array([10, 3, 4, 11, 0])).tolist() == [2, 0, -1, -1, -1]
    assert index.row(7) == 1 and index.row(8) == -1 and index.row(100) == -1
    assert index.contains(np.array([7, 8])).tolist() == [True, False]
    assert IdIndex(np.empty(0, np.int64)).rows(np.array([1])).tolist() == [-1]


def test_id_index_rejects_unsorted_or_repeated_ids() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        IdIndex(np.array([3, 3, 4]))
    with pytest.raises(ValueError, match="strictly increasing"):
        IdIndex(np.array([5, 4]))


def test_l2_normalize_keeps_zero_rows_zero() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_top_k_orders_best_first_and_clips_k() -> None:
    columns, values = top_k(np.array([[0.1, 0.9, 0.5, 0.7]], np.float32), 3)
    assert columns.tolist() == [[1, 3, 2]]
    np.testing.assert_allclose(values, [[0.9, 0.7, 0.5]])
    assert top_k(np.zeros((2, 2), np.float32), 5)[0].shape == (2, 2)
    assert top_k(np.zeros((2, 2), np.float32), 0)[0].shape == (2, 0)


def test_rank_scores_are_one_over_one_plus_rank() -> None:
    np.testing.assert_allclose(rank_scores(3), [1.0, 0.5, 1 / 3], rtol=1e-6)


def test_mean_embeddings_skip_padding_and_items_without_embedding() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], np.float32)
    has = np.array([True, True, False])
    out = mean_embeddings(np.array([[0, 1, -1], [2, -1, -1]]), embeddings, has)
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.0, 0.0]])
