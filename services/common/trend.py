"""Time-decayed counts kept as one log-space number, so a sorted set orders items by their decayed count."""

from __future__ import annotations

import math

import numpy as np


class Decay:
    """An item's trending score is log(sum over its positive events of 2 ** (t / half_life)), t in epoch
    seconds. Adding an event never needs the current time, the order of scores is the order of decayed
    counts at any moment, and `counts(scores, now)` turns scores back into counts as of `now`."""

    def __init__(self, half_life_seconds: float) -> None:
        if half_life_seconds <= 0:
            raise ValueError(f"half_life_seconds must be positive, got {half_life_seconds}")
        self.rate = math.log(2.0) / half_life_seconds

    def term(self, timestamp: float) -> float:
        """The log-space weight of one event at `timestamp` (what the apply script log-adds to the score)."""
        return timestamp * self.rate

    def counts(self, scores: np.ndarray, now: float) -> np.ndarray:
        """Decayed counts as of `now` of items with these scores."""
        return np.exp(np.asarray(scores, np.float64) - now * self.rate)
