"""The embedding indexes every bundle holds (HNSW, LSH, exact) as IndexConfig builds them, HNSW calibrated."""

from __future__ import annotations

import numpy as np

from pipeline.config import TrainConfig
from pipeline.index_tuning import calibrate_ef, calibration_queries
from wren.core.index.base import VectorIndex
from wren.core.index.factory import build_index
from wren.core.index.hnsw import HnswIndex


def build_indexes(ids: np.ndarray, vectors: np.ndarray, config: TrainConfig) -> tuple[dict[str, VectorIndex], dict]:
    """The embedding indexes, and how HNSW's search width was calibrated to `index.target_recall` (an empty
    dict when the target is 0)."""
    dim = vectors.shape[1]
    indexes = {
        "hnsw": build_index(
            "hnsw",
            dim,
            ids,
            vectors,
            m=config.index.m,
            ef_construction=config.index.ef_construction,
            ef_search=config.index.ef_search,
            full_scan_share=config.index.full_scan_share,
            seed=config.seed,
        ),
        "lsh": build_index(
            "lsh",
            dim,
            ids,
            vectors,
            n_tables=config.index.lsh_tables,
            n_projections=config.index.lsh_projections,
            seed=config.seed,
        ),
        "exact": build_index("exact", dim, ids, vectors),
    }
    calibration: dict = {}
    hnsw = indexes["hnsw"]
    if isinstance(hnsw, HnswIndex) and config.index.target_recall > 0 and len(ids) > 0:
        queries = calibration_queries(indexes["exact"], ids, vectors, config.index.calibration_queries, config.seed)
        calibration = calibrate_ef(
            hnsw, indexes["exact"], queries, config.index.target_recall, floor=config.index.ef_search
        )
    return indexes, calibration
