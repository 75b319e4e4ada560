"""The gateway core's values: the candidate pool of one request, its served list, and the order it is ranked in."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from wren.core.types import Candidates, RankResult


@dataclass
class RecommendedItem:
    item_id: int
    title: str
    genres: list[str]
    score: float
    sources: list[str]
    rank_score: float | None
    recall_score: float
    cached: bool = False


@dataclass
class Recommendations:
    """One answer. degraded_reason lists every fallback taken, comma-separated, in request order."""

    user_id: int
    items: list[RecommendedItem]
    model_version: str = ""
    variant: str = ""
    degraded: bool = False
    degraded_reason: str = ""
    served_by: dict[str, str] = field(default_factory=dict)
    item_id: int = 0

    def from_cache(self, user_id: int) -> Recommendations:
        items = [dataclasses.replace(item, cached=True) for item in self.items]
        return dataclasses.replace(self, user_id=user_id, items=items, served_by={"gateway": "cache"})


@dataclass(frozen=True, slots=True)
class Pool:
    """The candidates of one request and where they came from: recall's channels (by mask), or one fallback."""

    candidates: Candidates
    fallback_source: str = ""  # set: every candidate came from this fallback, not from recall

    def sources(self, i: int) -> list[str]:
        return [self.fallback_source] if self.fallback_source else self.candidates.sources(i)


def ranked_order(recall_scores: np.ndarray, rank: RankResult | None) -> np.ndarray:
    """Candidate positions best first: by rank score when ranking answered, the candidates it does not know
    after every known one in recall order; by recall score when it did not (ties keep recall order)."""
    if rank is None:
        return np.argsort(-recall_scores, kind="stable")
    order = np.argsort(-rank.scores, kind="stable")
    if rank.known.all():
        return order
    unknown = np.flatnonzero(~rank.known)
    return np.concatenate([order[rank.known[order]], unknown[np.argsort(-recall_scores[unknown], kind="stable")]])
