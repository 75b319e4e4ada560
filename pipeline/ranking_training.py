"""Trains every configured ranking model (pairwise, on recall candidates) plus the LR baseline, exports each
to ONNX and checks parity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.config import TrainConfig
from pipeline.models.baseline import train_baseline
from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.export import check_parity, export_onnx
from pipeline.models.pairwise import PairwiseConfig, RankingHistory, sample_pairs, train_pairwise
from pipeline.models.prior import PriorRanker, best_prior_column, fit_prior_scale, tune_prior_scale
from pipeline.models.registry import build_model
from pipeline.ranking_candidates import CandidateRows
from wren.core.bundle_writer import BundleWriter
from wren.core.recall.channels import CHANNELS


@dataclass
class RankingResult:
    histories: dict[str, RankingHistory] = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)  # name -> trained torch model (for training-time scoring)
    default_model: str = ""  # the configured default, or the best on validation NDCG when it is "auto"


def train_rankers(
    fit: CandidateRows,
    valid: CandidateRows,
    vectors: np.ndarray,
    has_embedding: np.ndarray,
    config: TrainConfig,
    writer: BundleWriter,
    progress: bool = True,
) -> RankingResult:
    """`fit` / `valid`: candidate rows of disjoint users; vectors / has_embedding: item embeddings by row."""
    dims = ModelDims.from_inputs(fit.inputs, vocab_size=len(vectors) + 1)
    scaler = FeatureScaler.fit(fit.inputs)
    pretrained = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors * has_embedding[:, None]])
    parity_rows = np.sort(np.random.default_rng(config.seed).permutation(len(valid))[: config.ranking.parity_rows])
    parity_inputs = {name: np.ascontiguousarray(value[parity_rows]) for name, value in valid.inputs.items()}
    trainer = PairwiseConfig(
        epochs=config.ranking.epochs,
        batch_size=config.ranking.batch_size,
        lr=config.ranking.learning_rate,
        negatives=config.ranking.negatives_per_positive,
        patience=config.ranking.patience,
        ndcg_k=config.evaluation.k,
        seed=config.seed,
        progress=progress,
    )
    result = RankingResult()
    prior = _prior(fit, valid, config) if config.ranking.prior else None
    for name in config.ranking.models:
        ranker = build_model(name, dims, scaler, pretrained=pretrained, seed=config.seed)
        with_prior = None if prior is None else PriorRanker(ranker, prior["column"], prior["initial_scale"])
        model = ranker if with_prior is None else with_prior
        history = train_pairwise(model, fit, valid, trainer)
        valid_ndcg = history.best_valid_ndcg
        scales: dict[str, Any] = {}
        if with_prior is not None:
            scales["trained_scale"] = float(with_prior.scale.detach())
            if config.ranking.tune_prior_scale:
                by_scale = tune_prior_scale(with_prior, valid, config.evaluation.k)
                valid_ndcg = by_scale[float(with_prior.scale.detach())]
                scales["valid_candidate_ndcg_by_scale"] = {f"{value:g}": ndcg for value, ndcg in by_scale.items()}
        relative = f"models/{name}.onnx"
        sample = {key: value[:8] for key, value in parity_inputs.items()}
        signature = export_onnx(model, sample, writer.path(relative))
        parity = check_parity(model, writer.path(relative), parity_inputs, config.ranking.parity_tolerance)
        result.histories[name] = history
        result.models[name] = model
        result.entries[name] = {
            "file": relative,
            "signature": signature,
            "objective": "pairwise: held-out items over recall candidates and random items (liked x2)"
            + (f", from the {prior['channel']} channel's order" if prior else ""),
            "parity_max_abs_diff": parity,
            "parity_rows": int(len(parity_rows)),
            "best_epoch": history.best_epoch,
            "epochs_run": history.epochs,
            "valid_candidate_ndcg": valid_ndcg,
            "train_seconds": round(history.seconds, 2),
        }
        if prior is not None and with_prior is not None:
            result.entries[name]["prior"] = {
                **prior,
                "scale": float(with_prior.scale.detach()),
                **scales,
                "initial_valid_candidate_ndcg": history.initial_ndcg,
            }
        if progress:
            print(
                f"    {name}: best epoch {history.best_epoch}/{history.epochs}, validation NDCG@"
                f"{config.evaluation.k} over candidates {valid_ndcg:.4f}, ONNX parity {parity:.2e}",
                flush=True,
            )

    wanted = config.ranking.default_model
    if wanted == "auto":
        wanted = max(result.entries, key=lambda name: result.entries[name]["valid_candidate_ndcg"])
    elif wanted not in result.entries:
        raise ValueError(f"ranking.default_model {wanted!r} is not among ranking.models {list(result.entries)}")
    result.default_model = wanted
    baseline = train_baseline(fit.inputs, (fit.gain > 0).astype(np.float32), seed=config.seed)
    scale, logistic = baseline.named_steps["scale"], baseline.named_steps["lr"]
    result.baseline = {
        "kind": "logistic_regression",
        "inputs": "pipeline.models.baseline.FLAT_INPUTS",
        "mean": scale.mean_.tolist(),
        "scale": scale.scale_.tolist(),
        "coef": logistic.coef_[0].tolist(),
        "intercept": float(logistic.intercept_[0]),
    }
    writer.save_json("baseline.json", result.baseline)
    return result


def _prior(fit: CandidateRows, valid: CandidateRows, config: TrainConfig) -> dict:
    """The recall score feature each ranker starts from: the channel that orders the validation users'
    candidates best, at the scale that fits the training pairs best."""
    channels = len(CHANNELS)
    column, ndcg = best_prior_column(valid, range(channels, 2 * channels), config.evaluation.k)
    pairs = sample_pairs(fit, config.ranking.negatives_per_positive, np.random.default_rng(config.seed))
    return {
        "channel": CHANNELS[column - channels],
        "column": column,
        "valid_candidate_ndcg": ndcg,
        "initial_scale": fit_prior_scale(fit, column, pairs),
    }
