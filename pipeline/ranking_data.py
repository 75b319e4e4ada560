"""Assembles ranking-model inputs for many (user, item) rows from counters-form features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from wren.core.arrays import mean_embeddings, sorted_rows
from wren.core.bundle import UserTable
from wren.core.model_inputs import model_inputs
from wren.core.schema import genre_rating_deviation, user_dense


def assemble(
    *,
    user_counters: np.ndarray,
    user_genre_rated: np.ndarray,
    user_genre_rating_sum: np.ndarray,
    user_recent: np.ndarray,
    item_ids: np.ndarray,
    item_dense: np.ndarray,
    catalog_ids: np.ndarray,
    catalog_genres: np.ndarray,
    embeddings: np.ndarray,
    has_embedding: np.ndarray,
    recall_features: np.ndarray,
) -> dict[str, np.ndarray]:
    """Model inputs for N rows: per-row user counters [N, 4], ratings and rating sums per genre [N, G], recent item ids
    [N, R] (-1 padded), item ids [N] with their dense features [N, Di] and recall features [N, C]; catalog arrays
    describe items."""
    recent_rows = sorted_rows(catalog_ids, user_recent)
    item_rows = sorted_rows(catalog_ids, item_ids)
    if np.any(item_rows < 0):
        raise ValueError("every ranked item must be in the catalog")
    return model_inputs(
        user_dense=user_dense(user_counters),
        user_genres=genre_rating_deviation(user_genre_rated, user_genre_rating_sum, user_counters),
        user_embedding=mean_embeddings(recent_rows, embeddings, has_embedding),
        recent_index=recent_rows + 1,
        item_index=item_rows + 1,
        item_dense=item_dense,
        item_genres=catalog_genres[item_rows].astype(np.float32),
        item_embedding=embeddings[item_rows] * has_embedding[item_rows, None],
        recall_features=recall_features,
    )


def snapshot_rows(
    ratings: pd.DataFrame,
    users: UserTable,
    catalog_ids: np.ndarray,
    catalog_dense: np.ndarray,
    catalog_genres: np.ndarray,
    embeddings: np.ndarray,
    has_embedding: np.ndarray,
    recall_channels: int,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """(model inputs, the ratings they belong to) for ratings of known users and items, with the users'
    end-of-training snapshot features — what the online tiers see for them before any new event. Their recall
    features are zero (these are rated items, not recall candidates)."""
    known = np.isin(ratings["user_id"].to_numpy(np.int64), users.ids) & np.isin(
        ratings["item_id"].to_numpy(np.int64), catalog_ids
    )
    ratings = ratings[known]
    user_rows = np.searchsorted(users.ids, ratings["user_id"].to_numpy(np.int64))
    item_rows = np.searchsorted(catalog_ids, ratings["item_id"].to_numpy(np.int64))
    inputs = assemble(
        user_counters=users.counters[user_rows],
        user_genre_rated=users.genre_rated[user_rows],
        user_genre_rating_sum=users.genre_rating_sum[user_rows],
        user_recent=users.recent[user_rows],
        item_ids=catalog_ids[item_rows],
        item_dense=catalog_dense[item_rows],
        catalog_ids=catalog_ids,
        catalog_genres=catalog_genres,
        embeddings=embeddings,
        has_embedding=has_embedding,
        recall_features=np.zeros((len(ratings), recall_channels), np.float32),
    )
    return inputs, ratings
