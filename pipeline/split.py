"""Per-user train/test splits: time-ordered (each user's last fraction of ratings) or random (a seeded shuffle)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PROTOCOLS = ("time", "random")


def column_by_user(frame: pd.DataFrame, column: str = "item_id", dtype: type = np.int64) -> dict[int, np.ndarray]:
    """Each user's values of `column` (in frame order), by user id ascending: groupby without its untyped keys."""
    ordered = frame.sort_values("user_id", kind="stable")
    users = ordered["user_id"].to_numpy(np.int64)
    values = ordered[column].to_numpy(dtype)
    if not len(users):
        return {}
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    return {int(users[a]): values[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)}


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


def random_split(ratings: pd.DataFrame, test_fraction: float = 0.25, seed: int = 42) -> Split:
    """Per-user random split (the Microsoft Recommenders random protocol): floor(n * test_fraction) of
    each user's n ratings, drawn at random, are test.

    Rows are first sorted by (user_id, item_id, timestamp), then shuffled within each user by keys from
    `np.random.default_rng(seed)`, so the split depends on the seed and the rows, never on their input
    order. train/test are sorted by (user_id, timestamp, item_id) with a fresh RangeIndex, like
    `time_split`. `user_cutoff` is each user's earliest test timestamp, as in `time_split`; under this
    protocol it is NOT a time boundary: training ratings of the user may well be later than it.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    ordered = ratings.sort_values(["user_id", "item_id", "timestamp"], kind="stable").reset_index(drop=True)
    keys = np.random.default_rng(seed).random(len(ordered))
    shuffled = ordered.iloc[np.lexsort((keys, ordered["user_id"].to_numpy()))].reset_index(drop=True)
    is_test = tail_mask(shuffled, test_fraction)
    train = _time_ordered(shuffled[~is_test])
    test = _time_ordered(shuffled[is_test])
    cutoff = test.groupby("user_id")["timestamp"].min()
    return Split(train=train, test=test, user_cutoff=cutoff)


def make_split(ratings: pd.DataFrame, protocol: str, test_fraction: float, seed: int) -> Split:
    """The split of `protocol` (one of PROTOCOLS); `seed` only matters for "random"."""
    if protocol == "time":
        return time_split(ratings, test_fraction)
    if protocol == "random":
        return random_split(ratings, test_fraction, seed)
    raise ValueError(f"unknown split protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def _time_ordered(ratings: pd.DataFrame) -> pd.DataFrame:
    return ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)
