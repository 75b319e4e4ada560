"""Feature schema: the names, order and derivation of every feature the tiers exchange.

Training and serving both derive features through these functions, so a feature means the same thing
offline and online.
"""

from __future__ import annotations

import numpy as np

USER_COUNTERS = ("count", "rating_sum", "rating_sumsq", "positives")
USER_DENSE = ("log_count", "mean_rating", "std_rating", "positive_ratio")
ITEM_DENSE = ("log_count", "mean_rating", "std_rating", "positive_ratio", "release_year", "log_popularity")

DEFAULT_RATING = 3.5  # mean/std stand-in for users or items with no ratings yet


def user_dense(counters: np.ndarray) -> np.ndarray:
    """[n, 4] counters (count, sum, sum of squares, positives) -> [n, 4] USER_DENSE float32."""
    counters = np.atleast_2d(np.asarray(counters, dtype=np.float64))
    count, total, sumsq, positives = counters.T
    safe = np.maximum(count, 1.0)
    mean = np.where(count > 0, total / safe, DEFAULT_RATING)
    var = np.where(count > 1, np.maximum(sumsq / safe - mean**2, 0.0) * count / np.maximum(count - 1, 1), 0.0)
    ratio = np.where(count > 0, positives / safe, 0.0)
    return np.stack([np.log1p(count), mean, np.sqrt(var), ratio], axis=1).astype(np.float32)


def genre_affinity(genre_counts: np.ndarray) -> np.ndarray:
    """[n, G] positive-interaction counts per genre -> [n, G] shares summing to 1 (zeros when none)."""
    genre_counts = np.atleast_2d(np.asarray(genre_counts, dtype=np.float32))
    totals = genre_counts.sum(axis=1, keepdims=True)
    return np.divide(genre_counts, totals, out=np.zeros_like(genre_counts), where=totals > 0)


GENRE_RATING_PRIOR = 2.0  # pseudo-ratings at the user's own mean that shrink sparse genre means


def genre_rating_deviation(genre_rated: np.ndarray, genre_rating_sum: np.ndarray, counters: np.ndarray) -> np.ndarray:
    """[n, G] how much more (or less) than usual a user rates each genre: the genre's mean rating, shrunk
    towards the user's mean by GENRE_RATING_PRIOR pseudo-ratings, minus the user's mean. Unlike genre
    affinity it sees dislikes too; 0 for genres the user never rated."""
    genre_rated = np.atleast_2d(np.asarray(genre_rated, dtype=np.float64))
    genre_rating_sum = np.atleast_2d(np.asarray(genre_rating_sum, dtype=np.float64))
    mean = user_dense(counters)[:, 1:2].astype(np.float64)
    shrunk = (genre_rating_sum + GENRE_RATING_PRIOR * mean) / (genre_rated + GENRE_RATING_PRIOR)
    return (shrunk - mean).astype(np.float32)


RECALL_FEATURES = ("rank", "score")
"""Per recall channel, the features a candidate carries to ranking, in this order of column blocks: 1 / (1 + its
rank in the channel's list) and its channel score over the channel's best score for that request (0 where the
channel did not propose it)."""


def recall_feature_width(channels: int) -> int:
    return len(RECALL_FEATURES) * channels


EVENT_TYPES = ("rating", "click", "view")
POSITIVE_EVENT_TYPES = ("click",)  # implicit positives; ratings are positive at the bundle's threshold

RATING_RANGE = (0.5, 5.0)  # the MovieLens star scale; ratings outside it are invalid
