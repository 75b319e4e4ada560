"""Collaborative-filtering user vectors at request time: the ALS fold-in over the item factors, and the
reduction of inner-product search to the cosine index the recall tier already has."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class CFModel:
    """Item factors of an implicit-feedback ALS model, aligned with the recall catalog's rows.

    item_factors: float32 [n, f], zero rows for items the model never saw; regularization and alpha are
    the ALS settings the factors were trained with (every interaction has confidence alpha).
    """

    item_factors: np.ndarray
    regularization: float
    alpha: float

    @property
    def factors(self) -> int:
        return int(self.item_factors.shape[1])

    @cached_property
    def _gram(self) -> np.ndarray:
        y = self.item_factors.astype(np.float64)
        return y.T @ y + self.regularization * np.eye(self.factors)

    @cached_property
    def max_norm(self) -> float:
        norms = np.linalg.norm(self.item_factors, axis=1)
        return float(norms.max()) if len(norms) else 0.0

    def fold_in(self, rows: np.ndarray) -> np.ndarray | None:
        """The ALS user step for a user who interacted with catalog `rows` (the exact solve implicit's
        `recalculate_user` makes): (YᵀY + λI + (α − 1) Y_uᵀ Y_u) x = α Y_uᵀ 1. None without usable rows."""
        rows = np.unique(np.asarray(rows, np.int64))
        rows = rows[(rows >= 0) & (rows < len(self.item_factors))]
        y = self.item_factors[rows].astype(np.float64)
        y = y[np.any(y != 0, axis=1)]
        if len(y) == 0:
            return None
        a = self._gram + (self.alpha - 1.0) * (y.T @ y)
        return np.linalg.solve(a, self.alpha * y.sum(axis=0)).astype(np.float32)

    def index_vectors(self) -> np.ndarray:
        """[n, f + 1] item vectors whose cosine with `query(u)` orders items by u · y (all have norm M):
        y' = [y, sqrt(M² − |y|²)]."""
        return mips_items(self.item_factors, self.max_norm)

    def query(self, user: np.ndarray) -> np.ndarray:
        return np.append(np.asarray(user, np.float32), np.float32(0.0))

    def inner_products(self, user: np.ndarray, cosines: np.ndarray) -> np.ndarray:
        """Turns the index's cosine scores for `query(user)` back into u · y."""
        return (cosines * np.linalg.norm(user) * self.max_norm).astype(np.float32)


def mips_items(item_factors: np.ndarray, max_norm: float) -> np.ndarray:
    """Appends sqrt(max_norm² − |y|²) to each row, so every vector has norm max_norm."""
    y = np.asarray(item_factors, np.float32)
    extra = np.sqrt(np.maximum(max_norm**2 - np.einsum("ij,ij->i", y, y), 0.0))
    return np.hstack([y, extra[:, None].astype(np.float32)])
