"""Cross-fitted ranking rows: the label users fall in folds, and each fold's candidates come from recall models
fitted on everything but that fold's label ratings, so the rankers learn from recall features almost as strong
as the served ones (fitted on all of the training part) while no model has seen the labels it is judged by."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline import coldstart, features
from pipeline.config import TrainConfig
from pipeline.ranking_candidates import CandidateRows, candidate_rows
from pipeline.recall_models import fit_recall_models, recall_catalog
from wren.core.bundle import ItemTable, UserTable
from wren.core.index.base import VectorIndex
from wren.core.profiles import ProfileBuilder, TableLookup
from wren.core.recall.channels import Proposal, default_channels
from wren.core.recall.content import ContentSpace
from wren.core.recall.recaller import Recaller


@dataclass(frozen=True)
class ItemSide:
    """What every fold shares: the catalogue, the item vectors and their index, the content space."""

    catalog: pd.DataFrame
    genres: list[str]
    vectors: np.ndarray
    has_embedding: np.ndarray
    index: VectorIndex
    content: sparse.csr_matrix
    space: ContentSpace


@dataclass(frozen=True)
class RankingRows:
    """fit / valid: candidate rows of disjoint users; proposals: each validation user's channel lists (for
    fitting the merge quotas)."""

    fit: CandidateRows
    valid: CandidateRows
    proposals: dict[int, dict[str, Proposal]]


def sample_label_users(labels: pd.DataFrame, cap: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows of a seeded sample of at most `cap` users of `labels`, every other row); cap 0 keeps every user.
    The rankers learn from the sample: their candidate rows grow with the users they label, not the data."""
    users = np.unique(labels["user_id"].to_numpy(np.int64))
    if not cap or len(users) <= cap:
        return labels, labels.iloc[:0]
    chosen = labels["user_id"].isin(rng.choice(users, cap, replace=False)).to_numpy()
    return labels[chosen], labels[~chosen]


def crossfit_rows(
    history: pd.DataFrame,
    labels: pd.DataFrame,
    users: UserTable,
    valid_users: np.ndarray,
    item_side: ItemSide,
    config: TrainConfig,
) -> RankingRows:
    """`history` + `labels` is the training part; `labels` holds each label user's held-out ratings and `users`
    their state without them (`history`'s user table, which also gives the recall models' segments). The users
    of `labels` are dealt into `config.ranking.folds` folds at random (seeded); 1 fold fits the recall models on
    `history` alone."""
    label_users = np.unique(labels["user_id"].to_numpy(np.int64))
    fold = pd.Series(
        np.random.default_rng(config.seed).permutation(len(label_users)) % config.ranking.folds, index=label_users
    )
    fold_of_row = labels["user_id"].map(fold).to_numpy()
    is_valid = labels["user_id"].isin(valid_users).to_numpy()
    fit_parts: list[CandidateRows] = []
    valid_parts: list[CandidateRows] = []
    proposals: dict[int, dict[str, Proposal]] = {}
    for k in range(config.ranking.folds):
        in_fold = fold_of_row == k
        if not in_fold.any():
            continue  # more folds than label users
        ratings = pd.concat([history, labels[~in_fold]]).sort_values(
            ["user_id", "timestamp", "item_id"], kind="stable", ignore_index=True
        )
        recaller, builder, items = _fold_recall(ratings, users, item_side, config)
        rows = functools.partial(
            candidate_rows,
            recaller=recaller,
            users=users,
            builder=builder,
            items=items,
            embeddings=item_side.vectors,
            has_embedding=item_side.has_embedding,
            depth=config.ranking.candidates,
            random_negatives=config.ranking.random_negatives,
            threshold=config.positive_threshold,
            seed=config.seed + k,
        )
        if (in_fold & ~is_valid).any():
            fit_parts.append(rows(held_out=labels[in_fold & ~is_valid]))
        if (in_fold & is_valid).any():
            valid_parts.append(rows(held_out=labels[in_fold & is_valid], proposals=proposals))
    if not fit_parts or not valid_parts:
        raise ValueError(
            "too few label users to train the rankers: none left for training or none for "
            "validation (raise ranking.ranker_fraction or adjust ranking.validation_users)"
        )
    return RankingRows(CandidateRows.concat(fit_parts), CandidateRows.concat(valid_parts), proposals)


def _fold_recall(
    ratings: pd.DataFrame, users: UserTable, item_side: ItemSide, config: TrainConfig
) -> tuple[Recaller, ProfileBuilder, features.ItemFeatures]:
    """The recaller and profile builder of recall models fitted on `ratings`, and those models' item features."""
    models = fit_recall_models(ratings, item_side.catalog, item_side.genres, users, config)
    catalog = recall_catalog(
        models, item_side.vectors, item_side.has_embedding, item_side.index, item_side.content, item_side.space, config
    )
    recaller = Recaller(
        catalog, default_channels(catalog, config.recall.popularity_prior, config.covisit.seeds, config.covisit.decay)
    )
    builder = ProfileBuilder(
        genre_count=len(item_side.genres),
        recent_len=config.recent_len,
        positive_threshold=config.positive_threshold,
        new_user_segment=coldstart.NEW_SEGMENT,
        lookup=TableLookup(_item_table(models.items), item_side.vectors * item_side.has_embedding[:, None]),
    )
    return recaller, builder, models.items


def _item_table(items: features.ItemFeatures) -> ItemTable:
    return ItemTable(
        items.ids,
        items.dense,
        items.genres,
        items.years,
        items.popularity,
        np.ones(len(items.ids), bool),
        [""] * len(items.ids),
    )
