"""What the recall channels learn from a ratings frame (item statistics, popular lists, ALS factors,
co-visitation), and the RecallCatalog they serve from, in memory or written into a bundle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline import coldstart, features
from pipeline.cf import fit_als, interaction_matrix
from pipeline.config import TrainConfig
from pipeline.covisit import covisit_graph
from pipeline.ease import ease_graph
from wren.core.bundle import UserTable
from wren.core.bundle_writer import BundleWriter
from wren.core.cf import CFModel
from wren.core.index.base import VectorIndex
from wren.core.index.factory import build_index
from wren.core.item_graph import ItemGraph, SparseItemGraph
from wren.core.manifest import CfEntry
from wren.core.recall.catalog import RecallCatalog
from wren.core.recall.content import ContentSpace


@dataclass(frozen=True)
class RecallModels:
    """items: statistics from the ratings; popular / segments: popular lists (item ids, best first);
    cf: ALS item factors by item row; graphs: item-to-item graphs by item row (covisit, ease)."""

    items: features.ItemFeatures
    popular: list[int]
    segments: dict[str, list[int]]
    cf: CFModel
    graphs: dict[str, ItemGraph]


def fit_recall_models(
    ratings: pd.DataFrame, catalog: pd.DataFrame, genres: list[str], users: UserTable, config: TrainConfig
) -> RecallModels:
    """Everything the popularity, segment, CF and co-visitation channels learn from `ratings`; `users` (a
    table of the same ratings) gives the segments."""
    items = features.item_features(
        ratings, catalog, genres, config.positive_threshold, config.cold_start.popularity_half_life_days
    )
    segments, popular = coldstart.segment_popular_lists(
        ratings,
        users.ids,
        users.segment,
        users.segment_names,
        items.ids,
        items.popularity,
        config.positive_threshold,
        config.cold_start.segment_list_size,
    )
    matrix = interaction_matrix(ratings, np.unique(ratings["user_id"].to_numpy(np.int64)), items.ids)
    _, item_factors = fit_als(matrix, config.cf, config.seed, config.threads)
    cf = CFModel(item_factors, config.cf.regularization, config.cf.alpha)
    graphs = {
        "covisit": SparseItemGraph(covisit_graph(ratings, items.ids, config.covisit)),
        "ease": ease_graph(matrix, config.ease),
    }
    return RecallModels(items, popular, segments, cf, graphs)


def cf_index(models: RecallModels, config: TrainConfig) -> VectorIndex:
    """The inner-product index over the items that have factors (see CFModel.index_vectors)."""
    usable = np.any(models.cf.item_factors != 0, axis=1)
    vectors = models.cf.index_vectors()
    return build_index(
        config.cf_index.kind,
        vectors.shape[1],
        models.items.ids[usable],
        vectors[usable],
        **config.cf_index.params(config.seed),
    )


def recall_catalog(
    models: RecallModels,
    embeddings: np.ndarray,
    has_embedding: np.ndarray,
    index: VectorIndex,
    content: sparse.csr_matrix,
    space: ContentSpace,
    config: TrainConfig,
) -> RecallCatalog:
    """The catalog the recall tier would load from a bundle holding these models (for training-time use)."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0).astype(np.float32)
    return RecallCatalog(
        ids=models.items.ids,
        embeddings=unit * has_embedding[:, None],
        has_embedding=has_embedding,
        index=index,
        content=content,
        content_space=space,
        popularity=models.items.popularity.astype(np.float32),
        popular=np.asarray(models.popular, np.int64),
        segments={name: np.asarray(ids, np.int64) for name, ids in models.segments.items()},
        default_segment=coldstart.NEW_SEGMENT,
        version="training",
        neighbours_for_new_items=config.cold_start.content_neighbours,
        cf=models.cf,
        cf_index=cf_index(models, config),
        item_graphs=dict(models.graphs),
    )


def save_recall_models(models: RecallModels, writer: BundleWriter, config: TrainConfig) -> CfEntry:
    """Writes cf.npz, index/cf/ and graphs/<name>.npz; returns the manifest's "cf" entry."""
    writer.save_npz("cf.npz", item_factors=models.cf.item_factors)
    for name, graph in models.graphs.items():
        writer.save_npz(f"graphs/{name}.npz", **graph.arrays())
    params = cf_index(models, config).save(writer.path("index/cf/"))
    return CfEntry(
        index_kind=config.cf_index.kind,
        index=params,
        factors=models.cf.factors,
        regularization=models.cf.regularization,
        alpha=models.cf.alpha,
    )
