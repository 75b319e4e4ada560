"""The LSH index's bucket store (a CSR map from key to rows), its de-duplication scratch and candidate batching."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Buckets:
    """CSR map from bucket key to rows: rows[offsets[i]:offsets[i + 1]] all hash to keys[i].

    keys uint64 [B] sorted and unique, offsets int64 [B + 1], rows int32 [E]. Every key carries its table
    number in the top 8 bits, so one array holds all tables and a lookup is one binary search.
    """

    keys: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray

    @classmethod
    def empty(cls) -> Buckets:
        return cls(np.empty(0, np.uint64), np.zeros(1, np.int64), np.empty(0, np.int32))

    @classmethod
    def from_sorted(cls, keys: np.ndarray, rows: np.ndarray) -> Buckets:
        """From entries (key uint64 [E], row [E]) already sorted by key."""
        if len(keys) == 0:
            return cls.empty()
        starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
        return cls(keys[starts], np.append(starts, len(keys)).astype(np.int64), np.asarray(rows, np.int32))

    @classmethod
    def build(cls, keys: np.ndarray, rows: np.ndarray) -> Buckets:
        """From keys uint64 [n, n_tables] of rows [n]: sorts each table's n entries separately (cache-sized
        sorts; the table bits make the concatenation globally sorted)."""
        if keys.size == 0:
            return cls.empty()
        by_table = np.ascontiguousarray(keys.T)
        order = np.argsort(by_table, axis=1)
        flat = (order + np.arange(0, by_table.size, by_table.shape[1])[:, None]).ravel()
        return cls.from_sorted(np.take(by_table, flat), np.take(np.asarray(rows, np.int32), order.ravel()))

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """The (key uint64 [E], row int32 [E]) entries, sorted by key."""
        return np.repeat(self.keys, np.diff(self.offsets)), self.rows

    def merge(self, other: Buckets) -> Buckets:
        """Both entry sets in one map, in linear time."""
        if len(other.rows) == 0:
            return self
        if len(self.rows) == 0:
            return other
        (mine_keys, mine_rows), (their_keys, their_rows) = self.entries(), other.entries()
        at = np.searchsorted(mine_keys, their_keys, side="right") + np.arange(len(their_keys))
        mine = np.ones(len(mine_keys) + len(their_keys), bool)
        mine[at] = False
        keys = np.empty(len(mine), np.uint64)
        rows = np.empty(len(mine), np.int32)
        keys[at], rows[at] = their_keys, their_rows
        keys[mine], rows[mine] = mine_keys, mine_rows
        return Buckets.from_sorted(keys, rows)

    def ranges(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Entry ranges [start, stop) of the buckets `probes` (uint64, any shape), int64, same shape."""
        flat = probes.ravel()
        if len(self.keys) == 0 or len(flat) == 0:
            zeros = np.zeros(probes.shape, np.int64)
            return zeros, zeros
        # Sorted needles make consecutive binary searches share cache lines (several times faster).
        order = np.argsort(flat)
        needles = flat[order]
        found = np.minimum(np.searchsorted(self.keys, needles), len(self.keys) - 1)
        hit = self.keys[found] == needles
        starts = np.empty(len(flat), np.int64)
        stops = np.empty(len(flat), np.int64)
        starts[order] = self.offsets[found]
        stops[order] = np.where(hit, self.offsets[found + 1], self.offsets[found])
        return starts.reshape(probes.shape), stops.reshape(probes.shape)

    def gather(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """The rows of entry ranges starts[i]:stops[i] (1-D int64 arrays), concatenated in order; int32."""
        counts = stops - starts
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, np.int32)
        ends = np.cumsum(counts)
        positions = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - counts), counts)
        return np.take(self.rows, positions)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.offsets.nbytes + self.rows.nbytes


# Per non-empty bucket store (main, side): the store and the entry ranges (starts, stops) of probed buckets.
Spans = list[tuple[Buckets, np.ndarray, np.ndarray]]
# Per non-empty bucket store: (rows, bounds) with query i's rows at rows[bounds[i]:bounds[i + 1]].
Hits = list[tuple[np.ndarray, np.ndarray]]


class Scratch:
    """Scratch arrays for de-duplicating candidate rows in O(len(rows)), without sorting; reused across
    searches by one thread (a fresh 1M-entry array costs ~1 ms of page faults per call)."""

    def __init__(self, n_rows: int) -> None:
        self._slot = np.empty(n_rows, np.int32)  # stale values are harmless, see `distinct`
        self._excluded = np.zeros(n_rows, bool)  # all False between calls
        self.alive: np.ndarray | None = None  # liveness of rows, when some are tombstoned

    def __len__(self) -> int:
        return len(self._slot)

    def distinct(self, rows: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """The distinct rows of `rows` that are live (when liveness was given) and not in `exclude`.

        After slot[rows] = positions, exactly one position per distinct row reads back its own index,
        whichever duplicate won the write.
        """
        if self.alive is not None:
            rows = rows[self.alive[rows]]
        if exclude is not None and len(exclude):
            self._excluded[exclude] = True
            rows = rows[~self._excluded[rows]]
            self._excluded[exclude] = False
        positions = np.arange(len(rows), dtype=np.int32)
        self._slot[rows] = positions
        return rows[self._slot[rows] == positions]


def gather_hits(spans: Spans, lo: int, hi: int) -> Hits:
    """Rows of queries lo..hi-1 in `spans`, per bucket store: (rows int32 [E], bounds int64 [hi - lo + 1])
    with query lo + i's rows (duplicates kept) at rows[bounds[i]:bounds[i + 1]]."""
    found = []
    for table, starts, stops in spans:
        first, last = starts[lo:hi], stops[lo:hi]
        bounds = np.concatenate([[0], np.cumsum((last - first).sum(axis=1))])
        found.append((table.gather(first.ravel(), last.ravel()), bounds))
    return found


def query_rows(found: Hits, query: int) -> np.ndarray:
    """Query `query`'s rows from `gather_hits` output, all bucket stores concatenated."""
    parts = [rows[bounds[query] : bounds[query + 1]] for rows, bounds in found]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, np.int32)


def budget_ranges(sizes: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges [lo, hi) of `sizes` summing to at most `budget` (or a single entry)."""
    ends = np.cumsum(sizes)
    lo = 0
    while lo < len(sizes):
        limit = (ends[lo - 1] if lo else 0) + budget
        hi = max(lo + 1, int(np.searchsorted(ends, limit, side="right")))
        yield lo, hi
        lo = hi
