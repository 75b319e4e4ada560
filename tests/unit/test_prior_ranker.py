"""PriorRanker: a ranker that starts from one recall channel's order; choosing that channel and its scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.export import check_parity, export_onnx
from pipeline.models.layers import Ranker, RankerInputs
from pipeline.models.prior import SCALES, PriorRanker, best_prior_column, fit_prior_scale, tune_prior_scale
from pipeline.models.registry import build_model
from pipeline.models.trainer import predict_logits, to_tensors
from pipeline.ranking_candidates import CandidateRows
from tests.unit.test_ranking_models import VOCAB, make_synthetic

COLUMN = 2


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    inputs, _, _ = make_synthetic(400, seed=4)
    inputs["recall_features"] = np.random.default_rng(0).random((400, 4)).astype(np.float32)
    return inputs


def _model(inputs: dict[str, np.ndarray], scale: float) -> PriorRanker:
    inner = build_model("ncf", ModelDims.from_inputs(inputs, VOCAB), FeatureScaler.fit(inputs), seed=0)
    return PriorRanker(inner, COLUMN, scale).eval()


def test_logit_is_the_scaled_shifted_feature_plus_the_inner_models(inputs: dict[str, np.ndarray]) -> None:
    model = _model(inputs, 8.0)
    x = to_tensors(inputs)
    with torch.inference_mode():
        expected = 8.0 * (x["recall_features"][:, COLUMN] - 1.0) + model.inner.logit(**x)
        assert torch.allclose(model.logit(**x), expected, atol=1e-5)
        # a large scale orders by the feature alone
        big = _model(inputs, 1e4)
        order = torch.argsort(big.logit(**x), descending=True).numpy()
    assert np.array_equal(order, np.argsort(-inputs["recall_features"][:, COLUMN], kind="stable"))


def test_exports_to_onnx_with_parity(inputs: dict[str, np.ndarray], tmp_path: Path) -> None:
    model = _model(inputs, 4.0)
    path = tmp_path / "prior.onnx"
    export_onnx(model, {name: value[:8] for name, value in inputs.items()}, path)
    assert check_parity(model, path, inputs, tolerance=1e-4) <= 1e-4


def _rows(features: np.ndarray, gain: np.ndarray, users: np.ndarray) -> CandidateRows:
    n = len(gain)
    return CandidateRows(
        {"recall_features": features.astype(np.float32)},
        users,
        np.arange(n, dtype=np.int64),
        gain.astype(np.float32),
        np.ones(n, bool),
    )


def test_the_prior_column_is_the_one_that_orders_candidates_best() -> None:
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(20), 15)
    gain = (rng.random(len(users)) < 0.2).astype(np.float32)
    features = rng.random((len(users), 4))
    features[:, 3] = 0.5 * gain + 0.1 * rng.random(len(users))  # puts every relevant item first
    column, ndcg = best_prior_column(_rows(features, gain, users), range(4), 10)
    assert column == 3 and ndcg == pytest.approx(1.0)
    column, _ = best_prior_column(_rows(features, gain, users), range(3), 10)
    assert column in (0, 1, 2)


def test_the_scale_grows_with_how_well_the_feature_separates_pairs() -> None:
    pairs = (np.arange(0, 100, 2), np.arange(1, 100, 2))
    gain = np.tile([1.0, 0.0], 50)
    users = np.repeat(np.arange(50), 2)
    separating = np.tile([[0.9], [0.1]], (50, 1))
    assert fit_prior_scale(_rows(separating, gain, users), 0, pairs) == max(SCALES)
    noise = np.random.default_rng(2).random((100, 1))
    assert fit_prior_scale(_rows(noise, gain, users), 0, pairs) == min(SCALES)


class FirstFeature(Ranker):
    """A stand-in correction whose logit is recall feature 0, so the tests know every score exactly."""

    def compute_logit(self, x: RankerInputs) -> torch.Tensor:
        return x.recall_features[:, 0]


def _top3_relevant(inputs: dict[str, np.ndarray], score: np.ndarray) -> CandidateRows:
    """Rows of 20 users x 20 candidates whose 3 best candidates by `score` are the relevant ones."""
    users = np.repeat(np.arange(20), 20)
    gain = np.zeros(len(users), np.float32)
    for user in range(20):
        rows = np.flatnonzero(users == user)
        gain[rows[np.argsort(-score[rows])[:3]]] = 1.0
    return CandidateRows(inputs, users, np.arange(len(users), dtype=np.int64), gain, np.ones(len(users), bool))


def test_tuning_sets_the_scale_whose_candidate_order_scores_best(inputs: dict[str, np.ndarray]) -> None:
    model = PriorRanker(FirstFeature(), COLUMN, 0.3).eval()
    inner = inputs["recall_features"][:, 0].astype(np.float64)
    prior = inputs["recall_features"][:, COLUMN].astype(np.float64) - 1.0
    rows = _top3_relevant(inputs, 4.0 * prior + inner)
    trained = float(model.scale.detach())  # 0.3 in float32
    by_scale = tune_prior_scale(model, rows, 10)
    chosen = float(model.scale.detach())
    assert set(by_scale) == {trained, *SCALES}
    assert by_scale[4.0] == pytest.approx(1.0) and by_scale[trained] < 1.0
    assert chosen in SCALES and by_scale[chosen] == max(by_scale.values())
    x = to_tensors(inputs)
    with torch.inference_mode():
        expected = chosen * (x["recall_features"][:, COLUMN] - 1.0) + model.inner.logit(**x)
        assert torch.allclose(model.logit(**x), expected, atol=1e-5)


def test_tuning_keeps_the_trained_scale_when_nothing_beats_it(inputs: dict[str, np.ndarray]) -> None:
    model = PriorRanker(FirstFeature(), COLUMN, 1e-4).eval()
    rows = _top3_relevant(inputs, predict_logits(model.inner, inputs))
    trained = float(model.scale.detach())
    by_scale = tune_prior_scale(model, rows, 10)
    assert by_scale[trained] == pytest.approx(1.0) and min(by_scale.values()) < 1.0
    assert float(model.scale.detach()) == trained
