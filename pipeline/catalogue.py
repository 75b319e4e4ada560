"""The catalogue columns of a bundle: rating statistics over every rating, each item's top tags, its links."""

from __future__ import annotations

import numpy as np

from pipeline.data.dataset import Dataset
from wren.core.arrays import sorted_rows

MAX_TAGS = 20  # tags kept per item, most applied first


def catalogue_columns(dataset: Dataset, ids: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, list]]:
    """(arrays for items.npz, lists for items.json), row i belonging to ids[i] (ascending item ids).

    Arrays: rating_count int64 and rating_sum float64 over every rating of the dataset (the catalogue
    shows all of them; the model features use the training part only). Lists: tags, each item's distinct
    tags by how many users applied them (ties by name), at most MAX_TAGS; links, [imdb id, tmdb id] per
    item as the data gives them (digits as strings), None where missing.
    """
    ratings = dataset.ratings
    rows, found = _rows(ids, ratings["item_id"].to_numpy(np.int64))
    rating_count = np.bincount(rows[found], minlength=len(ids)).astype(np.int64)
    weights = ratings["rating"].to_numpy(np.float64)[found]
    rating_sum = np.bincount(rows[found], weights=weights, minlength=len(ids)).astype(np.float64)

    tags: list[list[str]] = [[] for _ in ids]
    if not dataset.tags.empty:
        counted = dataset.tags.groupby(["item_id", "tag"]).size().reset_index(name="n")
        counted = counted.sort_values(["item_id", "n", "tag"], ascending=[True, False, True], kind="stable")
        for item_id, group in counted.groupby("item_id", sort=False):
            row, known = _rows(ids, np.array([item_id], np.int64))
            if known[0]:
                tags[int(row[0])] = group["tag"].head(MAX_TAGS).tolist()

    links: list[list[str | None]] = [[None, None] for _ in ids]
    link_rows, link_found = _rows(ids, dataset.links["item_id"].to_numpy(np.int64))
    for row, known, imdb, tmdb in zip(
        link_rows, link_found, dataset.links["imdb_id"], dataset.links["tmdb_id"], strict=True
    ):
        if known:
            links[int(row)] = [imdb or None, tmdb or None]
    return {"rating_count": rating_count, "rating_sum": rating_sum}, {"tags": tags, "links": links}


def _rows(ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = sorted_rows(ids, item_ids)
    return np.maximum(rows, 0), rows >= 0
