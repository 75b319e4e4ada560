"""Logistic-regression baseline on the same named model inputs as the deep rankers."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

# Float inputs the baseline reads, in column order. The id inputs (recent_items, item_index) are left out:
# one-hot ids over a ~10k catalog would dominate a linear model and memorise popularity, so LR sees only
# the dense, genre and pretrained-embedding columns (item popularity is already in item_dense).
FLAT_INPUTS = (
    "user_dense",
    "user_genres",
    "user_embedding",
    "item_dense",
    "item_genres",
    "item_embedding",
    "recall_features",
)


def flatten_inputs(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """[n, sum of widths] float32: the FLAT_INPUTS columns concatenated in that order (ids excluded)."""
    return np.concatenate([np.asarray(inputs[name], dtype=np.float32) for name in FLAT_INPUTS], axis=1)


def train_baseline(train: dict[str, np.ndarray], y: np.ndarray, seed: int = 0, c: float = 1.0) -> Pipeline:
    """StandardScaler + L2 LogisticRegression (lbfgs) fitted on flattened named inputs and 0/1 labels."""
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("lr", LogisticRegression(C=c, max_iter=1000, random_state=seed)),
        ]
    )
    model.fit(flatten_inputs(train), np.asarray(y).astype(np.int64))
    return model


def predict_baseline(fitted: Pipeline, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """[n] float32 positive-class probabilities."""
    return fitted.predict_proba(flatten_inputs(inputs))[:, 1].astype(np.float32)
