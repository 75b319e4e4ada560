"""The ranking models' input signature and the one function that assembles it from features.

Training (PyTorch), ONNX export, the parity check and the ranking service all build model inputs with
`model_inputs`, so a model sees identical tensors offline and online.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wren.core.arrays import sorted_rows

# name -> (dtype, trailing shape key); every input has a leading dynamic batch axis.
# user_genres is the user's per-genre rating deviation (schema.genre_rating_deviation), item_genres the
# item's multi-hot genres, *_embedding the pretrained item2vec/DeepWalk vectors (user = mean of recent),
# recall_features the candidate's rank and relative score in each recall channel (schema.RECALL_FEATURES).
MODEL_INPUTS: dict[str, tuple[type, str]] = {
    "user_dense": (np.float32, "user_dense"),
    "user_genres": (np.float32, "genres"),
    "user_embedding": (np.float32, "embedding_dim"),
    "recent_items": (np.int64, "recent_len"),
    "item_index": (np.int64, ""),
    "item_dense": (np.float32, "item_dense"),
    "item_genres": (np.float32, "genres"),
    "item_embedding": (np.float32, "embedding_dim"),
    "recall_features": (np.float32, "recall_channels"),
}
MODEL_OUTPUT = "score"


@dataclass(frozen=True)
class ItemVocabulary:
    """Maps item ids to model vocabulary indices: sorted id i -> i + 1; 0 is padding / unknown."""

    ids: np.ndarray  # int64, strictly increasing

    @property
    def size(self) -> int:
        """Embedding-table rows the model needs (catalog + the padding row)."""
        return len(self.ids) + 1

    def index(self, item_ids: np.ndarray) -> np.ndarray:
        return sorted_rows(self.ids, item_ids) + 1  # absent ids are row -1, so index 0


def model_inputs(
    *,
    user_dense: np.ndarray,
    user_genres: np.ndarray,
    user_embedding: np.ndarray,
    recent_index: np.ndarray,
    item_index: np.ndarray,
    item_dense: np.ndarray,
    item_genres: np.ndarray,
    item_embedding: np.ndarray,
    recall_features: np.ndarray,
) -> dict[str, np.ndarray]:
    """Named model inputs for a batch of B (user, item) pairs.

    User arrays have B rows, or one row that is broadcast to all B items (one user, many candidates).
    `recent_index` holds vocabulary indices (0 = padding); `item_index` likewise, shape [B].
    """
    batch = len(item_index)

    def rows(array: np.ndarray, dtype: type) -> np.ndarray:
        array = np.asarray(array, dtype=dtype)
        if array.ndim == 1:
            array = array[None, :]
        if array.shape[0] == 1 and batch != 1:
            array = np.broadcast_to(array, (batch, array.shape[1]))
        return np.ascontiguousarray(array)

    return {
        "user_dense": rows(user_dense, np.float32),
        "user_genres": rows(user_genres, np.float32),
        "user_embedding": rows(user_embedding, np.float32),
        "recent_items": rows(recent_index, np.int64),
        "item_index": np.ascontiguousarray(np.asarray(item_index, dtype=np.int64)),
        "item_dense": rows(item_dense, np.float32),
        "item_genres": rows(item_genres, np.float32),
        "item_embedding": rows(item_embedding, np.float32),
        "recall_features": rows(recall_features, np.float32),
    }
