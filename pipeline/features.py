"""Item and user features from training ratings: serving snapshots and point-in-time training rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from wren.core.arrays import sorted_rows
from wren.core.schema import user_dense

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class ItemFeatures:
    """Catalog items in ascending id order (row i <-> ids[i]); statistics from training ratings only."""

    ids: np.ndarray  # int64 [n]
    genres: np.ndarray  # uint8 [n, G]
    years: np.ndarray  # int32 [n], 0 = unknown
    counters: np.ndarray  # float64 [n, 4] count, sum, sum of squares, positives
    popularity: np.ndarray  # float32 [n]
    dense: np.ndarray  # float32 [n, len(ITEM_DENSE)]
    fill_year: int  # stand-in release year for items without one

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row of each id; every id must be in the catalog (the loaders guarantee it for ratings), -1 otherwise."""
        return sorted_rows(self.ids, item_ids)


@dataclass(frozen=True)
class UserFeatures:
    """Per-user (snapshot) or per-rating (point-in-time) user features; see `schema.USER_COUNTERS`."""

    counters: np.ndarray  # float64 [N, 4]
    genre_counts: np.ndarray  # float32 [N, G] positive interactions per genre
    genre_rated: np.ndarray  # float32 [N, G] ratings per genre
    genre_rating_sum: np.ndarray  # float32 [N, G] sum of those ratings
    recent: np.ndarray  # int64 [N, R] item ids newest first, -1 padded


def genre_vocabulary(items: pd.DataFrame) -> list[str]:
    return sorted({genre for genres in items["genres"] for genre in genres})


def genre_matrix(items: pd.DataFrame, genres: list[str]) -> np.ndarray:
    position = {genre: i for i, genre in enumerate(genres)}
    matrix = np.zeros((len(items), len(genres)), dtype=np.uint8)
    for row, item_genres in enumerate(items["genres"]):
        for genre in item_genres:
            if genre in position:
                matrix[row, position[genre]] = 1
    return matrix


def _counters(rows: np.ndarray, ratings: np.ndarray, positive: np.ndarray, size: int) -> np.ndarray:
    counters = np.zeros((size, 4), dtype=np.float64)
    np.add.at(counters[:, 0], rows, 1.0)
    np.add.at(counters[:, 1], rows, ratings)
    np.add.at(counters[:, 2], rows, ratings**2)
    np.add.at(counters[:, 3], rows, positive.astype(np.float64))
    return counters


def item_features(
    train: pd.DataFrame, items: pd.DataFrame, genres: list[str], threshold: float, half_life_days: float
) -> ItemFeatures:
    """Rating statistics, time-decayed popularity and content columns for every catalog item."""
    catalog = items.sort_values("item_id").reset_index(drop=True)
    ids = catalog["item_id"].to_numpy(np.int64)
    rows = np.searchsorted(ids, train["item_id"].to_numpy(np.int64))
    ratings = train["rating"].to_numpy(np.float64)
    positive = ratings >= threshold
    counters = _counters(rows, ratings, positive, len(ids))

    weights = positive * time_decay(train["timestamp"].to_numpy(np.int64), half_life_days)
    popularity = np.bincount(rows, weights=weights, minlength=len(ids)).astype(np.float32)

    years = catalog["year"].to_numpy(np.int32)
    known_years = years[years > 0]
    fill_year = int(np.median(known_years)) if len(known_years) else 2000
    dense = item_dense(counters, years, fill_year, popularity)
    return ItemFeatures(ids, genre_matrix(catalog, genres), years, counters, popularity, dense, fill_year)


def time_decay(timestamps: np.ndarray, half_life_days: float) -> np.ndarray:
    """Weight 0.5 ** (age / half-life) relative to the newest timestamp; all ones when half-life <= 0."""
    if half_life_days <= 0 or len(timestamps) == 0:
        return np.ones(len(timestamps))
    age_days = (timestamps.max() - timestamps) / SECONDS_PER_DAY
    return 0.5 ** (age_days / half_life_days)


def item_dense(counters: np.ndarray, years: np.ndarray, fill_year: int, popularity: np.ndarray) -> np.ndarray:
    """ITEM_DENSE columns; the rating columns follow the same rules as the user's."""
    stats = user_dense(counters)
    year = np.where(years > 0, years, fill_year).astype(np.float32)
    return np.column_stack([stats, year, np.log1p(popularity)]).astype(np.float32)


def point_in_time_item_dense(
    train: pd.DataFrame, items: ItemFeatures, threshold: float, half_life_days: float
) -> np.ndarray:
    """Item features for each training rating from the ratings strictly before it (by time, ties broken by
    user and item id): what the online system knew when the rating happened, so no row sees its own label
    or the future."""
    order = np.lexsort((train["item_id"].to_numpy(), train["user_id"].to_numpy(), train["timestamp"].to_numpy()))
    timestamps = train["timestamp"].to_numpy(np.int64)[order]
    rows = items.rows(train["item_id"].to_numpy()[order])
    ratings = train["rating"].to_numpy(np.float64)[order]
    positive = (ratings >= threshold).astype(np.float64)
    own = np.column_stack([np.ones_like(ratings), ratings, ratings**2, positive])
    by_item = np.argsort(rows, kind="stable")  # chronological within each item
    sorted_rows = rows[by_item]
    first = np.r_[True, sorted_rows[1:] != sorted_rows[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(by_item)), 0))
    running = np.cumsum(own[by_item], axis=0)
    running = np.vstack([np.zeros((1, 4)), running[:-1]])
    before = running - running[start]
    if half_life_days > 0:
        newest = timestamps.max()
        weights = positive[by_item] * np.exp2((timestamps[by_item] - newest) / (half_life_days * SECONDS_PER_DAY))
        decayed = np.r_[0.0, np.cumsum(weights)[:-1]]
        decayed = (decayed - decayed[start]) * np.exp2(
            np.minimum((newest - timestamps[by_item]) / (half_life_days * SECONDS_PER_DAY), 1000.0)
        )
    else:
        decayed = before[:, 3]
    dense_sorted = item_dense(before, items.years[sorted_rows], items.fill_year, decayed.astype(np.float32))
    dense = np.empty_like(dense_sorted)
    dense[order[by_item]] = dense_sorted
    return dense


def user_snapshot(
    train: pd.DataFrame, items: ItemFeatures, threshold: float, recent_len: int
) -> tuple[np.ndarray, UserFeatures]:
    """(user ids ascending, features from each user's whole training history)."""
    frame = train.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    user_ids, user_rows = np.unique(frame["user_id"].to_numpy(np.int64), return_inverse=True)
    ratings = frame["rating"].to_numpy(np.float64)
    positive = ratings >= threshold
    item_rows = items.rows(frame["item_id"].to_numpy())
    counters = _counters(user_rows, ratings, positive, len(user_ids))
    item_genres = items.genres[item_rows].astype(np.float32)
    genre_counts = np.zeros((len(user_ids), items.genres.shape[1]), dtype=np.float32)
    np.add.at(genre_counts, user_rows[positive], item_genres[positive])
    genre_rated = np.zeros_like(genre_counts)
    np.add.at(genre_rated, user_rows, item_genres)
    genre_rating_sum = np.zeros_like(genre_counts)
    np.add.at(genre_rating_sum, user_rows, item_genres * ratings[:, None].astype(np.float32))

    pos_users = user_rows[positive]
    pos_items = frame["item_id"].to_numpy(np.int64)[positive]
    ends = np.searchsorted(pos_users, np.arange(len(user_ids)), side="right")
    starts = np.searchsorted(pos_users, np.arange(len(user_ids)), side="left")
    recent = _take_recent(pos_items, starts, ends, recent_len)
    return user_ids, UserFeatures(counters, genre_counts, genre_rated, genre_rating_sum, recent)


def point_in_time_user_features(
    train: pd.DataFrame, items: ItemFeatures, threshold: float, recent_len: int
) -> UserFeatures:
    """For each training rating (in `train`'s order, which must be sorted by user then time), the user's
    features from strictly earlier ratings only — what the online system knew at that moment."""
    user = train["user_id"].to_numpy(np.int64)
    if len(user) > 1 and np.any(np.diff(user) < 0):
        raise ValueError("train must be sorted by user_id, timestamp")
    ratings = train["rating"].to_numpy(np.float64)
    positive = ratings >= threshold
    item_rows = items.rows(train["item_id"].to_numpy())
    first_of_user = np.r_[True, user[1:] != user[:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_user, np.arange(len(user)), 0))

    def before(values: np.ndarray) -> np.ndarray:
        """Per-user cumulative sum over earlier rows (exclusive)."""
        running = np.cumsum(values, axis=0)
        running = np.concatenate([np.zeros_like(running[:1]), running[:-1]])
        return running - running[group_start]

    own = np.column_stack([np.ones_like(ratings), ratings, ratings**2, positive.astype(np.float64)])
    counters = before(own)
    item_genres = items.genres[item_rows].astype(np.int32)
    genre_counts = before(item_genres * positive[:, None]).astype(np.float32)
    genre_rated = before(item_genres).astype(np.float32)
    genre_rating_sum = before(item_genres * ratings[:, None]).astype(np.float32)

    positives_before = before(positive.astype(np.int64))  # positives strictly before each row
    pos_index = np.flatnonzero(positive)  # global positions of positive rows, grouped by user
    pos_start = np.searchsorted(pos_index, group_start)  # first positive of the row's user
    ends = pos_start + positives_before
    recent = _take_recent(train["item_id"].to_numpy(np.int64)[pos_index], pos_start, ends, recent_len)
    return UserFeatures(counters, genre_counts, genre_rated, genre_rating_sum, recent)


def _take_recent(sequence: np.ndarray, starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """For each (start, end): sequence[end-1], sequence[end-2], ... down to start, at most `length`, -1 padded."""
    offsets = ends[:, None] - 1 - np.arange(length)[None, :]
    valid = offsets >= starts[:, None]
    safe = np.clip(offsets, 0, max(len(sequence) - 1, 0))
    taken = sequence[safe] if len(sequence) else np.zeros_like(safe)
    return np.where(valid, taken, -1).astype(np.int64)
