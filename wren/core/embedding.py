"""User embeddings: the mean of the embeddings of a user's recent positive items."""

from __future__ import annotations

import numpy as np


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
