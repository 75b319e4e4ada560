"""Co-visitation graph: items a user rated close together in time, weighted by how close, normalised by
how often each item occurs, top neighbours per item."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline.config_section import ConfigSection


class CovisitConfig(ConfigSection):
    """window: how many later ratings of the same user each rating pairs with (weight 1 / distance);
    normalisation: pair weights are divided by (count_i * count_j) ** normalisation (0 keeps raw counts,
    which favours popular items; 0.5 is cosine-like); neighbours: strongest neighbours kept per item;
    seeds / decay: the serving channel sums the neighbours of the user's `seeds` newest items with weights
    decay ** position."""

    window: int = 10
    normalisation: float = 0.2
    neighbours: int = 200
    seeds: int = 10
    decay: float = 0.9


def covisit_graph(ratings: pd.DataFrame, item_ids: np.ndarray, config: CovisitConfig) -> sparse.csr_matrix:
    """CSR [n, n] float32 over the rows of the ascending `item_ids`: row i holds item i's strongest
    `config.neighbours` co-visited items (no self loops). Ratings of unknown items are ignored."""
    n = len(item_ids)
    ordered = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    items = np.searchsorted(item_ids, ordered["item_id"].to_numpy(np.int64))
    known = (items < n) & (item_ids[np.minimum(items, n - 1)] == ordered["item_id"].to_numpy(np.int64))
    users = ordered["user_id"].to_numpy(np.int64)[known]
    items = items[known]
    heads, tails, weights = [], [], []
    for distance in range(1, config.window + 1):
        same = users[distance:] == users[:-distance]
        a, b = items[:-distance][same], items[distance:][same]
        heads += [a, b]
        tails += [b, a]
        weights += [np.full(2 * len(a), 1.0 / distance, np.float64)]
    if not heads:
        return sparse.csr_matrix((n, n), dtype=np.float32)
    graph = sparse.csr_matrix((np.concatenate(weights), (np.concatenate(heads), np.concatenate(tails))), shape=(n, n))
    graph.sum_duplicates()
    graph.setdiag(0)
    graph.eliminate_zeros()
    counts = np.maximum(np.bincount(items, minlength=n).astype(np.float64), 1.0)
    scale = sparse.diags(counts**-config.normalisation)
    return top_per_row((scale @ graph @ scale).tocsr(), config.neighbours)


def top_per_row(matrix: sparse.csr_matrix, keep: int, by_magnitude: bool = False) -> sparse.csr_matrix:
    """The `keep` largest entries of each row (largest in absolute value with `by_magnitude`; ties by column),
    as float32 CSR."""
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    lengths = np.diff(indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    order = np.lexsort((indices, -(np.abs(data) if by_magnitude else data), rows))
    rank = np.arange(len(order)) - np.repeat(indptr[:-1], lengths)
    kept = order[rank < keep]
    kept_rows = rows[kept]
    new_indptr = np.concatenate([[0], np.cumsum(np.bincount(kept_rows, minlength=matrix.shape[0]))])
    return sparse.csr_matrix(
        (data[kept].astype(np.float32), indices[kept], new_indptr.astype(np.int64)), shape=matrix.shape
    )
