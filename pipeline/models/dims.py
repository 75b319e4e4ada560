"""Model input dimensions and the dense-feature standardisation every ranking model carries in its graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wren.core.model_inputs import MODEL_INPUTS

STD_FLOOR = 1e-6


@dataclass(frozen=True)
class ModelDims:
    """Trailing sizes of the `MODEL_INPUTS` tensors (the batch axis is always leading and dynamic).

    vocab_size: item-vocabulary rows, catalog + 1 (row 0 is padding / unknown item);
    user_dense / item_dense: USER_DENSE / ITEM_DENSE widths; genres: genre count (user and item);
    embedding_dim: width of the pretrained user/item vectors; recent_len: `recent_items` length;
    recall_channels: width of `recall_features` (one column per recall channel).
    """

    vocab_size: int
    user_dense: int
    item_dense: int
    genres: int
    embedding_dim: int
    recent_len: int
    recall_channels: int

    @classmethod
    def from_inputs(cls, inputs: dict[str, np.ndarray], vocab_size: int) -> ModelDims:
        """Dimensions read off a batch of named model inputs (vocab size is not derivable from data)."""
        missing = set(MODEL_INPUTS) - set(inputs)
        if missing:
            raise ValueError(f"inputs lack {sorted(missing)}")
        return cls(
            vocab_size=int(vocab_size),
            user_dense=int(inputs["user_dense"].shape[1]),
            item_dense=int(inputs["item_dense"].shape[1]),
            genres=int(inputs["item_genres"].shape[1]),
            embedding_dim=int(inputs["item_embedding"].shape[1]),
            recent_len=int(inputs["recent_items"].shape[1]),
            recall_channels=int(inputs["recall_features"].shape[1]),
        )

    def sample_shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        """Shape of each named input for a batch of `batch` rows, in MODEL_INPUTS order."""
        trailing = {
            "user_dense": (self.user_dense,),
            "genres": (self.genres,),
            "embedding_dim": (self.embedding_dim,),
            "recent_len": (self.recent_len,),
            "item_dense": (self.item_dense,),
            "recall_channels": (self.recall_channels,),
            "": (),
        }
        return {name: (batch, *trailing[key]) for name, (_, key) in MODEL_INPUTS.items()}


@dataclass(frozen=True)
class FeatureScaler:
    """Per-column mean/std of `user_dense` and `item_dense` (float32 arrays), std floored at 1e-6.

    Models copy these into registered buffers and standardise inside `forward`, so the exported ONNX graph
    takes the raw features the serving tier computes.
    """

    user_mean: np.ndarray
    user_std: np.ndarray
    item_mean: np.ndarray
    item_std: np.ndarray

    @classmethod
    def fit(cls, inputs: dict[str, np.ndarray]) -> FeatureScaler:
        """Fit on training inputs (named model inputs; only `user_dense` and `item_dense` are read)."""

        def stats(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            array = np.asarray(array, dtype=np.float64)
            if array.ndim != 2 or len(array) == 0:
                raise ValueError(f"need a non-empty [n, d] array, got shape {array.shape}")
            mean = array.mean(axis=0)
            std = np.maximum(array.std(axis=0), STD_FLOOR)
            return mean.astype(np.float32), std.astype(np.float32)

        user_mean, user_std = stats(inputs["user_dense"])
        item_mean, item_std = stats(inputs["item_dense"])
        return cls(user_mean, user_std, item_mean, item_std)

    @classmethod
    def identity(cls, dims: ModelDims) -> FeatureScaler:
        """A no-op scaler (mean 0, std 1), e.g. for a model whose buffers a checkpoint will overwrite."""
        return cls(
            np.zeros(dims.user_dense, np.float32),
            np.ones(dims.user_dense, np.float32),
            np.zeros(dims.item_dense, np.float32),
            np.ones(dims.item_dense, np.float32),
        )
