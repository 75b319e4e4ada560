"""EASE (Steck 2019): the closed-form item-to-item linear model, B = -P / diag(P) with P = (XᵀX + λI)⁻¹ and a
zero diagonal, served whole to the item-graph recall channel (or, for a large catalogue, as each item's strongest
weights)."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from pipeline.config_section import ConfigSection
from wren.core.item_graph import DenseItemGraph, ItemGraph, SparseItemGraph


class EaseConfig(ConfigSection):
    """l2: the ridge λ; min_count: items with fewer training interactions stay out of the model (the solve is
    cubic in the items kept); dense_items: up to this many kept items the graph holds every weight (4 bytes
    each: 75 MB for ml-latest-small's 4,333); above it, the `neighbours` strongest per item, by magnitude
    (negative ones too). max_items: at most this many items, the most interacted with, enter the solve
    (10,000: a 400 MB Gram matrix and about a minute on 2 cores; ml-25m has 62k titles, most rarely rated)."""

    l2: float = 200.0
    min_count: int = 3
    max_items: int = 10_000
    dense_items: int = 8000
    neighbours: int = 200


def ease_weights(matrix: sparse.csr_matrix, config: EaseConfig) -> tuple[np.ndarray, np.ndarray]:
    """(kept columns, float32 B [kept, kept]) of a binary users x items matrix: the columns with at least
    `min_count` interactions (at most `max_items` of them, the most interacted with) and the EASE weights
    between them."""
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    kept = np.flatnonzero(counts >= config.min_count)
    if len(kept) > config.max_items:  # the most interacted with; ties by column, so the choice is deterministic
        kept = np.sort(kept[np.lexsort((kept, -counts[kept]))[: config.max_items]])
    columns = matrix[:, kept]
    gram = (columns.T @ columns).toarray().astype(np.float32)
    gram[np.diag_indices_from(gram)] += config.l2
    inverse = _spd_inverse(gram) if len(kept) else gram
    weights = -inverse / np.diag(inverse)[None, :] if len(kept) else gram
    np.fill_diagonal(weights, 0.0)
    return kept, weights.astype(np.float32)


def _spd_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite float32 matrix through its Cholesky factor (a third of the
    time of a general float64 inverse); float64 LU when float32 Cholesky breaks down."""
    factor, info = lapack.spotrf(matrix, lower=False)
    if info == 0:
        upper, info = lapack.spotri(factor, lower=False)
        if info == 0:
            return np.triu(upper) + np.triu(upper, 1).T
    return np.linalg.inv(matrix.astype(np.float64)).astype(np.float32)


def ease_graph(matrix: sparse.csr_matrix, config: EaseConfig) -> ItemGraph:
    """The EASE weights between the item rows (columns) of a binary users x items matrix: row i holds B[i, :],
    what an interaction with item i adds to every other item's score (a user's scores are the sum of the rows
    of everything they rated)."""
    n = matrix.shape[1]
    kept, weights = ease_weights(matrix, config)
    if len(kept) <= config.dense_items:
        return DenseItemGraph(kept, weights, n)
    rows, columns = strongest_per_row(weights, config.neighbours)
    graph = sparse.csr_matrix((weights[rows, columns], (kept[rows], kept[columns])), shape=(n, n), dtype=np.float32)
    graph.eliminate_zeros()
    return SparseItemGraph(graph)


def strongest_per_row(weights: np.ndarray, keep: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the `keep` entries of largest magnitude in each row of a dense matrix, a block of
    rows at a time (a sparse copy of a 10k x 10k matrix would sort 10^8 entries)."""
    n_rows, n_columns = weights.shape
    keep = min(keep, n_columns)
    rows, columns = [], []
    for start in range(0, n_rows, chunk):
        block = np.abs(weights[start : start + chunk])
        top = (
            np.argpartition(-block, keep - 1, axis=1)[:, :keep]
            if keep < n_columns
            else np.broadcast_to(np.arange(n_columns), block.shape)
        )
        rows.append(np.repeat(np.arange(start, start + len(block)), keep))
        columns.append(np.sort(top, axis=1).ravel())
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(columns).astype(np.int64)
