"""Fits the recall merge quotas for the served metric: on validation users, each mix's merged candidates are
ordered by the trained ranker and re-ranked as the gateway does, and the mix with the best NDCG@k wins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.ranking_candidates import CandidateRows
from wren.core.recall.channels import CHANNELS, Proposal
from wren.core.recall.merge import merge
from wren.core.rerank import diversify

PERSONAL = ("embedding", "item2item", "content", "cf", "covisit", "ease")


def quota_grid() -> list[dict[str, float]]:
    """Candidate mixes: the first dominated by each personal channel in turn, then balanced ones; the rest of
    each mix goes to the popular-list channels."""
    grid = []
    for personal_share in (0.5, 0.7, 0.9):
        for lead in ("cf", "covisit", "ease", None):
            weights = {name: 1.0 for name in PERSONAL}
            if lead is not None:
                weights[lead] = 3.0
            total = sum(weights.values())
            mix = {name: round(personal_share * w / total, 4) for name, w in weights.items()}
            rest = 1.0 - personal_share
            mix.update({"popularity": round(rest / 2, 4), "segment": round(rest / 2, 4)})
            grid.append(mix)
    return grid


def fit_quotas(
    proposals: dict[int, dict[str, Proposal]],
    relevant: dict[int, np.ndarray],
    score: Callable[[int, np.ndarray], np.ndarray],
    genres: Callable[[np.ndarray], list[list[str]]],
    candidates: int,
    k: int,
    max_genre_share: float,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """(best mix, every mix with its validation NDCG@k). `proposals[user]` are the channels' own lists,
    `score(user, item_ids)` the ranker's scores, `genres(item_ids)` the items' genres for the re-rank."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    results: list[dict[str, Any]] = []
    for mix in quota_grid():
        ndcgs = []
        for user, channel_lists in proposals.items():
            merged = merge(channel_lists, mix, candidates)
            if len(merged) == 0:
                ndcgs.append(0.0)
                continue
            order = np.argsort(-score(user, merged.item_ids), kind="stable")
            chosen = merged.item_ids[diversify(order.tolist(), genres(merged.item_ids), k, max_genre_share)]
            hits = np.isin(chosen, relevant[user])
            ideal = discount[: min(k, len(relevant[user]))].sum()
            ndcgs.append(float((hits * discount[: len(hits)]).sum() / ideal))
        results.append({"quotas": mix, f"ndcg_at_{k}": float(np.mean(ndcgs)) if ndcgs else 0.0})
    best = max(results, key=lambda row: row[f"ndcg_at_{k}"])
    return best["quotas"], results


def scores_by_user(rows: CandidateRows, scores: np.ndarray) -> dict[int, dict[int, float]]:
    """{user: {item: score}} for the rows' items."""
    offsets = rows.groups()
    return {
        int(rows.users[start]): dict(zip(rows.items[start:end].tolist(), scores[start:end].tolist(), strict=True))
        for start, end in zip(offsets[:-1], offsets[1:], strict=True)
    }


assert set(PERSONAL) | {"popularity", "segment"} == set(CHANNELS)
