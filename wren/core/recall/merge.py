"""Merges channel proposals: per-channel quotas, deduplication, reciprocal-rank fusion for the order."""

from __future__ import annotations

import numpy as np

from wren.core.recall.channels import Proposal
from wren.core.schema import recall_feature_width
from wren.core.types import Candidates

RRF_K = 60.0  # the usual reciprocal-rank-fusion constant; damps the weight of the very top ranks


def merge(
    proposals: dict[str, Proposal], quotas: dict[str, float], k: int, weights: dict[str, float] | None = None
) -> Candidates:
    """Up to k distinct items, best first.

    Each channel first places its top round(quota * k) items; remaining places go to the best fused
    scores. The fused score of an item is sum over channels of weight / (RRF_K + rank); an item's
    source mask has a bit for every channel that proposed it (whether or not its quota placed it), and
    its recall features (schema.RECALL_FEATURES) hold, for every channel that proposed it, 1 / (1 + rank) in the
    first block of columns and score / the channel's largest absolute score in the second (0 elsewhere).
    """
    channels = tuple(proposals)
    if not channels or k <= 0:
        return Candidates.empty(channels)
    weights = weights or {}
    all_ids, all_ranks, all_channel, all_quota, all_scores = [], [], [], [], []
    for column, name in enumerate(channels):
        ids, scores = proposals[name]
        ranks = np.arange(len(ids), dtype=np.float64)
        top = float(np.max(np.abs(scores))) if len(scores) else 0.0
        all_scores.append(np.asarray(scores, np.float64) / top if top > 0 else np.zeros(len(ids)))
        all_ids.append(ids)
        all_ranks.append(ranks)
        all_channel.append(np.full(len(ids), column, np.int64))
        all_quota.append(ranks < round(quotas.get(name, 0.0) * k))
    ids = np.concatenate(all_ids).astype(np.int64)
    if len(ids) == 0:
        return Candidates.empty(channels)
    ranks, columns = np.concatenate(all_ranks), np.concatenate(all_channel)
    channel_weights = np.array([weights.get(name, 1.0) for name in channels])
    unique, inverse = np.unique(ids, return_inverse=True)
    fused = np.bincount(inverse, weights=channel_weights[columns] / (RRF_K + 1.0 + ranks), minlength=len(unique))
    features = np.zeros((len(unique), recall_feature_width(len(channels))), np.float32)
    features[inverse, columns] = 1.0 / (1.0 + ranks)
    features[inverse, len(channels) + columns] = np.concatenate(all_scores)
    masks = np.zeros(len(unique), np.uint32)
    np.bitwise_or.at(masks, inverse, (np.uint32(1) << columns.astype(np.uint32)).astype(np.uint32))
    placed = np.zeros(len(unique), bool)
    placed[inverse[np.concatenate(all_quota)]] = True

    by_score = np.argsort(-fused, kind="stable")
    quota_first = by_score[placed[by_score]]
    rest = by_score[~placed[by_score]]
    chosen = np.concatenate([quota_first, rest])[:k]
    chosen = chosen[np.argsort(-fused[chosen], kind="stable")]
    return Candidates(unique[chosen], fused[chosen].astype(np.float32), masks[chosen], channels, features[chosen])
