"""User ids to request: the dataset's users, drawn uniformly or with a Zipf skew over a shuffled ranking."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

BLOCK = 65_536  # draws made at once; a request then costs one array lookup


def users_from_bundle(artifacts: str | Path) -> np.ndarray:
    """The user ids a trained bundle knows (int64, ascending)."""
    from wren.core.bundle import Bundle

    return np.asarray(Bundle(artifacts).users.ids, np.int64)


def users_from_dataset(directory: str | Path) -> np.ndarray:
    """Distinct user ids of a MovieLens-layout dataset (the userId column of ratings.csv)."""
    path = Path(directory) / "ratings.csv"
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        column = header.index("userId")
        ids = {int(row[column]) for row in reader if row}
    if not ids:
        raise ValueError(f"{path} has no ratings")
    return np.array(sorted(ids), np.int64)


def zipf_weights(n: int, s: float) -> np.ndarray:
    """Probabilities of ranks 1..n proportional to 1 / rank**s (s = 0 is uniform)."""
    if n < 1:
        raise ValueError("need at least one user")
    if s < 0:
        raise ValueError(f"zipf exponent must be >= 0, got {s}")
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return weights / weights.sum()


class UserSampler:
    """Draws user ids: rank r (1-based) with probability proportional to 1 / r**s. Which user holds which
    rank is a seeded shuffle, so the hottest users are not simply the lowest ids."""

    def __init__(self, users: np.ndarray, s: float = 0.0, seed: int = 0) -> None:
        users = np.asarray(users, np.int64)
        self.s = float(s)
        self._rng = np.random.default_rng(seed)
        self.ranked = users[self._rng.permutation(len(users))]
        self.weights = zipf_weights(len(users), self.s)
        self._block = np.empty(0, np.int64)
        self._next = 0

    def __len__(self) -> int:
        return len(self.ranked)

    def draw(self, size: int) -> np.ndarray:
        return self.ranked[self._rng.choice(len(self.ranked), size=size, p=self.weights)]

    def next(self) -> int:
        if self._next >= len(self._block):
            self._block, self._next = self.draw(BLOCK), 0
        value = int(self._block[self._next])
        self._next += 1
        return value
