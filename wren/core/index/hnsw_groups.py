"""The HNSW index's group table, pure numpy: items whose vectors are byte-identical share one group.

Group g's member ids live in one int64 pool at pool[start[g]:start[g] + size[g]], with room[g] >= size[g]
reserved (a group that outgrows its room moves to the pool's end with 50% slack; the pool is compacted
once it exceeds twice the item count). digests uint64 [G, 2] hold each group's blake2b-128 of its vector
bytes; `items` maps item id -> group and `keys` maps the digest's first 8 bytes -> group (checked
against both halves, so a stale or colliding entry never merges different vectors).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from wren.core.index.exact import IdMap, next_capacity

_MIN_SLACK = 1024


def group_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Groups byte-identical rows of a C-contiguous [n, dim] array without a Python loop.

    Returns (first int64 [g], inverse int64 [n]): `first` holds the row of each group's first
    occurrence in ascending order, so groups are numbered by first appearance, and row i belongs to
    group inverse[i]. Rows are compared as raw bytes (a stable sort of the rows viewed as np.void,
    which is what np.unique(axis=0) does, without its extra passes).
    """
    n = len(vectors)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    keys = np.ascontiguousarray(vectors).view(np.dtype((np.void, vectors.shape[1] * vectors.itemsize)))
    keys = keys.ravel()
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    starts[1:] = ordered[1:] != ordered[:-1]
    run = np.cumsum(starts) - 1
    run_first = order[starts]
    group_of_run = np.empty(len(run_first), np.int64)
    group_of_run[np.argsort(run_first, kind="stable")] = np.arange(len(run_first))
    inverse = np.empty(n, np.int64)
    inverse[order] = group_of_run[run]
    return np.sort(run_first).astype(np.int64), inverse


def row_digests(rows: np.ndarray) -> np.ndarray:
    """uint64 [n, 2]: the 16-byte blake2b digest of each row's bytes (rows must be C-contiguous)."""
    rows = np.ascontiguousarray(rows)
    data = b"".join(hashlib.blake2b(row, digest_size=16).digest() for row in rows)
    return np.frombuffer(data, dtype=np.uint64).reshape(len(rows), 2).copy()


def gather_runs(pool: np.ndarray, starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenates pool[starts[i]:starts[i] + sizes[i]] over i, vectorised."""
    total = int(sizes.sum())
    before = np.cumsum(sizes) - sizes
    return pool[np.repeat(starts - before, sizes) + np.arange(total)]


class GroupTable:
    """Group membership and digests of an HnswIndex (see the module docstring); no graph, no vectors.

    `n_groups` counts every group ever created (emptied ones keep their number, vector and digest, so
    re-adding that exact vector revives them); `live` counts those holding at least one item.
    """

    def __init__(
        self, members: np.ndarray | None = None, offsets: np.ndarray | None = None, digests: np.ndarray | None = None
    ) -> None:
        self.reset(
            np.empty(0, np.int64) if members is None else members,
            np.zeros(1, np.int64) if offsets is None else offsets,
            np.empty((0, 2), np.uint64) if digests is None else digests,
        )

    def __len__(self) -> int:
        return len(self.items)

    def save(self, path: Path) -> None:
        """`path` (.npz): members int64 [n] in group order, offsets int64 [G + 1], digests uint64 [G, 2]."""
        members, offsets = self.compact()
        np.savez(path, allow_pickle=False, members=members, offsets=offsets, digests=self.digests[: self.n_groups])

    @classmethod
    def load(cls, path: Path, graph_elements: int) -> GroupTable:
        """The table `save` wrote; ValueError unless it is consistent and has one group per graph element."""
        with np.load(path, allow_pickle=False) as arrays:
            members, offsets, digests = arrays["members"], arrays["offsets"], arrays["digests"]
        n_groups = len(digests)
        if (
            members.dtype != np.int64
            or offsets.dtype != np.int64
            or digests.dtype != np.uint64
            or members.ndim != 1
            or digests.shape != (n_groups, 2)
            or offsets.shape != (n_groups + 1,)
            or offsets[0] != 0
            or offsets[-1] != len(members)
            or np.any(np.diff(offsets) < 0)
            or n_groups != graph_elements
            or len(np.unique(members)) != len(members)
        ):
            raise ValueError(
                f"corrupt hnsw groups in {path.parent}: members {members.shape}, offsets {offsets.shape}, "
                f"digests {digests.shape}, {graph_elements} graph elements"
            )
        return cls(members, offsets, digests)

    @property
    def nbytes(self) -> int:
        arrays = (self.pool, self.start, self.size, self.room, self.digests)
        return sum(a.nbytes for a in arrays) + self.items.nbytes + self.keys.nbytes

    def reset(self, members: np.ndarray, offsets: np.ndarray, digests: np.ndarray) -> None:
        """Replaces all group state with the compact form: group g holds members[offsets[g]:offsets[g+1]]."""
        sizes = np.diff(offsets)
        self.n_groups = len(digests)
        self.digests = np.array(digests, dtype=np.uint64).reshape(-1, 2)
        self.start = offsets[:-1].astype(np.int64)
        self.size = sizes.astype(np.int64)
        self.room = sizes.astype(np.int64)
        self.pool = np.array(members, dtype=np.int64)
        self.pool_end = len(members)
        self.live = int(np.count_nonzero(sizes))
        groups = np.repeat(np.arange(self.n_groups, dtype=np.int64), sizes)
        self.items = IdMap(members, groups)
        keys, first = np.unique(self.digests[:, 0].view(np.int64), return_index=True)
        self.keys = IdMap(keys, first)

    def reserve_groups(self, needed: int) -> None:
        capacity = next_capacity(len(self.size), needed)
        if capacity == len(self.size):
            return
        grow = capacity - len(self.size)
        self.digests = np.concatenate([self.digests, np.zeros((grow, 2), np.uint64)])
        self.start = np.concatenate([self.start, np.zeros(grow, np.int64)])
        self.size = np.concatenate([self.size, np.zeros(grow, np.int64)])
        self.room = np.concatenate([self.room, np.zeros(grow, np.int64)])

    def _reserve_pool(self, needed: int) -> None:
        capacity = next_capacity(len(self.pool), needed)
        if capacity > len(self.pool):
            pool = np.empty(capacity, np.int64)
            pool[: self.pool_end] = self.pool[: self.pool_end]
            self.pool = pool

    def compact(self) -> tuple[np.ndarray, np.ndarray]:
        """(members int64 [n] in group order, offsets int64 [G + 1]) without the pool's slack."""
        sizes = self.size[: self.n_groups]
        members = gather_runs(self.pool, self.start[: self.n_groups], sizes)
        return members, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def regroup(self, drop: np.ndarray, ids: np.ndarray, groups: np.ndarray) -> None:
        """Rebuilds the pool compactly, minus the ids in `drop`, plus `ids` joining `groups`."""
        members, offsets = self.compact()
        member_groups = np.repeat(np.arange(self.n_groups, dtype=np.int64), np.diff(offsets))
        if len(drop):
            keep = ~np.isin(members, drop)
            members, member_groups = members[keep], member_groups[keep]
        members = np.concatenate([members, ids])
        member_groups = np.concatenate([member_groups, groups])
        order = np.argsort(member_groups, kind="stable")
        sizes = np.bincount(member_groups, minlength=self.n_groups).astype(np.int64)
        self.pool = members[order]
        self.pool_end = len(members)
        self.start[: self.n_groups] = np.cumsum(sizes) - sizes
        self.size[: self.n_groups] = sizes
        self.room[: self.n_groups] = sizes

    @staticmethod
    def _runs(groups: np.ndarray, ids: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Yields (group, ids of that group) for the pairs (groups[i], ids[i]), in ascending group order."""
        if len(groups) == 0:
            return
        order = np.argsort(groups, kind="stable")
        groups, ids = groups[order], ids[order]
        bounds = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            yield int(groups[lo]), ids[lo:hi]

    def remove_members(self, groups: np.ndarray, ids: np.ndarray) -> None:
        for group, leaving in self._runs(groups, ids):
            start, size = self.start[group], self.size[group]
            region = self.pool[start : start + size]
            keep = region[~np.isin(region, leaving)]
            self.pool[start : start + len(keep)] = keep
            self.size[group] = len(keep)

    def append_members(self, groups: np.ndarray, ids: np.ndarray) -> None:
        for group, joining in self._runs(groups, ids):
            start, size = self.start[group], self.size[group]
            needed = size + len(joining)
            if needed > self.room[group]:
                room = needed + needed // 2
                self._reserve_pool(self.pool_end + room)
                self.pool[self.pool_end : self.pool_end + size] = self.pool[start : start + size]
                start = self.start[group] = self.pool_end
                self.room[group] = room
                self.pool_end += room
            self.pool[start + size : start + needed] = joining
            self.size[group] = needed
        if self.pool_end > 2 * len(self.items) + _MIN_SLACK:
            self.regroup(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))

    def find(self, digests: np.ndarray) -> np.ndarray:
        """The group holding each digest's vector, or -1."""
        groups = self.keys.lookup(digests[:, 0].view(np.int64))
        known = groups >= 0
        known[known] = (self.digests[groups[known]] == digests[known]).all(axis=1)
        return np.where(known, groups, -1)

    def register(self, groups: np.ndarray) -> None:
        """Points each group's digest key at it unless the key already names another live digest."""
        keys = self.digests[groups, 0].view(np.int64)
        keys, first = np.unique(keys, return_index=True)
        groups = groups[first]
        current = self.keys.lookup(keys)
        owned = current >= 0
        owned[owned] = self.digests[current[owned], 0].view(np.int64) == keys[owned]
        owned &= current != groups
        self.keys.assign(keys[~owned], groups[~owned])
