"""The interface every vector index backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np


class VectorIndex(ABC):
    """Cosine-similarity nearest-neighbour search over item vectors keyed by int64 item id.

    Data contract: vectors are float32 [n, dim]; they need not be normalised (backends normalise).
    `search` takes queries [q, dim] and returns (ids int64 [q, k], scores float32 [q, k]) ordered by
    descending cosine similarity; rows with fewer than k results are padded with id -1 and score -inf.
    Adding an id that is already present replaces its vector. Item ids must be non-negative (-1 is the
    padding id); an id repeated within one `add` call keeps its last vector. Bad shapes, NaN/inf values
    and negative ids raise ValueError. Equal scores come back in no particular order; an all-zero vector
    has cosine 0 with everything.
    """

    kind: str = ""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def save(self, directory: Path) -> dict:
        """Writes the index under `directory`; returns the params needed to load it (JSON-safe)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, params: dict) -> VectorIndex: ...

    @abstractmethod
    def memory_bytes(self) -> int:
        """Approximate resident size of the index structures."""
