"""Builds the per-user table the bundle ships (features, rated items, cold-start segment)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from pipeline import coldstart, features
from wren.core.bundle import UserTable


def rated_csr(ratings: pd.DataFrame, user_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(indptr [m + 1], item ids, their ratings float32, their timestamps int64) of each user's rated items,
    users in `user_ids` order, each user's newest first (ties by descending item id)."""
    frame = ratings.sort_values(["user_id", "timestamp", "item_id"], ascending=[True, False, False], kind="stable")
    rows = np.searchsorted(user_ids, frame["user_id"].to_numpy(np.int64))
    counts = np.bincount(rows, minlength=len(user_ids))
    return (
        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        frame["item_id"].to_numpy(np.int64),
        frame["rating"].to_numpy(np.float32),
        frame["timestamp"].to_numpy(np.int64),
    )


def user_table(
    ratings: pd.DataFrame,
    items: features.ItemFeatures,
    demographics: pd.DataFrame | None,
    threshold: float,
    recent_len: int,
) -> tuple[UserTable, str]:
    """(table of every user in `ratings`, segmentation kind)."""
    user_ids, snapshot = features.user_snapshot(ratings, items, threshold, recent_len)
    segment, names, kind = coldstart.assign_segments(user_ids, snapshot.counters[:, 0], demographics)
    indptr, rated, rated_ratings, rated_timestamps = rated_csr(ratings, user_ids)
    table = UserTable(
        ids=user_ids,
        counters=snapshot.counters,
        genre_counts=snapshot.genre_counts,
        genre_rated=snapshot.genre_rated,
        genre_rating_sum=snapshot.genre_rating_sum,
        recent=snapshot.recent,
        rated_indptr=indptr,
        rated_ids=rated,
        segment=segment,
        rated_ratings=rated_ratings,
        rated_timestamps=rated_timestamps,
        segment_names=names,
    )
    return table, kind


def align_segments(*tables: UserTable) -> tuple[UserTable, ...]:
    """The tables re-indexed onto one list of segment names (NEW_SEGMENT first, then sorted), so that every
    user table of a bundle shares the manifest's names."""
    names = [coldstart.NEW_SEGMENT] + sorted({n for t in tables for n in t.segment_names} - {coldstart.NEW_SEGMENT})
    position = {name: i for i, name in enumerate(names)}
    aligned = []
    for table in tables:
        remap = np.array([position[name] for name in table.segment_names], np.int32)
        aligned.append(dataclasses.replace(table, segment=remap[table.segment], segment_names=names))
    return tuple(aligned)
