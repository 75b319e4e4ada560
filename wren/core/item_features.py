"""ItemFeatureTable: a bundle's item features as ranking models read them, gathered by id in one step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wren.core.arrays import IdIndex
from wren.core.bundle import Bundle


@dataclass(frozen=True, slots=True)
class ItemRows:
    """Features of n requested items in request order; unknown ids have zero rows and index 0.

    index: int64 [n] model vocabulary index (sorted id row + 1; 0 = padding / unknown, as ItemVocabulary);
    known: bool [n]; dense: float32 [n, len(ITEM_DENSE)]; genres: float32 [n, G] multi-hot;
    embedding: float32 [n, D] (zero for items without one).
    """

    index: np.ndarray
    known: np.ndarray
    dense: np.ndarray
    genres: np.ndarray
    embedding: np.ndarray


class ItemFeatureTable:
    """The bundle's item table as float32 matrices with one zero row appended, so that the row an unknown id
    maps to (-1) reads zeros: a gather is one searchsorted and three fancy-index copies, no masking. The values
    equal what the feature tier serves for the same bundle (services.feature.items.ItemCatalog)."""

    def __init__(self, bundle: Bundle) -> None:
        items = bundle.items
        self.index = IdIndex(items.ids)
        embeddings = bundle.embeddings * items.has_embedding[:, None]
        self._dense = _with_zero_row(items.dense)
        self._genres = _with_zero_row(items.genres)
        self._embedding = _with_zero_row(embeddings)

    def __len__(self) -> int:
        return len(self.index)

    def gather(self, item_ids: np.ndarray) -> ItemRows:
        rows = self.index.rows(item_ids)
        return ItemRows(
            index=rows + 1,
            known=rows >= 0,
            dense=self._dense[rows],
            genres=self._genres[rows],
            embedding=self._embedding[rows],
        )


def _with_zero_row(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, np.float32)
    return np.vstack([matrix, np.zeros((1, matrix.shape[1]), np.float32)])
