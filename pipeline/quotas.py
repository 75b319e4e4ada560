"""Fits the recall merge quotas on a validation holdout, so the test set never shapes the merged list."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd

from services.common.bundle import Bundle, UserTable
from services.feature.profiles import ProfileBuilder
from services.recall.merge import merge
from services.recall.recaller import Recaller

PERSONAL_SHARES = (0.1, 0.2, 0.3, 0.5, 0.7)
PERSONAL_SPLIT = {"embedding": 0.4, "item2item": 0.4, "content": 0.2}
POPULAR_SPLITS = ({"segment": 1.0}, {"segment": 0.5, "popularity": 0.5}, {"popularity": 1.0})


def quota_grid() -> list[dict[str, float]]:
    """Candidate quota mixes: a share for the personal channels (split in fixed proportions), the rest
    for the popular-list channels."""
    grid = []
    for share, popular in product(PERSONAL_SHARES, POPULAR_SPLITS):
        mix = {name: round(share * weight, 4) for name, weight in PERSONAL_SPLIT.items()}
        mix.update({name: round((1 - share) * weight, 4) for name, weight in popular.items()})
        grid.append(mix)
    return grid


def fit_quotas(
    bundle: Bundle, validation_users: UserTable, validation: pd.DataFrame, k: int, max_users: int, seed: int
) -> tuple[dict[str, float], list[dict]]:
    """The grid mix with the best mean Recall@k of the merged list on `validation` positives, with user
    profiles from `validation_users` (features from before the validation period). Returns
    (best quotas, every mix with its validation recall)."""
    builder = ProfileBuilder.from_bundle(bundle)
    recaller = Recaller.from_bundle(bundle)
    positives = validation[validation["rating"] >= bundle.positive_threshold]
    by_user = {int(u): g.to_numpy(np.int64) for u, g in positives.groupby("user_id")["item_id"]}
    users = [u for u in sorted(by_user) if validation_users.row(u) is not None]
    if max_users and len(users) > max_users:
        users = sorted(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist())
    cases = []
    for user_id in users:
        profile = builder.profile(user_id, builder.snapshot_state(validation_users, validation_users.row(user_id)))
        relevant = np.setdiff1d(by_user[user_id], profile.rated_items)
        if len(relevant):
            cases.append((recaller.proposals(profile, k), relevant))
    results = []
    for mix in quota_grid():
        recalls = [np.isin(merge(proposals, mix, k).item_ids, relevant).sum() / len(relevant)
                   for proposals, relevant in cases]
        results.append({"quotas": mix, f"recall_at_{k}": float(np.mean(recalls)) if recalls else 0.0})
    best = max(results, key=lambda row: row[f"recall_at_{k}"])
    return best["quotas"], results
