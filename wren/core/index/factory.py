"""Builds and loads vector indexes by kind name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wren.core.index.base import VectorIndex
from wren.core.index.exact import ExactIndex
from wren.core.index.hnsw import HnswIndex
from wren.core.index.lsh import LshIndex

INDEX_KINDS = ("hnsw", "exact", "lsh")
_CLASSES: dict[str, type[VectorIndex]] = {"hnsw": HnswIndex, "exact": ExactIndex, "lsh": LshIndex}


def index_class(kind: str) -> type[VectorIndex]:
    """The backend class for `kind`; raises ValueError naming the valid kinds."""
    if kind not in _CLASSES:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")
    return _CLASSES[kind]


def build_index(kind: str, dim: int, ids: np.ndarray, vectors: np.ndarray, **params) -> VectorIndex:
    """A `kind` index over ids int64 [n] and vectors float32 [n, dim]; `params` go to the constructor.

    HNSW capacity defaults to exactly n, so the first serving-time insert of a new item grows it by 25%.
    """
    cls = index_class(kind)
    if cls is HnswIndex:
        params.setdefault("max_elements", max(len(ids), 1))
    index = cls(dim, **params)
    index.add(ids, vectors)
    return index


def load_index(kind: str, directory: Path | str, params: dict) -> VectorIndex:
    """Loads a `kind` index that `save(directory)` wrote, given the params that call returned."""
    return index_class(kind).load(Path(directory), params)
