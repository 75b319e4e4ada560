"""Brute-force cosine index (the ground truth) and the batch checks and id map the other backends share."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wren.core.arrays import l2_normalize, sorted_rows, top_k
from wren.core.index.base import VectorIndex

PAD_ID = -1
PAD_SCORE = -np.inf
_SCORE_BUDGET = 1 << 24
_MIN_GROWTH = 1024


def check_vectors(vectors: np.ndarray, dim: int, what: str = "vectors") -> np.ndarray:
    """Returns `vectors` as C-contiguous float32 [n, dim]; raises ValueError on a bad shape or NaN/inf."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"{what} must have shape [n, {dim}], got {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return array


def check_batch(ids: np.ndarray, vectors: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Validates an `add` batch: int64 ids >= 0 (-1 is the padding id), float32 [n, dim] vectors.

    An id repeated inside the batch keeps its last vector; the returned rows keep first-seen order.
    """
    id_array = np.asarray(ids)
    if id_array.ndim != 1 or not (id_array.size == 0 or np.issubdtype(id_array.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D integer array, got {id_array.dtype} {list(id_array.shape)}")
    id_array = id_array.astype(np.int64, copy=False)
    array = check_vectors(vectors, dim)
    if len(id_array) != len(array):
        raise ValueError(f"{len(id_array)} ids but {len(array)} vectors")
    if id_array.size and id_array.min() < 0:
        raise ValueError("item ids must be non-negative")
    _, last_from_end = np.unique(id_array[::-1], return_index=True)
    if len(last_from_end) == len(id_array):
        return id_array, array
    keep = np.sort(len(id_array) - 1 - last_from_end)
    return id_array[keep], array[keep]


def check_k(k: int) -> int:
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return int(k)


def padded(n_queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """An all-padding result: ids int64 [q, k] of -1, scores float32 [q, k] of -inf."""
    return (
        np.full((n_queries, k), PAD_ID, dtype=np.int64),
        np.full((n_queries, k), PAD_SCORE, dtype=np.float32),
    )


def next_capacity(capacity: int, needed: int) -> int:
    """Growth policy for preallocated buffers: +25% (at least 1024 slots) so appends amortise to O(1)."""
    if needed <= capacity:
        return capacity
    return max(needed, capacity + max(capacity // 4, _MIN_GROWTH))


class IdMap:
    """Maps int64 item ids to int64 row numbers with vectorised lookups and no per-id Python objects.

    Holds a sorted base array plus a small sorted tail of recent inserts; the tail is merged into the
    base once it outgrows max(1024, len(base) // 8), so inserts cost amortised O(log n) per id.
    """

    def __init__(self, ids: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        ids = np.empty(0, np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        rows = np.arange(len(ids), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self._base_ids, self._base_rows = ids[order], rows[order]
        self._tail_ids = np.empty(0, np.int64)
        self._tail_rows = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self._base_ids) + len(self._tail_ids)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self._base_ids, self._base_rows, self._tail_ids, self._tail_rows))

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Rows int64 [len(ids)] for `ids`, -1 where an id is absent."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.full(len(ids), -1, dtype=np.int64)
        for keys, values in ((self._base_ids, self._base_rows), (self._tail_ids, self._tail_rows)):
            pos = sorted_rows(keys, ids)
            hit = pos >= 0
            rows[hit] = values[pos[hit]]
        return rows

    def assign(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Points each id (unique within the call) at its row, inserting ids not yet present."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        fresh = np.ones(len(ids), dtype=bool)
        for keys, values in ((self._base_ids, self._base_rows), (self._tail_ids, self._tail_rows)):
            pos = sorted_rows(keys, ids)
            hit = pos >= 0
            values[pos[hit]] = rows[hit]
            fresh &= ~hit
        if not fresh.any():
            return
        tail_ids = np.concatenate([self._tail_ids, ids[fresh]])
        tail_rows = np.concatenate([self._tail_rows, rows[fresh]])
        if len(tail_ids) > max(_MIN_GROWTH, len(self._base_ids) // 8):
            ids = np.concatenate([self._base_ids, tail_ids])
            order = np.argsort(ids, kind="stable")
            self._base_ids = ids[order]
            self._base_rows = np.concatenate([self._base_rows, tail_rows])[order]
            tail_ids, tail_rows = tail_ids[:0], tail_rows[:0]
        order = np.argsort(tail_ids, kind="stable")
        self._tail_ids, self._tail_rows = tail_ids[order], tail_rows[order]


class ExactIndex(VectorIndex):
    """Exhaustive cosine search: one matrix product per query chunk, then argpartition and a top-k sort.

    Storage: unit-norm float32 rows in a preallocated buffer that grows by 25% (amortised O(1) appends);
    re-adding an id overwrites its row in place. Files: `vectors.npy` (float32 [n, dim], unit norm) and
    `ids.npy` (int64 [n]), both read back with allow_pickle=False.
    """

    kind = "exact"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._ids = np.empty(0, dtype=np.int64)
        self._count = 0
        self._rows = IdMap()

    def __len__(self) -> int:
        return self._count

    def _reserve(self, needed: int) -> None:
        capacity = next_capacity(len(self._ids), needed)
        if capacity == len(self._ids):
            return
        vectors = np.empty((capacity, self.dim), dtype=np.float32)
        ids = np.empty(capacity, dtype=np.int64)
        vectors[: self._count] = self._vectors[: self._count]
        ids[: self._count] = self._ids[: self._count]
        self._vectors, self._ids = vectors, ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = check_batch(ids, vectors, self.dim)
        vectors = l2_normalize(vectors)
        rows = self._rows.lookup(ids)
        present = rows >= 0
        self._vectors[rows[present]] = vectors[present]
        fresh = ~present
        n_new = int(fresh.sum())
        if n_new == 0:
            return
        self._reserve(self._count + n_new)
        new_rows = np.arange(self._count, self._count + n_new, dtype=np.int64)
        self._vectors[new_rows] = vectors[fresh]
        self._ids[new_rows] = ids[fresh]
        self._rows.assign(ids[fresh], new_rows)
        self._count += n_new

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = l2_normalize(check_vectors(queries, self.dim, "queries"))
        k = check_k(k)
        out_ids, out_scores = padded(len(queries), k)
        n = self._count
        if n == 0 or k == 0:
            return out_ids, out_scores
        matrix = self._vectors[:n]
        chunk = max(1, _SCORE_BUDGET // n)
        width = min(k, n)
        for start in range(0, len(queries), chunk):
            stop = start + chunk
            columns, values = top_k(queries[start:stop] @ matrix.T, width)
            out_ids[start:stop, :width] = self._ids[columns]
            out_scores[start:stop, :width] = values
        return out_ids, out_scores

    def save(self, directory: Path) -> dict:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / "vectors.npy", self._vectors[: self._count])
        np.save(directory / "ids.npy", self._ids[: self._count])
        return {"dim": self.dim}

    @classmethod
    def load(cls, directory: Path, params: dict) -> ExactIndex:
        directory = Path(directory)
        index = cls(int(params["dim"]))
        vectors = np.load(directory / "vectors.npy", allow_pickle=False)
        ids = np.load(directory / "ids.npy", allow_pickle=False)
        if vectors.shape != (len(ids), index.dim) or vectors.dtype != np.float32 or ids.dtype != np.int64:
            raise ValueError(f"corrupt exact index in {directory}: vectors {vectors.shape}, ids {ids.shape}")
        index._vectors, index._ids, index._count = vectors, ids, len(ids)
        index._rows = IdMap(ids)
        return index

    def memory_bytes(self) -> int:
        return self._vectors.nbytes + self._ids.nbytes + self._rows.nbytes
