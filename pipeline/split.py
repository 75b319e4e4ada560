"""Per-user, time-ordered train/test split: each user's last fraction of ratings is the test set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Split:
    """train/test: ratings frames sorted by (user_id, timestamp, item_id), fresh RangeIndex.

    user_cutoff maps user_id -> timestamp of the user's first test rating (absent for users without
    test ratings); nothing at or after it may feed that user's training features.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    user_cutoff: pd.Series


def time_split(ratings: pd.DataFrame, test_fraction: float = 0.2) -> Split:
    """The last floor(n * test_fraction) ratings of each user (by timestamp, ties by item id) are test."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    ordered = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)
    is_test = tail_mask(ordered, test_fraction)
    train = ordered[~is_test].reset_index(drop=True)
    test = ordered[is_test].reset_index(drop=True)
    cutoff = test.groupby("user_id")["timestamp"].min()
    return Split(train=train, test=test, user_cutoff=cutoff)


def tail_mask(ratings: pd.DataFrame, fraction: float) -> np.ndarray:
    """True for each user's last floor(n * fraction) ratings; `ratings` sorted by user, then time."""
    position = ratings.groupby("user_id", sort=False).cumcount().to_numpy()
    size = ratings.groupby("user_id", sort=False)["item_id"].transform("size").to_numpy()
    return position >= size - np.floor(size * fraction).astype(np.int64)
