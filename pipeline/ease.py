"""EASE (Steck 2019): the closed-form item-to-item linear model, B = -P / diag(P) with P = (XᵀX + λI)⁻¹ and a
zero diagonal, kept as each item's strongest weights for the item-graph recall channel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline.cf import interaction_matrix
from pipeline.covisit import top_per_row


@dataclass(frozen=True)
class EaseConfig:
    """l2: the ridge λ; min_count: items with fewer training interactions stay out of the model (the solve is
    cubic in the items kept); neighbours: weights kept per item, by magnitude (negative ones too)."""

    l2: float = 200.0
    min_count: int = 3
    neighbours: int = 200


def ease_weights(matrix: sparse.csr_matrix, config: EaseConfig) -> tuple[np.ndarray, np.ndarray]:
    """(kept columns, float32 B [kept, kept]) of a binary users x items matrix: the columns with at least
    `min_count` interactions and the EASE weights between them."""
    kept = np.flatnonzero(np.asarray(matrix.sum(axis=0)).ravel() >= config.min_count)
    columns = matrix[:, kept]
    gram = (columns.T @ columns).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += config.l2
    inverse = np.linalg.inv(gram) if len(kept) else gram
    weights = -inverse / np.diag(inverse)[None, :] if len(kept) else gram
    np.fill_diagonal(weights, 0.0)
    return kept, weights.astype(np.float32)


def ease_graph(ratings: pd.DataFrame, item_ids: np.ndarray, config: EaseConfig) -> sparse.csr_matrix:
    """CSR [n, n] float32 over the rows of the ascending `item_ids`: row i holds B[i, :], what rating item i adds
    to every other item's score (a user's scores are the sum of the rows of everything they rated)."""
    n = len(item_ids)
    matrix = interaction_matrix(ratings, np.unique(ratings["user_id"].to_numpy(np.int64)), item_ids)
    kept, weights = ease_weights(matrix, config)
    if len(kept) == 0:
        return sparse.csr_matrix((n, n), dtype=np.float32)
    small = sparse.csr_matrix(weights)
    top = top_per_row(small, config.neighbours, by_magnitude=True).tocoo()
    return sparse.csr_matrix((top.data, (kept[top.row], kept[top.col])), shape=(n, n), dtype=np.float32)
