"""Item-to-item graphs for the graph recall channels: sparse (each item's strongest weights) or dense (every
weight between the items a model covers), scored the same way and stored as named arrays in the bundle."""

from __future__ import annotations

from typing import Protocol

import numpy as np
from scipy import sparse


class ItemGraph(Protocol):
    """Weights between the first `n` item rows: row i says what an interaction with item i adds to the others."""

    n: int

    def scores(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """float64 [n]: the sum of graph rows `rows` (each in [0, n)), row j times weights[j]."""
        ...

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays `item_graph_from_arrays` rebuilds this graph from."""
        ...


class SparseItemGraph:
    """A CSR [n, n] matrix: each row holds the neighbours a model kept for that item."""

    def __init__(self, matrix: sparse.csr_matrix) -> None:
        self.matrix = matrix
        self.n = matrix.shape[0]

    def scores(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        neighbours = self.matrix[rows]
        per_entry = np.repeat(weights, np.diff(neighbours.indptr)) * neighbours.data
        return np.bincount(neighbours.indices, weights=per_entry, minlength=self.n)

    def arrays(self) -> dict[str, np.ndarray]:
        m = self.matrix
        return {"data": m.data, "indices": m.indices, "indptr": m.indptr, "shape": np.array(m.shape)}


class DenseItemGraph:
    """Every weight between the item rows `covered` (ascending): float32 [m, m]; other rows add nothing and get
    nothing. Scoring a user is one product of their weights with the rows they touched."""

    def __init__(self, covered: np.ndarray, weights: np.ndarray, n: int) -> None:
        if weights.shape != (len(covered), len(covered)):
            raise ValueError(f"weights {weights.shape} do not match {len(covered)} covered rows")
        self.covered = np.asarray(covered, np.int64)
        self.weights = weights
        self.n = n
        self._position = np.full(n, -1, np.int64)
        self._position[self.covered] = np.arange(len(self.covered))

    def scores(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Few rows: their weighted sum (reads rows x m); many (a quarter of m or more): one matrix-vector
        product over the whole block (reads m x m, copies nothing), which is cheaper by then."""
        out = np.zeros(self.n, np.float64)
        position = self._position[rows]
        use = position >= 0
        if not use.any():
            return out
        m = len(self.covered)
        if 4 * int(use.sum()) < m:
            out[self.covered] = np.asarray(weights[use], np.float32) @ self.weights[position[use]]
        else:
            out[self.covered] = (
                np.bincount(position[use], weights=weights[use], minlength=m).astype(np.float32) @ self.weights
            )
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"covered": self.covered, "weights": self.weights, "n": np.array(self.n)}


def item_graph_from_arrays(parts: dict[str, np.ndarray]) -> ItemGraph:
    """The graph `arrays()` wrote: dense when it holds "weights", else CSR."""
    if "weights" in parts:
        return DenseItemGraph(parts["covered"], parts["weights"], int(parts["n"]))
    return SparseItemGraph(
        sparse.csr_matrix((parts["data"], parts["indices"], parts["indptr"]), shape=tuple(parts["shape"]))
    )
