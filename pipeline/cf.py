"""Matrix factorisation for implicit feedback with `implicit`: the CF recall channel and the ALS baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline.config_section import ConfigSection


class CFConfig(ConfigSection):
    """implicit's AlternatingLeastSquares settings; every interaction counts with confidence `alpha`."""

    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15


def interaction_matrix(ratings: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray) -> sparse.csr_matrix:
    """Binary CSR [len(user_ids), len(item_ids)]: 1 where the user rated the item. Both id arrays are
    ascending; ratings of ids outside them are ignored."""
    users = np.asarray(user_ids, np.int64)
    items = np.asarray(item_ids, np.int64)
    u = np.searchsorted(users, ratings["user_id"].to_numpy(np.int64))
    i = np.searchsorted(items, ratings["item_id"].to_numpy(np.int64))
    known = (u < len(users)) & (i < len(items))
    known[known] &= (users[u[known]] == ratings["user_id"].to_numpy(np.int64)[known]) & (
        items[i[known]] == ratings["item_id"].to_numpy(np.int64)[known]
    )
    matrix = sparse.csr_matrix(
        (np.ones(int(known.sum()), np.float32), (u[known], i[known])), shape=(len(users), len(items))
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def fit_als(matrix: sparse.csr_matrix, config: CFConfig, seed: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(user factors [m, f], item factors [n, f]) float32 of implicit's ALS on a users x items matrix."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    model = AlternatingLeastSquares(
        factors=config.factors,
        regularization=config.regularization,
        alpha=config.alpha,
        iterations=config.iterations,
        random_state=seed,
        num_threads=threads,
    )
    with threadpool_limits(1, "blas"):  # implicit parallelises itself; a BLAS pool on top only contends
        model.fit(matrix, show_progress=False)
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)
