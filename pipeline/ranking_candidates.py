"""Ranking training rows: each user's recall candidates (hard negatives and the positives recall found) plus
random catalogue items, labelled by what the user went on to rate in a held-out period."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.features import ItemFeatures
from pipeline.ranking_data import assemble
from pipeline.split import column_by_user
from wren.core.bundle import UserTable
from wren.core.profiles import ProfileBuilder
from wren.core.recall.channels import Proposal
from wren.core.recall.merge import merge
from wren.core.recall.recaller import Recaller
from wren.core.schema import recall_feature_width


@dataclass(frozen=True)
class CandidateRows:
    """Rows grouped by user (contiguous, users ascending). gain: 0 not rated in the held-out period,
    1 rated, 2 rated at or above the positive threshold; hard: the row is a recall candidate (else a random
    catalogue item, whose recall features are zero); inputs: named model inputs, one row each."""

    inputs: dict[str, np.ndarray]
    users: np.ndarray  # int64 [N]
    items: np.ndarray  # int64 [N]
    gain: np.ndarray  # float32 [N]
    hard: np.ndarray  # bool [N]

    def __len__(self) -> int:
        return len(self.users)

    def take(self, mask: np.ndarray) -> CandidateRows:
        return CandidateRows(
            {name: np.ascontiguousarray(v[mask]) for name, v in self.inputs.items()},
            self.users[mask],
            self.items[mask],
            self.gain[mask],
            self.hard[mask],
        )

    @staticmethod
    def concat(parts: list[CandidateRows]) -> CandidateRows:
        """The rows of `parts` (of disjoint users), users ascending."""
        joined = CandidateRows(
            {name: np.concatenate([p.inputs[name] for p in parts]) for name in parts[0].inputs},
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("users", "items", "gain", "hard")),
        )
        return joined.take(np.argsort(joined.users, kind="stable"))

    def groups(self) -> np.ndarray:
        """[G + 1] offsets: rows of the g-th user are offsets[g]:offsets[g + 1]."""
        return np.flatnonzero(np.r_[True, self.users[1:] != self.users[:-1], True])


def candidate_rows(
    recaller: Recaller,
    users: UserTable,
    builder: ProfileBuilder,
    held_out: pd.DataFrame,
    items: ItemFeatures,
    embeddings: np.ndarray,
    has_embedding: np.ndarray,
    depth: int,
    random_negatives: int,
    threshold: float,
    seed: int,
    proposals: dict[int, dict[str, Proposal]] | None = None,
) -> CandidateRows:
    """Rows for every user of `held_out` known to `users` (their state before the held-out period). With a
    `proposals` dict, each user's rows are the union of every channel's own top `depth` (not the merged
    list), and the channels' lists are stored in it by user (for fitting merge quotas)."""
    rng = np.random.default_rng(seed)
    gains = held_out.assign(gain=1.0 + (held_out["rating"] >= threshold))
    gain_of = column_by_user(gains, "gain", np.float32)
    by_user = {user_id: (ids, gain_of[user_id]) for user_id, ids in column_by_user(gains).items()}
    channels = recall_feature_width(len(recaller.channels))
    parts: dict[str, list[np.ndarray]] = {"user": [], "row": [], "item": [], "gain": [], "hard": [], "features": []}
    for user_id in sorted(by_user):
        row = users.row(user_id)
        if row is None:
            continue
        profile = builder.profile(user_id, builder.snapshot_state(users, row))
        if proposals is None:
            candidates = recaller.recall(profile, depth)
        else:
            proposals[user_id] = recaller.proposals(profile, depth)
            everything = {name: 1.0 for name in proposals[user_id]}
            candidates = merge(proposals[user_id], everything, depth * len(everything))
        taken = np.concatenate([candidates.item_ids, profile.rated_items])
        pool = items.ids[~np.isin(items.ids, taken)]
        extra = rng.choice(pool, min(random_negatives, len(pool)), replace=False) if len(pool) else pool
        ids = np.concatenate([candidates.item_ids, extra])
        positives, gain = by_user[user_id]
        labels = np.zeros(len(ids), np.float32)
        order = np.argsort(positives)
        where = np.searchsorted(positives[order], ids)
        hit = (where < len(positives)) & (positives[order][np.minimum(where, len(positives) - 1)] == ids)
        labels[hit] = gain[order][where[hit]]
        parts["user"].append(np.full(len(ids), user_id, np.int64))
        parts["row"].append(np.full(len(ids), row, np.int64))
        parts["item"].append(ids)
        parts["gain"].append(labels)
        parts["hard"].append(np.r_[np.ones(len(candidates), bool), np.zeros(len(extra), bool)])
        parts["features"].append(np.vstack([candidates.recall_features, np.zeros((len(extra), channels), np.float32)]))
    if not parts["user"]:
        raise ValueError("no held-out user has a training history: nothing to train the rankers on")
    user_rows = np.concatenate(parts["row"])
    item_ids = np.concatenate(parts["item"])
    inputs = assemble(
        user_counters=users.counters[user_rows],
        user_genre_rated=users.genre_rated[user_rows],
        user_genre_rating_sum=users.genre_rating_sum[user_rows],
        user_recent=users.recent[user_rows],
        item_ids=item_ids,
        item_dense=items.dense[items.rows(item_ids)],
        catalog_ids=items.ids,
        catalog_genres=items.genres,
        embeddings=embeddings,
        has_embedding=has_embedding,
        recall_features=np.vstack(parts["features"]),
    )
    return CandidateRows(
        inputs, np.concatenate(parts["user"]), item_ids, np.concatenate(parts["gain"]), np.concatenate(parts["hard"])
    )
