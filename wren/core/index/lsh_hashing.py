"""The LSH index's hash functions: bucket keys of unit vectors and the query-directed multi-probe sequence."""

from __future__ import annotations

import numpy as np

TABLE_SHIFT = np.uint64(56)
KEY_MASK = np.uint64((1 << 56) - 1)
_HASH_CHUNK = 1 << 13
_PROBE_COORDS = 6
SAVED = ("projections", "shifts", "mixers")


class Hashing:
    """`n_tables` tables of `n_projections` functions h(v) = floor((a.v + b) / bucket_width) with a ~ N(0, I)
    and b ~ U[0, bucket_width), drawn from `seed`. A table's bucket key packs the table number into the top
    8 bits and a random linear combination (mod 2^56) of its hash tuple into the rest, so distinct tuples
    collide with negligible probability and a +-1 step in one coordinate is one addition.
    """

    def __init__(self, dim: int, n_tables: int, n_projections: int, bucket_width: float, seed: int) -> None:
        self.n_tables = n_tables
        self.n_projections = n_projections
        rng = np.random.default_rng(seed)
        width = n_tables * n_projections
        self.projections = (rng.standard_normal((dim, width)) / bucket_width).astype(np.float32)
        if dim and np.linalg.norm(self.projections, axis=0).max() >= 2**30:  # |a.v / w| must fit in int32
            raise ValueError(f"bucket_width {bucket_width} is too small")
        self.shifts = rng.uniform(0.0, 1.0, width).astype(np.float32)
        self.mixers = rng.integers(0, 1 << 64, size=n_projections, dtype=np.uint64) | np.uint64(1)
        self.table_bits = np.arange(n_tables, dtype=np.uint64) << TABLE_SHIFT

    @property
    def nbytes(self) -> int:
        return self.projections.nbytes + self.shifts.nbytes + self.mixers.nbytes

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Takes the saved SAVED arrays; ValueError naming the first one whose shape or dtype differs."""
        for name in SAVED:
            current = getattr(self, name)
            if arrays[name].shape != current.shape or arrays[name].dtype != current.dtype:
                raise ValueError(f"{name} {arrays[name].shape}")
            setattr(self, name, arrays[name])

    def keys(self, unit: np.ndarray) -> np.ndarray:
        """Per-table bucket keys uint64 [n, n_tables] of unit vectors [n, dim]."""
        return self._hash(unit, None)

    def keys_and_positions(self, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`keys` plus where each vector sits inside its buckets, float32 [n, n_tables, n_projections]."""
        positions = np.empty((len(unit), self.n_tables, self.n_projections), np.float32)
        return self._hash(unit, positions), positions

    def _hash(self, unit: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
        """Per-table keys uint64 [n, n_tables]; fills `positions` (when given) with (a.v + b) / w - h(v) in
        [0, 1), where v sits inside its bucket along every projection, float32 [n, n_tables, n_projections].

        Projection columns are ordered coordinate-major (column j * n_tables + t is coordinate j of
        table t), so each coordinate's hashes for all tables are one contiguous slice.
        """
        tables = self.n_tables
        keys = np.empty((tables, len(unit)), np.uint64).T  # table-major memory: `Buckets.build` sorts rows of it
        for start in range(0, len(unit), _HASH_CHUNK):
            scaled = unit[start : start + _HASH_CHUNK] @ self.projections
            scaled += self.shifts
            hashes = np.floor(scaled)
            if positions is not None:
                scaled -= hashes
                by_table = scaled.reshape(-1, self.n_projections, tables).transpose(0, 2, 1)
                positions[start : start + _HASH_CHUNK] = by_table
            hashes = hashes.astype(np.int32).astype(np.uint64)  # two steps: ~2x faster than float -> int64
            linear = hashes[:, :tables] * self.mixers[0]
            for j in range(1, self.n_projections):
                linear += hashes[:, j * tables : (j + 1) * tables] * self.mixers[j]
            linear &= KEY_MASK
            linear |= self.table_bits
            keys[start : start + _HASH_CHUNK] = linear
        return keys

    def probe_keys(self, keys: np.ndarray, inside: np.ndarray, count: int | None) -> np.ndarray:
        """Keys of the `count` most likely neighbouring buckets over all tables, in no particular order,
        or (count None) of all of them, most likely first; uint64 [n, count].

        Query-directed multi-probe (Lv et al. 2007): in each table the `_PROBE_COORDS` coordinates whose
        query projection lies nearest a bucket boundary are stepped across that boundary in every
        non-empty combination; a combination scores the sum of its squared distances to the boundaries
        crossed (in bucket widths), and lower scores are more likely to hold the query's neighbours.
        """
        n, tables, width = inside.shape
        near = min(width, _PROBE_COORDS)
        upper = inside >= 0.5
        gaps = np.where(upper, 1.0 - inside, inside)
        coords = np.argpartition(gaps, near - 1, axis=2)[:, :, :near]
        gaps = np.take_along_axis(gaps, coords, axis=2)
        deltas = np.where(np.take_along_axis(upper, coords, axis=2), self.mixers[coords], -self.mixers[coords])
        scores = np.zeros((n, tables, 1), np.float32)
        linear = (keys & KEY_MASK)[:, :, None]
        for j in range(near):
            scores = np.concatenate([scores, scores + gaps[:, :, j : j + 1] ** 2], axis=2)
            linear = np.concatenate([linear, linear + deltas[:, :, j : j + 1]], axis=2)
        ranked = scores[:, :, 1:].reshape(n, -1)
        neighbours = ((linear[:, :, 1:] & KEY_MASK) | self.table_bits[:, None]).reshape(n, -1)
        if count is None:
            order = np.argsort(ranked, axis=1, kind="stable")
        elif count < ranked.shape[1]:
            order = np.argpartition(ranked, count - 1, axis=1)[:, :count]
        else:
            return neighbours
        return np.take_along_axis(neighbours, order, axis=1)
