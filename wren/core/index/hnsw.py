"""Approximate cosine search over an hnswlib HNSW graph that stores each distinct vector once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import hnswlib
import numpy as np

from wren.core.arrays import l2_normalize, top_k
from wren.core.index.base import VectorIndex
from wren.core.index.exact import IdMap, check_batch, check_k, check_vectors, next_capacity, padded

_INDEX_FILE = "index.bin"
_GROUPS_FILE = "groups.npz"
_MUTEX_BYTES = 40
_HASH_NODE_BYTES = 48
_LABEL_LOCKS = 65536
_TUNING = ("m", "ef_construction", "ef_search", "seed", "num_threads")
DEFAULT_FULL_SCAN_SHARE = 1 / 16
_MIN_SLACK = 1024
_REBUILD_MIN_MOVES = 256
_REBUILD_FRACTION = 64


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


class HnswIndex(VectorIndex):
    """HNSW graph (hnswlib, space="cosine") over the distinct vectors, keyed by int64 item ids.

    Deduplication: items whose unit-normalised float32 vectors are byte-identical form a group, and
    each group is one hnswlib element whose label is the group number (0, 1, 2, ... by creation). A
    group of identical vectors would otherwise link only to itself under hnswlib's neighbour heuristic
    and trap searches (nmslib/hnswlib #263, #341). Because labels are group numbers, not item ids,
    which items belong to a group never touches the graph. Scores are 1 - hnswlib's cosine distance,
    i.e. the cosine similarity, as float32; every member of a group shares its score.

    Group state, all numpy: members live in one int64 id pool, group g's at
    pool[start[g]:start[g] + size[g]] with room[g] >= size[g] reserved (a group that outgrows its room
    moves to the pool's end with 50% slack; the pool is compacted once it exceeds twice the item
    count). digests uint64 [G, 2] hold each group's blake2b-128 of its vector bytes; IdMaps send item
    id -> group and the digest's first 8 bytes -> group (checked against both halves, so a stale or
    colliding entry never merges different vectors; a colliding vector just stays unregistered).

    Adding: a batch is grouped by vector bytes (a vectorised sort) and each distinct vector is hashed.
    A vector equal to an existing group's joins it (revived with `unmark_deleted` if it was empty);
    otherwise it gets a group: one emptied by this same batch if any (the vector is overwritten in place
    with `add_items` on that label, as hnswlib 0.8 updates an existing label, which also unmarks it),
    else a new label. Replacing an id's vector therefore removes it from its old group first; a group
    left empty and not reused is `mark_deleted`. A replaced singleton is overwritten in place, and
    replacing a group's first member needs no graph change. Emptied groups keep their vector and
    digest, so re-adding that exact vector revives them. Large batches regroup the pool with one sort.
    `add` grows hnswlib's capacity with `resize_index` (+25%, at least 1024 slots) when the new labels
    would not fit; deleted elements keep their slot.

    Search: asks hnswlib for min(k, live groups) groups (each expands to >= 1 id, so that yields
    min(k, len(index)) ids) with ef = max(ef_search, that count), expands them in score order and keeps
    the first k ids, padding the rest (-1, -inf). hnswlib raises when it finds fewer groups than asked
    (only possible when part of the graph is unreachable); the batch is then retried query by query,
    each returning what the graph yields.

    Full scan: a query that asks for at least `full_scan_share` of the live groups (default 1/16; 0
    turns scanning off) is
    answered by one matrix product over the group vectors instead of the graph. With ef >= k, such a
    walk visits most of the graph anyway, one distance at a time; the scan is exact and, measured on the
    demo bundle's 4,720 groups, 3x cheaper at k = 1,300 (0.43 vs 1.24 ms for 5 queries). Small
    queries, and every query on a large catalogue, still use the graph. The scan reads a float32
    [groups, dim] copy of the vectors that is taken from hnswlib on the first scan and then kept in step
    by `add` (so an index that never scans never pays its memory); `memory_bytes` counts it once taken.

    Files: `index.bin` (hnswlib) and `groups.npz` (members int64 [n] in group order, offsets int64
    [G + 1], digests uint64 [G, 2]; read with allow_pickle=False).

    Determinism: with num_threads=1, the same seed and the same sequence of `add` calls give
    byte-identical files. A loaded index reseeds hnswlib's level generator with its default, so items
    added after `load` get deterministic levels, but not the ones the unsaved index would have drawn.

    Threads: nothing may run concurrently with `add` (hnswlib's `resize_index` is not thread-safe,
    nor is `knn_query` during `add_items`, and the group arrays change). Interleaving `search` and
    `add` on one thread, as the recall service's event loop does, is safe; a caller that moves `search`
    into a thread pool must hold a lock shared with `add`. Concurrent `search` calls are safe among
    themselves (hnswlib itself searches with max(ef, k), so a racing `set_ef` only changes how wide a
    query searches).
    """

    kind = "hnsw"

    def __init__(
        self,
        dim: int,
        max_elements: int = 10_000,
        m: int = 16,
        ef_construction: int = 200,
        ef_search: int = 128,
        seed: int = 0,
        num_threads: int = 1,
        full_scan_share: float = DEFAULT_FULL_SCAN_SHARE,
    ) -> None:
        super().__init__(dim)
        if not 0.0 <= full_scan_share <= 1.0:
            raise ValueError(f"full_scan_share must be within [0, 1] (0: never scan), got {full_scan_share}")
        self.full_scan_share = float(full_scan_share)
        self._scan_vectors: np.ndarray | None = None
        self.m = int(m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.seed = int(seed)
        self.num_threads = int(num_threads)
        self._index = hnswlib.Index(space="cosine", dim=dim)
        self._index.init_index(
            max_elements=max(int(max_elements), 1),
            M=self.m,
            ef_construction=self.ef_construction,
            random_seed=self.seed,
        )
        self._index.set_num_threads(self.num_threads)
        self._index.set_ef(self.ef_search)
        self._set_groups(np.empty(0, np.int64), np.zeros(1, np.int64), np.empty((0, 2), np.uint64))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def capacity(self) -> int:
        """hnswlib's element capacity: distinct vectors (groups, including emptied ones), not items."""
        return self._index.get_max_elements()

    @property
    def n_groups(self) -> int:
        """Groups holding at least one item, i.e. the distinct vectors searched."""
        return self._live

    # -- group bookkeeping -------------------------------------------------------------------------

    def _set_groups(self, members: np.ndarray, offsets: np.ndarray, digests: np.ndarray) -> None:
        """Replaces all group state with the compact form: group g holds members[offsets[g]:offsets[g+1]]."""
        sizes = np.diff(offsets)
        self._n_groups = len(digests)
        self._digests = np.array(digests, dtype=np.uint64).reshape(-1, 2)
        self._start = offsets[:-1].astype(np.int64)
        self._size = sizes.astype(np.int64)
        self._room = sizes.astype(np.int64)
        self._pool = np.array(members, dtype=np.int64)
        self._pool_end = len(members)
        self._live = int(np.count_nonzero(sizes))
        groups = np.repeat(np.arange(self._n_groups, dtype=np.int64), sizes)
        self._items = IdMap(members, groups)
        keys, first = np.unique(self._digests[:, 0].view(np.int64), return_index=True)
        self._keys = IdMap(keys, first)

    def _reserve_groups(self, needed: int) -> None:
        capacity = next_capacity(len(self._size), needed)
        if capacity == len(self._size):
            return
        grow = capacity - len(self._size)
        self._digests = np.concatenate([self._digests, np.zeros((grow, 2), np.uint64)])
        self._start = np.concatenate([self._start, np.zeros(grow, np.int64)])
        self._size = np.concatenate([self._size, np.zeros(grow, np.int64)])
        self._room = np.concatenate([self._room, np.zeros(grow, np.int64)])

    def _reserve_pool(self, needed: int) -> None:
        capacity = next_capacity(len(self._pool), needed)
        if capacity > len(self._pool):
            pool = np.empty(capacity, np.int64)
            pool[: self._pool_end] = self._pool[: self._pool_end]
            self._pool = pool

    def _compact(self) -> tuple[np.ndarray, np.ndarray]:
        """(members int64 [n] in group order, offsets int64 [G + 1]) without the pool's slack."""
        sizes = self._size[: self._n_groups]
        members = gather_runs(self._pool, self._start[: self._n_groups], sizes)
        return members, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def _regroup(self, drop: np.ndarray, ids: np.ndarray, groups: np.ndarray) -> None:
        """Rebuilds the pool compactly, minus the ids in `drop`, plus `ids` joining `groups`."""
        members, offsets = self._compact()
        member_groups = np.repeat(np.arange(self._n_groups, dtype=np.int64), np.diff(offsets))
        if len(drop):
            keep = ~np.isin(members, drop)
            members, member_groups = members[keep], member_groups[keep]
        members = np.concatenate([members, ids])
        member_groups = np.concatenate([member_groups, groups])
        order = np.argsort(member_groups, kind="stable")
        sizes = np.bincount(member_groups, minlength=self._n_groups).astype(np.int64)
        self._pool = members[order]
        self._pool_end = len(members)
        self._start[: self._n_groups] = np.cumsum(sizes) - sizes
        self._size[: self._n_groups] = sizes
        self._room[: self._n_groups] = sizes

    @staticmethod
    def _runs(groups: np.ndarray, ids: np.ndarray):
        """Yields (group, ids of that group) for the pairs (groups[i], ids[i]), in ascending group order."""
        if len(groups) == 0:
            return
        order = np.argsort(groups, kind="stable")
        groups, ids = groups[order], ids[order]
        bounds = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1], True])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=False):
            yield int(groups[lo]), ids[lo:hi]

    def _remove_members(self, groups: np.ndarray, ids: np.ndarray) -> None:
        for group, leaving in self._runs(groups, ids):
            start, size = self._start[group], self._size[group]
            region = self._pool[start : start + size]
            keep = region[~np.isin(region, leaving)]
            self._pool[start : start + len(keep)] = keep
            self._size[group] = len(keep)

    def _append_members(self, groups: np.ndarray, ids: np.ndarray) -> None:
        for group, joining in self._runs(groups, ids):
            start, size = self._start[group], self._size[group]
            needed = size + len(joining)
            if needed > self._room[group]:
                room = needed + needed // 2
                self._reserve_pool(self._pool_end + room)
                self._pool[self._pool_end : self._pool_end + size] = self._pool[start : start + size]
                start = self._start[group] = self._pool_end
                self._room[group] = room
                self._pool_end += room
            self._pool[start + size : start + needed] = joining
            self._size[group] = needed
        if self._pool_end > 2 * len(self._items) + _MIN_SLACK:
            self._regroup(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))

    def _find_groups(self, digests: np.ndarray) -> np.ndarray:
        """The group holding each digest's vector, or -1."""
        groups = self._keys.lookup(digests[:, 0].view(np.int64))
        known = groups >= 0
        known[known] = (self._digests[groups[known]] == digests[known]).all(axis=1)
        return np.where(known, groups, -1)

    def _register(self, groups: np.ndarray) -> None:
        """Points each group's digest key at it unless the key already names another live digest."""
        keys = self._digests[groups, 0].view(np.int64)
        keys, first = np.unique(keys, return_index=True)
        groups = groups[first]
        current = self._keys.lookup(keys)
        owned = current >= 0
        owned[owned] = self._digests[current[owned], 0].view(np.int64) == keys[owned]
        owned &= current != groups
        self._keys.assign(keys[~owned], groups[~owned])

    # -- VectorIndex -------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = check_batch(ids, vectors, self.dim)
        if len(ids) == 0:
            return
        vectors = l2_normalize(vectors)
        first, batch_group = group_rows(vectors)
        digests = row_digests(vectors[first])
        found = self._find_groups(digests)
        old = self._items.lookup(ids)
        matched_rows = found[batch_group]
        moving = old != matched_rows
        moving[matched_rows < 0] = True

        # Groups emptied by this batch (after members leave and matched members join) are reused for
        # the batch's unmatched vectors, in ascending order; the rest of those get new labels.
        leaving = old[moving & (old >= 0)]
        joining = matched_rows[moving & (matched_rows >= 0)]
        touched, where = np.unique(np.concatenate([leaving, joining]), return_inverse=True)
        change = np.bincount(where[len(leaving) :], minlength=len(touched)) - np.bincount(
            where[: len(leaving)], minlength=len(touched)
        )
        before = self._size[touched]
        after = before + change
        unmatched = np.flatnonzero(found < 0)
        emptied = touched[(after == 0) & (before > 0)]
        reused = emptied[: len(unmatched)]
        fresh = len(unmatched) - len(reused)
        assigned = np.concatenate([reused, np.arange(self._n_groups, self._n_groups + fresh, dtype=np.int64)])
        self._reserve_groups(self._n_groups + fresh)
        self._n_groups += fresh
        self._digests[assigned] = digests[unmatched]
        found[unmatched] = assigned
        self._register(assigned)
        targets = found[batch_group]

        capacity = next_capacity(self.capacity, self._index.get_current_count() + fresh)
        if capacity > self.capacity:
            self._index.resize_index(capacity)
        if len(unmatched):
            self._index.add_items(vectors[first[unmatched]], assigned, num_threads=self.num_threads)
            self._keep_scan_vectors(assigned, vectors[first[unmatched]])
        for group in emptied[len(unmatched) :]:
            self._index.mark_deleted(int(group))
        for group in touched[(before == 0) & (after > 0)]:
            self._index.unmark_deleted(int(group))
        self._live += int(np.count_nonzero(after > 0) - np.count_nonzero(before > 0)) + len(unmatched)

        moved_ids, moved_to = ids[moving], targets[moving]
        self._items.assign(moved_ids, moved_to)
        had_group = old[moving] >= 0
        if len(moved_ids) > max(_REBUILD_MIN_MOVES, len(self._items) // _REBUILD_FRACTION):
            self._regroup(moved_ids[had_group], moved_ids, moved_to)
        else:
            self._remove_members(old[moving][had_group], moved_ids[had_group])
            self._append_members(moved_to, moved_ids)

    # -- full scan -----------------------------------------------------------------------------------

    def _keep_scan_vectors(self, groups: np.ndarray, vectors: np.ndarray) -> None:
        """Writes (re)assigned groups' unit vectors into the scan copy, if one has been taken."""
        if self._scan_vectors is None:
            return
        if len(self._scan_vectors) < self._n_groups:
            grown = np.zeros((next_capacity(len(self._scan_vectors), self._n_groups), self.dim), np.float32)
            grown[: len(self._scan_vectors)] = self._scan_vectors
            self._scan_vectors = grown
        self._scan_vectors[groups] = vectors

    def _group_vectors(self) -> np.ndarray:
        """float32 [n_groups, dim] unit vectors, group g in row g (emptied groups keep their vector)."""
        if self._scan_vectors is None:
            labels = np.arange(self._n_groups, dtype=np.uint64)
            taken = self._index.get_items(labels, return_type="numpy") if self._n_groups else None
            self._scan_vectors = l2_normalize(taken) if taken is not None else np.zeros((0, self.dim), np.float32)
        return self._scan_vectors[: self._n_groups]

    def _scan_groups(self, queries: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact (groups, scores) of the `width` best live groups per query, best first."""
        scores = l2_normalize(queries) @ self._group_vectors().T
        scores[:, self._size[: self._n_groups] == 0] = -np.inf
        top, top_scores = top_k(scores, width)
        return top.astype(np.int64), top_scores

    def _set_ef(self, k: int) -> None:
        ef = max(self.ef_search, k)
        if self._index.ef != ef:
            self._index.set_ef(ef)

    def _query_row(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self._index.knn_query(query, k=k, num_threads=1)
        except RuntimeError:
            pass
        low, high = 0, k - 1
        best = (np.empty((1, 0), np.uint64), np.empty((1, 0), np.float32))
        while low < high:
            mid = (low + high + 1) // 2
            try:
                best = self._index.knn_query(query, k=mid, num_threads=1)
                low = mid
            except RuntimeError:
                high = mid - 1
        return best

    def _query_groups(self, queries: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(groups int64 [q, width], scores float32 [q, width]) best first; -1 where the graph ran out."""
        try:
            labels, distances = self._index.knn_query(queries, k=width, num_threads=self.num_threads)
            return labels.astype(np.int64), (1.0 - distances).astype(np.float32)
        except RuntimeError:
            pass
        groups, scores = padded(len(queries), width)
        for row in range(len(queries)):
            labels, distances = self._query_row(queries[row : row + 1], width)
            found = labels.shape[1]
            groups[row, :found] = labels[0].astype(np.int64)
            scores[row, :found] = 1.0 - distances[0]
        return groups, scores

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = check_vectors(queries, self.dim, "queries")
        k = check_k(k)
        out_ids, out_scores = padded(len(queries), k)
        width = min(k, self._live)
        if width == 0 or len(queries) == 0:
            return out_ids, out_scores
        if self.full_scan_share > 0 and width >= self.full_scan_share * self._live:
            groups, scores = self._scan_groups(queries, width)
        else:
            self._set_ef(width)
            groups, scores = self._query_groups(queries, width)
        # Expand each row's groups in score order, taking members until the row holds k ids.
        valid = groups >= 0
        groups = np.where(valid, groups, 0)
        sizes = np.where(valid, self._size[groups], 0)
        filled = np.cumsum(sizes, axis=1) - sizes
        take = np.clip(k - filled, 0, sizes).ravel()
        within = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
        rows = np.repeat(np.arange(len(queries)), width)
        rows = np.repeat(rows, take)
        columns = np.repeat(filled.ravel(), take) + within
        out_ids[rows, columns] = self._pool[np.repeat(self._start[groups].ravel(), take) + within]
        out_scores[rows, columns] = np.repeat(scores.ravel(), take)
        return out_ids, out_scores

    def save(self, directory: Path) -> dict:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._index.save_index(str(directory / _INDEX_FILE))
        members, offsets = self._compact()
        np.savez(
            directory / _GROUPS_FILE,
            allow_pickle=False,
            members=members,
            offsets=offsets,
            digests=self._digests[: self._n_groups],
        )
        return {
            "dim": self.dim,
            "max_elements": self.capacity,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "full_scan_share": self.full_scan_share,
        }

    @classmethod
    def load(cls, directory: Path, params: dict) -> HnswIndex:
        directory = Path(directory)
        tuning = {key: int(params[key]) for key in _TUNING if key in params}
        share = float(params.get("full_scan_share", DEFAULT_FULL_SCAN_SHARE))
        index = cls(int(params["dim"]), max_elements=1, full_scan_share=share, **tuning)
        groups_file = directory / _GROUPS_FILE
        if not groups_file.is_file():
            raise ValueError(f"{directory} has no {_GROUPS_FILE}: the index predates vector grouping; rebuild it")
        with np.load(groups_file, allow_pickle=False) as arrays:
            members, offsets, digests = arrays["members"], arrays["offsets"], arrays["digests"]
        index._index = hnswlib.Index(space="cosine", dim=index.dim)
        index._index.load_index(str(directory / _INDEX_FILE), max_elements=int(params.get("max_elements", 0)))
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
            or n_groups != index._index.get_current_count()
            or len(np.unique(members)) != len(members)
        ):
            raise ValueError(
                f"corrupt hnsw groups in {directory}: members {members.shape}, offsets {offsets.shape}, "
                f"digests {digests.shape}, {index._index.get_current_count()} graph elements"
            )
        index._set_groups(members, offsets, digests)
        index._index.set_num_threads(index.num_threads)
        index._index.set_ef(index.ef_search)
        return index

    def memory_bytes(self) -> int:
        """hnswlib's own `index_file_size()` (vectors, labels and links of the stored elements) plus
        what the file leaves out but RAM holds: level-0 slots preallocated for unused capacity
        ((2M+1)*4 + dim*4 + 8 bytes each), per-slot link-list pointer, level and mutex (52 bytes), one
        visited-list pool entry (2 bytes/slot), ~48 bytes/element for the label hash map, and 65536
        label mutexes (within 1% of measured RSS growth for 200k distinct x 64, M=16); plus the group
        arrays: id pool, per-group start/size/room/digest and the id and digest maps.
        """
        capacity, count = self.capacity, self._index.get_current_count()
        slot = (2 * self.m + 1) * 4 + self.dim * 4 + 8
        per_capacity = 8 + 4 + _MUTEX_BYTES + 2
        graph = (
            self._index.index_file_size()
            + (capacity - count) * slot
            + capacity * per_capacity
            + count * _HASH_NODE_BYTES
            + _LABEL_LOCKS * _MUTEX_BYTES
        )
        arrays = (self._pool, self._start, self._size, self._room, self._digests)
        if self._scan_vectors is not None:
            arrays += (self._scan_vectors,)
        return graph + sum(a.nbytes for a in arrays) + self._items.nbytes + self._keys.nbytes
