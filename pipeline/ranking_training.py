"""Trains every configured ranking model plus the LR baseline, exports each to ONNX and checks parity."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.bundle_writer import BundleWriter
from pipeline.config import TrainConfig
from pipeline.features import (
    ItemFeatures,
    point_in_time_item_dense,
    point_in_time_user_features,
)
from pipeline.models.baseline import train_baseline
from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.export import check_parity, export_onnx
from pipeline.models.registry import build_model
from pipeline.models.trainer import TrainerConfig, TrainHistory, train_ranker
from pipeline.ranking_data import assemble, snapshot_rows
from pipeline.split import Split, tail_mask
from services.common.bundle import UserTable


@dataclass
class RankingResult:
    histories: dict[str, TrainHistory] = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)


def training_inputs(
    train: pd.DataFrame, items: ItemFeatures, vectors: np.ndarray, has_embedding: np.ndarray, config: TrainConfig
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Point-in-time user and item features (from strictly earlier ratings) for every training rating."""
    history = point_in_time_user_features(train, items, config.positive_threshold, config.recent_len)
    inputs = assemble(
        user_counters=history.counters,
        user_genre_rated=history.genre_rated,
        user_genre_rating_sum=history.genre_rating_sum,
        user_recent=history.recent,
        item_ids=train["item_id"].to_numpy(np.int64),
        item_dense=point_in_time_item_dense(
            train, items, config.positive_threshold, config.cold_start.popularity_half_life_days
        ),
        catalog_ids=items.ids,
        catalog_genres=items.genres,
        embeddings=vectors,
        has_embedding=has_embedding,
    )
    return inputs, (train["rating"].to_numpy() >= config.positive_threshold).astype(np.float32)


def _take(inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: np.ascontiguousarray(value[rows]) for name, value in inputs.items()}


def embedding_rows(train: pd.DataFrame, config: TrainConfig) -> pd.DataFrame:
    """The ratings item embeddings learn from: each user's training ratings before the ranker's share.

    Rankers take item embeddings as inputs; if the embeddings had seen a ranker row's positive next to
    the user's recent items, the user/item similarity would give its label away.
    """
    return train[~tail_mask(train, config.ranking.ranker_fraction)]


def train_rankers(
    split: Split,
    items: ItemFeatures,
    vectors: np.ndarray,
    has_embedding: np.ndarray,
    users: UserTable,
    config: TrainConfig,
    writer: BundleWriter,
    progress: bool = True,
) -> RankingResult:
    inputs, labels = training_inputs(split.train, items, vectors, has_embedding, config)
    ranker_rows = tail_mask(split.train, config.ranking.ranker_fraction)
    valid_mask = tail_mask(split.train, config.ranking.validation_fraction)
    fit, valid = np.flatnonzero(ranker_rows & ~valid_mask), np.flatnonzero(valid_mask)
    fit_inputs, valid_inputs = _take(inputs, fit), _take(inputs, valid)
    dims = ModelDims.from_inputs(inputs, vocab_size=len(items.ids) + 1)
    scaler = FeatureScaler.fit(fit_inputs)
    pretrained = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors * has_embedding[:, None]])

    test_inputs, _ = snapshot_rows(split.test, users, items.ids, items.dense, items.genres, vectors, has_embedding)
    n_test = len(test_inputs["item_index"])
    parity_rows = np.random.default_rng(config.seed).permutation(n_test)[: config.ranking.parity_rows]
    parity_inputs = _take(test_inputs, np.sort(parity_rows))

    result = RankingResult()
    trainer = TrainerConfig(
        epochs=config.ranking.epochs,
        batch_size=config.ranking.batch_size,
        lr=config.ranking.learning_rate,
        patience=config.ranking.patience,
        seed=config.seed,
        progress=progress,
    )
    for name in config.ranking.models:
        model = build_model(name, dims, scaler, pretrained=pretrained, seed=config.seed)
        history = train_ranker(model, fit_inputs, labels[fit], valid_inputs, labels[valid], trainer)
        relative = f"models/{name}.onnx"
        signature = export_onnx(model, _take(parity_inputs, np.arange(min(8, n_test))), writer.path(relative))
        parity = check_parity(model, writer.path(relative), parity_inputs, config.ranking.parity_tolerance)
        result.histories[name] = history
        result.entries[name] = {
            "file": relative,
            "signature": signature,
            "parity_max_abs_diff": parity,
            "parity_rows": int(len(parity_rows)),
            "best_epoch": history.best_epoch,
            "epochs_run": history.epochs,
            "valid_auc": history.best_valid_auc,
            "valid_logloss": history.best_valid_loss,
            "train_seconds": round(history.seconds, 2),
        }
        if progress:
            print(f"    {name}: best epoch {history.best_epoch}/{history.epochs}, valid AUC "
                  f"{history.best_valid_auc:.4f}, ONNX parity {parity:.2e}", flush=True)

    baseline = train_baseline(fit_inputs, labels[fit], seed=config.seed)
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
