"""A ranker that starts from the strongest recall channel's order and learns what to change in it: its logit
is scale * (that channel's score feature - 1) plus the wrapped model's logit."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.models.layers import Ranker, RankerInputs
from pipeline.models.pairwise import candidate_ndcg
from pipeline.models.trainer import predict_logits
from pipeline.ranking_candidates import CandidateRows

SCALES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


class PriorRanker(Ranker):
    """logit = scale * (recall_features[:, column] - 1) + inner(x). A recall channel such as EASE is already a
    strong ranker on its own; with a small data set of labels a deep model learns a correction to it more
    reliably than the whole order. The feature is a score over the channel's best (at most 1), so the shift
    keeps the logits of the top candidates near the inner model's: served scores are float32 sigmoids, which
    would tie at 1.0 past a logit of ~16. `scale` is trained, then set on validation NDCG by `tune_prior_scale`;
    `column` is fixed (a buffer in the ONNX graph)."""

    column: torch.Tensor  # a buffer (nn.Module's __getattr__ is untyped)

    def __init__(self, inner: Ranker, column: int, scale: float) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("column", torch.tensor(column, dtype=torch.int64))
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def compute_logit(self, x: RankerInputs) -> torch.Tensor:
        prior = torch.index_select(x.recall_features, 1, self.column.reshape(1)).squeeze(-1)
        return self.scale * (prior - 1.0) + self.inner.compute_logit(x)


def best_prior_column(rows: CandidateRows, columns: range, k: int) -> tuple[int, float]:
    """(column, NDCG@k) of the recall feature whose order of each user's candidates is best on `rows`."""
    features = rows.inputs["recall_features"]
    scored = [(candidate_ndcg(rows, features[:, column], k), column) for column in columns]
    ndcg, column = max(scored)
    return column, ndcg


def fit_prior_scale(rows: CandidateRows, column: int, pairs: tuple[np.ndarray, np.ndarray]) -> float:
    """The scale in SCALES whose pairwise loss, gain(pos) * softplus(-scale * (f_pos - f_neg)), is lowest over
    `pairs` (positive row, negative row) of `rows` for the prior feature f alone."""
    positive, negative = pairs
    feature = rows.inputs["recall_features"][:, column].astype(np.float64)
    margin = feature[positive] - feature[negative]
    gain = rows.gain[positive].astype(np.float64)
    losses = [float(np.mean(gain * np.logaddexp(0.0, -scale * margin))) for scale in SCALES]
    return SCALES[int(np.argmin(losses))]


def tune_prior_scale(model: PriorRanker, rows: CandidateRows, k: int) -> dict[float, float]:
    """Sets `model.scale` to the value, among SCALES and its trained one, whose NDCG@k over `rows`' candidates
    is highest, and returns that NDCG per scale. Training moves the scale by pairwise loss, which weighs
    every pair alike; the served list only cares about the top, so the weight of the prior against the
    learned correction is chosen on the measure the list is judged by. Ties keep the trained scale."""
    trained = float(model.scale.detach())
    inner = predict_logits(model.inner, rows.inputs).astype(np.float64)
    prior = rows.inputs["recall_features"][:, int(model.column)].astype(np.float64) - 1.0
    ndcg = {value: candidate_ndcg(rows, value * prior + inner, k) for value in (trained, *SCALES)}
    best = max(ndcg, key=lambda value: (ndcg[value], value == trained))
    model.scale.data = torch.tensor(float(best), dtype=model.scale.dtype)
    return ndcg
