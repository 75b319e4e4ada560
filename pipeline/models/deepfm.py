"""DeepFM: first-order linear terms + FM pairwise interactions over field vectors + a deep MLP."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.layers import InputEncoder, Ranker, RankerInputs, item_bias_table, mlp


class DeepFM(Ranker):
    """logit = item bias + linear(raw features) + FM second order over the 8 field vectors + MLP(fields).

    Field vectors come from `InputEncoder` (width k); the FM term is sum_{i<j} <f_i, f_j>, computed as
    0.5 * ((sum f)^2 - sum f^2). `forward` returns sigmoid(logit), shape [B].
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
        self.item_bias = item_bias_table(dims.vocab_size)
        self.linear = nn.Linear(InputEncoder.flat_width(dims), 1)
        self.deep = mlp(self.encoder.num_fields * k, hidden, dropout, norm)
        self.head = nn.Linear(hidden[-1] if hidden else self.encoder.num_fields * k, 1)

    def compute_logit(self, x: RankerInputs) -> torch.Tensor:
        fields = torch.stack(self.encoder(x), dim=1)  # [B, F, k]
        first = self.linear(self.encoder.flat(x)).squeeze(-1) + self.item_bias(x.item_index).squeeze(-1)
        second = 0.5 * (fields.sum(dim=1).pow(2) - fields.pow(2).sum(dim=1)).sum(dim=-1)
        deep = self.head(self.deep(fields.flatten(1))).squeeze(-1)
        return first + second + deep
