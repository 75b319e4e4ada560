"""The HNSW search width a catalogue needs: the smallest ef_search whose recall@k against exact search reaches
a target on sample queries, so that recall holds as the catalogue grows instead of decaying at a fixed ef."""

from __future__ import annotations

import numpy as np

from wren.core.index.base import VectorIndex
from wren.core.index.hnsw import HnswIndex

EF_GRID = (128, 192, 256, 384, 512, 768, 1024)  # hnswlib searches at least k = 100 wide anyway


def index_recall_at(index: VectorIndex, exact: VectorIndex, queries: np.ndarray, k: int = 100) -> float:
    """Tie-aware recall@k of `index` against exact search, as in ANN benchmarks: a returned item is a
    hit when its similarity reaches the exact k-th similarity (minus 1e-5). Many items can share one
    vector, so plain id overlap would punish equally good answers."""
    _, approx_scores = index.search(queries, k)
    _, exact_scores = exact.search(queries, k)
    kth = exact_scores[:, -1:]
    hits = (approx_scores >= kth - 1e-5) & np.isfinite(approx_scores)
    return float(hits.sum(axis=1).mean() / k)


def calibrate_ef(
    index: HnswIndex, exact: VectorIndex, queries: np.ndarray, target: float, k: int = 100, floor: int = 0
) -> dict:
    """Sets `index.ef_search` to the smallest value of EF_GRID, not below `floor`, whose graph recall@k on
    `queries` reaches `target` (the largest when none does) and returns what was tried. The graph itself is
    measured: the exact scan for wide queries is off meanwhile."""
    scan_share = index.full_scan_share
    index.full_scan_share = 0.0
    tried: dict[str, float] = {}
    try:
        for ef in [value for value in EF_GRID if value >= floor] or [floor]:
            index.ef_search = ef
            tried[str(ef)] = index_recall_at(index, exact, queries, k)
            if tried[str(ef)] >= target:
                break
    finally:
        index.full_scan_share = scan_share
    return {
        "ef_search": index.ef_search,
        f"recall_at_{k}": tried[str(index.ef_search)],
        "target": target,
        "queries": int(len(queries)),
        "tried": tried,
    }


def calibration_queries(exact: VectorIndex, ids: np.ndarray, vectors: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Queries like the ones serving sends, from the `vectors` an index holds under `ids`: half are item
    vectors (similar items), half the mean of an item and its 4 nearest neighbours (a user's recent items
    average into a vector between items, which is harder for a graph than one it holds)."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(vectors))[:count])
    items, tastes = vectors[rows[::2]], vectors[rows[1::2]]
    if len(tastes):
        neighbours, _ = exact.search(tastes, min(5, len(vectors)))
        order = np.argsort(ids)
        positions = order[np.searchsorted(ids, neighbours, sorter=order)]
        tastes = vectors[positions].mean(axis=1)
    return np.vstack([items, tastes]).astype(np.float32)
