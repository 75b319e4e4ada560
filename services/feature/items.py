"""Builds item feature batches from the bundle's item table (what the embedded store serves)."""

from __future__ import annotations

import numpy as np

from wren.core.bundle import Bundle
from wren.core.types import ItemBatch


class ItemCatalog:
    """The bundle's item features, ready to slice into ItemBatch rows by id."""

    def __init__(self, bundle: Bundle) -> None:
        items = bundle.items
        self.items = items
        self.version = bundle.version
        self.dense = items.dense.astype(np.float32)
        self.genres = items.genres.astype(np.float32)
        self.embeddings = (bundle.embeddings * items.has_embedding[:, None]).astype(np.float32)
        names = np.array(bundle.genres)
        self.genre_names = ["|".join(names[row.astype(bool)]) for row in items.genres]

    def batch(self, item_ids: np.ndarray) -> ItemBatch:
        item_ids = np.asarray(item_ids, np.int64)
        rows, found = self.items.rows(item_ids)
        mask = found[:, None]
        return ItemBatch(
            item_ids=item_ids,
            known=found,
            dense=self.dense[rows] * mask,
            genres=self.genres[rows] * mask,
            embedding=self.embeddings[rows] * mask,
            titles=[self.items.titles[r] if f else "" for r, f in zip(rows, found, strict=True)],
            genre_names=[self.genre_names[r] if f else "" for r, f in zip(rows, found, strict=True)],
            years=np.where(found, self.items.years[rows], 0).astype(np.int32),
            bundle_version=self.version,
        )
