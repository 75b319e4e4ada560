"""Cold start: user segments with their popular lists, and content-based embeddings for cold items."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from wren.core.recall.content import content_neighbour_embeddings

NEW_SEGMENT = "new"
ACTIVITY_BUCKETS = ((1, "activity:light"), (20, "activity:regular"), (100, "activity:heavy"))
AGE_BUCKETS = ((0, "<18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55+"))


def activity_segment(count: float) -> str:
    name = NEW_SEGMENT
    for floor, bucket in ACTIVITY_BUCKETS:
        if count >= floor:
            name = bucket
    return name


def demographic_segment(age: int, gender: str) -> str:
    bucket = AGE_BUCKETS[0][1]
    for floor, name in AGE_BUCKETS:
        if age >= floor:
            bucket = name
    return f"age:{bucket}|gender:{gender}"


def assign_segments(
    user_ids: np.ndarray, counts: np.ndarray, demographics: pd.DataFrame | None
) -> tuple[np.ndarray, list[str], str]:
    """(segment index per user, segment names with NEW_SEGMENT first, segmentation kind)."""
    if demographics is not None and not demographics.empty:
        kind = "demographics"
        table = demographics.set_index("user_id")
        labels = []
        for user, count in zip(user_ids, counts, strict=True):
            if user in table.index:
                row = table.loc[user]
                labels.append(demographic_segment(int(row["age"]), str(row["gender"])))
            else:
                labels.append(activity_segment(count))
    else:
        kind = "activity"
        labels = [activity_segment(count) for count in counts]
    names = [NEW_SEGMENT] + sorted(set(labels) - {NEW_SEGMENT})
    position = {name: i for i, name in enumerate(names)}
    return np.array([position[label] for label in labels], np.int32), names, kind


def segment_popular_lists(
    train: pd.DataFrame,
    user_ids: np.ndarray,
    user_segment: np.ndarray,
    segment_names: list[str],
    item_ids: np.ndarray,
    popularity: np.ndarray,
    threshold: float,
    size: int,
) -> tuple[dict[str, list[int]], list[int]]:
    """({segment: most liked items among its users}, global popular list); the new-user segment gets
    the global (time-decayed) popular list."""
    global_order = np.argsort(-popularity, kind="stable")
    popular = item_ids[global_order[popularity[global_order] > 0]][:size]
    positives = train[train["rating"] >= threshold]
    segment_of = user_segment[np.searchsorted(user_ids, positives["user_id"].to_numpy(np.int64))]
    item_rows = np.searchsorted(item_ids, positives["item_id"].to_numpy(np.int64))
    lists: dict[str, list[int]] = {NEW_SEGMENT: popular.tolist()}
    for index, name in enumerate(segment_names):
        if name == NEW_SEGMENT:
            continue
        counts = np.bincount(item_rows[segment_of == index], minlength=len(item_ids)).astype(np.float64)
        counts += popularity / (popularity.max() + 1.0)  # tie-break by global popularity
        order = np.argsort(-counts, kind="stable")[:size]
        lists[name] = item_ids[order[counts[order] >= 1.0]].tolist()
    return lists, popular.tolist()


def fill_cold_embeddings(
    embeddings: np.ndarray,
    trained: np.ndarray,
    interactions: np.ndarray,
    content: sparse.csr_matrix,
    min_interactions: int,
    neighbours: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Embeddings for items the skip-gram model saw too rarely to trust.

    Warm items (a trained vector and at least `min_interactions` positive interactions) keep theirs.
    Every other item gets the content prior, the mean embedding of its `neighbours` most
    content-similar warm items; an item with n < min_interactions interactions and a trained vector
    gets the shrinkage blend (n * trained + m * prior) / (n + m) of unit vectors, m = min_interactions.
    Returns (embeddings, has_embedding, counts by kind).
    """
    warm = trained & (interactions >= min_interactions)
    cold = np.flatnonzero(~warm)
    prior, used = content_neighbour_embeddings(content[cold], content, embeddings, warm, neighbours)
    has_prior = used > 0
    result = embeddings.copy()
    weight = np.where(trained[cold], interactions[cold], 0.0).astype(np.float32)[:, None]
    shrink = float(min_interactions)
    blended = (weight * _unit(embeddings[cold]) + shrink * _unit(prior) * has_prior[:, None]) / (
        weight + shrink * has_prior[:, None]
    ).clip(min=1e-12)
    result[cold] = blended
    has_embedding = warm.copy()
    has_embedding[cold] = has_prior | trained[cold]
    report = {
        "warm_items": int(warm.sum()),
        "rare_items_shrunk_to_content": int((trained[cold] & has_prior).sum()),
        "unseen_items_from_content": int((~trained[cold] & has_prior).sum()),
        "items_without_embedding": int((~has_embedding).sum()),
    }
    return result, has_embedding, report


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
