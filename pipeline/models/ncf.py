"""Neural collaborative filtering (NeuMF-style) with feature-built user and item representations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.layers import FIELDS, ITEM_FIELDS, USER_FIELDS, InputEncoder, Ranker, RankerInputs, mlp


class NeuralCF(Ranker):
    """logit = Linear([GMF, MLP]): GMF = user_vec * item_vec, MLP over all field vectors.

    There is no user-id table: user_vec is a linear map of the user-side fields (pooled recent items,
    user genres, user dense features, user pretrained vector), so the model scores users it never saw
    in training. item_vec maps the item-side fields (item id embedding, genres, dense, pretrained).
    `forward` returns sigmoid(logit), shape [B].
    """

    def __init__(
        self,
        dims: ModelDims,
        scaler: FeatureScaler,
        *,
        k: int = 16,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.2,
        norm: str | None = "batch",
        pretrained: np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.encoder = InputEncoder(dims, scaler, k, pretrained, generator)
        self._user = [FIELDS.index(name) for name in USER_FIELDS]
        self._item = [FIELDS.index(name) for name in ITEM_FIELDS]
        self.user_tower = nn.Linear(len(USER_FIELDS) * k, k)
        self.item_tower = nn.Linear(len(ITEM_FIELDS) * k, k)
        self.deep = mlp(self.encoder.num_fields * k, hidden, dropout, norm)
        deep_width = hidden[-1] if hidden else self.encoder.num_fields * k
        self.head = nn.Linear(k + deep_width, 1)

    def compute_logit(self, x: RankerInputs) -> torch.Tensor:
        fields = self.encoder(x)
        user_vec = self.user_tower(torch.cat([fields[i] for i in self._user], dim=1))
        item_vec = self.item_tower(torch.cat([fields[i] for i in self._item], dim=1))
        deep = self.deep(torch.cat(fields, dim=1))
        return self.head(torch.cat([user_vec * item_vec, deep], dim=1)).squeeze(-1)
