"""Array helpers every layer shares: id -> row lookup, L2 normalisation, top-k, rank scores, mean embeddings."""

from __future__ import annotations

import numpy as np


class IdIndex:
    """Rows of sorted, unique int64 ids: `rows(ids)` gives each id's position, -1 where it is absent.

    The ids array is kept as given (not copied) when it is already sorted int64; lookups are one
    searchsorted, with no per-id Python objects.
    """

    def __init__(self, sorted_ids: np.ndarray) -> None:
        ids = np.asarray(sorted_ids, dtype=np.int64)
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            raise ValueError("IdIndex needs strictly increasing ids")
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """int64, shaped like `ids`: the row of each id, -1 for ids not in the index."""
        return sorted_rows(self.ids, ids)

    def row(self, item_id: int) -> int:
        """The row of one id, -1 when absent."""
        pos = int(np.searchsorted(self.ids, item_id))
        return pos if pos < len(self.ids) and int(self.ids[pos]) == item_id else -1

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """bool, shaped like `ids`: whether each id is in the index."""
        return self.rows(ids) >= 0


def sorted_rows(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """int64, shaped like `ids`: the position of each id in the sorted, unique int64 `sorted_ids`, -1 where
    absent (IdIndex.rows without the sortedness check, for holders that keep their keys sorted themselves)."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(sorted_ids):
        return np.full(ids.shape, -1, np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, pos, -1).astype(np.int64, copy=False)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Returns float32 rows scaled to unit L2 norm; all-zero rows stay zero (cosine 0 with everything)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the k largest entries per row of `scores` [q, n], best first.

    Returns [q, min(k, n)] arrays; ties are broken arbitrarily.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return np.empty((len(scores), 0), dtype=np.int64), np.empty((len(scores), 0), dtype=scores.dtype)
    if k < n:
        columns = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        columns = np.broadcast_to(np.arange(n), scores.shape)
    values = np.take_along_axis(scores, columns, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1), np.take_along_axis(values, order, axis=1)


def rank_scores(n: int) -> np.ndarray:
    """float32 [n]: 1 / (1 + rank), the score of a ranked list that carries no score of its own."""
    return (1.0 / (1.0 + np.arange(n, dtype=np.float32))).astype(np.float32)


def mean_embeddings(rows: np.ndarray, embeddings: np.ndarray, has_embedding: np.ndarray) -> np.ndarray:
    """Mean item embedding per user.

    rows: int [N, R] item-table rows of each user's recent items, -1 for padding; embeddings: float32
    [n_items, D]; has_embedding: bool [n_items]. Returns float32 [N, D]; users with no usable item
    get a zero vector.
    """
    rows = np.atleast_2d(rows)
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    valid &= has_embedding[safe]
    gathered = embeddings[safe] * valid[..., None]
    counts = valid.sum(axis=1, keepdims=True)
    return np.divide(
        gathered.sum(axis=1), counts, out=np.zeros((len(rows), embeddings.shape[1]), np.float32), where=counts > 0
    ).astype(np.float32)
