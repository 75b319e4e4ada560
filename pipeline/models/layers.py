"""Building blocks shared by the ranking models: standardisation, masked pooling, MLPs, input encoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from pipeline.models.dims import FeatureScaler, ModelDims

ID_INIT_STD = 0.05  # std of randomly initialised id-embedding rows; pretrained rows are rescaled to this RMS
PROJ_INIT_STD = 0.01  # std of the field projections' weights: keeps the FM pairwise term near 0 at the start

# Order of the field vectors `InputEncoder` returns; models index fields by these names.
FIELDS = (
    "item_id",
    "recent_items",
    "user_genres",
    "item_genres",
    "user_dense",
    "item_dense",
    "user_embedding",
    "item_embedding",
    "recall_features",
)
USER_FIELDS = ("recent_items", "user_genres", "user_dense", "user_embedding")
ITEM_FIELDS = ("item_id", "item_genres", "item_dense", "item_embedding")


class RankerInputs(NamedTuple):
    """The 9 model inputs, in MODEL_INPUTS order (wren.core.model_inputs), as one value."""

    user_dense: torch.Tensor  # [B, user_dense] float32, raw
    user_genres: torch.Tensor  # [B, genres] float32
    user_embedding: torch.Tensor  # [B, embedding_dim] float32
    recent_items: torch.Tensor  # [B, recent_len] int64 vocabulary indices, 0 = padding
    item_index: torch.Tensor  # [B] int64 vocabulary index
    item_dense: torch.Tensor  # [B, item_dense] float32, raw
    item_genres: torch.Tensor  # [B, genres] float32
    item_embedding: torch.Tensor  # [B, embedding_dim] float32
    recall_features: torch.Tensor  # [B, recall_channels] float32, 1 / (1 + rank) per channel, 0 = not proposed


class Standardizer(nn.Module):
    """Standardises raw `user_dense` / `item_dense` with a fitted `FeatureScaler` held as buffers.

    The buffers are persistent, so they travel in the state dict and are baked into the ONNX graph.
    """

    user_mean: torch.Tensor  # the buffers, as register_buffer makes them (nn.Module's __getattr__ is untyped)
    user_std: torch.Tensor
    item_mean: torch.Tensor
    item_std: torch.Tensor

    def __init__(self, scaler: FeatureScaler) -> None:
        super().__init__()
        for name in ("user_mean", "user_std", "item_mean", "item_std"):
            self.register_buffer(name, torch.as_tensor(np.asarray(getattr(scaler, name), np.float32)))

    def forward(self, user_dense: torch.Tensor, item_dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (user_dense - self.user_mean) / self.user_std, (item_dense - self.item_mean) / self.item_std


def masked_mean(vectors: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean of `vectors` [B, L, k] over the positions where `ids` [B, L] != 0; all-padding rows give 0."""
    mask = (ids != 0).unsqueeze(-1).to(vectors.dtype)
    total = (vectors * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp_min(1.0)


def mlp(in_dim: int, hidden: Sequence[int], dropout: float = 0.0, norm: str | None = None) -> nn.Sequential:
    """Linear -> [BatchNorm|LayerNorm] -> ReLU -> Dropout per hidden width; output width is hidden[-1].

    `norm` is "batch", "layer" or None. An empty `hidden` gives an identity.
    """
    layers: list[nn.Module] = []
    width = in_dim
    for out in hidden:
        layers.append(nn.Linear(width, out))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(out))
        elif norm == "layer":
            layers.append(nn.LayerNorm(out))
        elif norm is not None:
            raise ValueError(f"norm must be 'batch', 'layer' or None, not {norm!r}")
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = out
    return nn.Sequential(*layers)


def id_table_init(vocab_size: int, dim: int, pretrained: np.ndarray | None, generator: torch.Generator) -> torch.Tensor:
    """Initial [vocab_size, dim] id-embedding weights; row 0 (padding) is zero.

    Without `pretrained`: N(0, ID_INIT_STD). With `pretrained` ([vocab_size, E] item vectors, row 0 ignored):
    E > dim is reduced to `dim` by a truncated SVD (the projection onto the top right-singular vectors,
    which best preserves dot products), E < dim is padded with small random columns, and the result is
    rescaled to RMS ID_INIT_STD so it matches the scale the rest of the model is initialised at. All-zero
    pretrained rows (items without a vector) start at zero.
    """
    weight = torch.randn(vocab_size, dim, generator=generator) * ID_INIT_STD
    if pretrained is not None:
        vectors = np.asarray(pretrained, dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != vocab_size:
            raise ValueError(f"pretrained must be [{vocab_size}, E], got {vectors.shape}")
        vectors = vectors.copy()
        vectors[0] = 0.0
        if vectors.shape[1] > dim:
            _, _, vt = np.linalg.svd(vectors[1:], full_matrices=False)
            vectors = vectors @ vt[:dim].T
        rms = float(np.sqrt(np.mean(vectors[1:] ** 2))) if vocab_size > 1 else 0.0
        if rms > 0:
            vectors *= ID_INIT_STD / rms
        width = vectors.shape[1]
        weight[:, :width] = torch.as_tensor(vectors, dtype=torch.float32)
        if width < dim:
            weight[:, width:] *= 0.1
    weight[0] = 0.0
    return weight


class InputEncoder(nn.Module):
    """Turns the 9 named model inputs into len(FIELDS) field vectors of width k, in FIELDS order.

    item_id and recent_items share one id-embedding table (padding_idx 0, so unknown items map to a zero
    vector that never trains); recent_items are mean-pooled over non-padding positions. Genres, the
    standardised dense features and the pretrained vectors each get their own linear projection to k.
    """

    def __init__(
        self,
        dims: ModelDims,
        scaler: FeatureScaler,
        k: int,
        pretrained: np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.k = k
        self.standardizer = Standardizer(scaler)
        self.item_ids = nn.Embedding(dims.vocab_size, k, padding_idx=0)
        with torch.no_grad():
            self.item_ids.weight.copy_(id_table_init(dims.vocab_size, k, pretrained, generator))
        self.user_genres = nn.Linear(dims.genres, k)
        self.item_genres = nn.Linear(dims.genres, k)
        self.user_dense = nn.Linear(dims.user_dense, k)
        self.item_dense = nn.Linear(dims.item_dense, k)
        self.user_embedding = nn.Linear(dims.embedding_dim, k)
        self.item_embedding = nn.Linear(dims.embedding_dim, k)
        self.recall_features = nn.Linear(dims.recall_channels, k)
        for projection in self.projections():
            nn.init.normal_(projection.weight, std=PROJ_INIT_STD, generator=generator)
            nn.init.zeros_(projection.bias)

    def projections(self) -> list[nn.Linear]:
        """The linear field projections (every field but the two id fields)."""
        return [
            self.user_genres,
            self.item_genres,
            self.user_dense,
            self.item_dense,
            self.user_embedding,
            self.item_embedding,
            self.recall_features,
        ]

    @property
    def num_fields(self) -> int:
        return len(FIELDS)

    @staticmethod
    def flat_width(dims: ModelDims) -> int:
        """Width of `flat`: both dense blocks, both genre blocks, both pretrained vectors, the recall features."""
        return dims.user_dense + dims.item_dense + 2 * dims.genres + 2 * dims.embedding_dim + dims.recall_channels

    def flat(self, x: RankerInputs) -> torch.Tensor:
        """[B, flat_width] raw float features with the dense blocks standardised (for linear parts)."""
        user_std, item_std = self.standardizer(x.user_dense, x.item_dense)
        return torch.cat(
            [user_std, item_std, x.user_genres, x.item_genres, x.user_embedding, x.item_embedding, x.recall_features],
            dim=1,
        )

    def forward(self, x: RankerInputs) -> list[torch.Tensor]:
        user_std, item_std = self.standardizer(x.user_dense, x.item_dense)
        return [
            self.item_ids(x.item_index),
            masked_mean(self.item_ids(x.recent_items), x.recent_items),
            self.user_genres(x.user_genres),
            self.item_genres(x.item_genres),
            self.user_dense(user_std),
            self.item_dense(item_std),
            self.user_embedding(x.user_embedding),
            self.item_embedding(x.item_embedding),
            self.recall_features(x.recall_features),
        ]


class Ranker(nn.Module):
    """Base class: `logit(**inputs)` -> [B] raw score; `forward(...)` -> [B] sigmoid probability.

    Inputs are the MODEL_INPUTS tensors by name (float32 features, int64 vocabulary indices, leading
    batch axis); `forward` spells them out because its parameters name the ONNX graph's inputs.
    Subclasses implement `compute_logit` over one `RankerInputs`. Trainers optimise `logit` with a
    logits loss for numerical stability.
    """

    def compute_logit(self, x: RankerInputs) -> torch.Tensor:
        raise NotImplementedError

    def logit(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self.compute_logit(RankerInputs(**inputs))

    def forward(
        self,
        user_dense: torch.Tensor,
        user_genres: torch.Tensor,
        user_embedding: torch.Tensor,
        recent_items: torch.Tensor,
        item_index: torch.Tensor,
        item_dense: torch.Tensor,
        item_genres: torch.Tensor,
        item_embedding: torch.Tensor,
        recall_features: torch.Tensor,
    ) -> torch.Tensor:
        x = RankerInputs(
            user_dense,
            user_genres,
            user_embedding,
            recent_items,
            item_index,
            item_dense,
            item_genres,
            item_embedding,
            recall_features,
        )
        return torch.sigmoid(self.compute_logit(x))


def item_bias_table(vocab_size: int) -> nn.Embedding:
    """A zero-initialised per-item scalar bias (first-order id term); row 0 (padding) stays zero."""
    table = nn.Embedding(vocab_size, 1, padding_idx=0)
    nn.init.zeros_(table.weight)
    return table
