"""Wide & Deep: a wide linear model over raw features and explicit crosses, plus a deep MLP."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.layers import InputEncoder, Ranker, RankerInputs, item_bias_table, mlp


class WideAndDeep(Ranker):
    """logit = item bias + wide(raw features, user_genres*item_genres, user_embedding*item_embedding)
    + MLP(concatenated field vectors).

    The wide part sees the standardised dense features, both genre vectors, both pretrained vectors and
    the two element-wise crosses, so it can weight genre matches and per-dimension embedding agreement
    directly. `forward` returns sigmoid(logit), shape [B].
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
        self.wide = nn.Linear(InputEncoder.flat_width(dims) + dims.genres + dims.embedding_dim, 1)
        self.deep = mlp(self.encoder.num_fields * k, hidden, dropout, norm)
        self.head = nn.Linear(hidden[-1] if hidden else self.encoder.num_fields * k, 1)

    def compute_logit(self, x: RankerInputs) -> torch.Tensor:
        fields = self.encoder(x)
        crosses = [x.user_genres * x.item_genres, x.user_embedding * x.item_embedding]
        wide = self.wide(torch.cat([self.encoder.flat(x), *crosses], dim=1)).squeeze(-1)
        wide = wide + self.item_bias(x.item_index).squeeze(-1)
        deep = self.head(self.deep(torch.cat(fields, dim=1))).squeeze(-1)
        return wide + deep
