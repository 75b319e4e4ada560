"""Recall channels: each proposes up to `depth` unseen items for a user, best first, with scores."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from wren.core.arrays import IdIndex, rank_scores
from wren.core.recall.catalog import RecallCatalog
from wren.core.types import UserProfile

Proposal = tuple[np.ndarray, np.ndarray]  # (item ids int64, scores float32), best first
EMPTY: Proposal = (np.empty(0, np.int64), np.empty(0, np.float32))


class SeenFilter:
    """Membership test against the items a user already rated or interacted with."""

    def __init__(self, rated: np.ndarray) -> None:
        self.rated = IdIndex(np.unique(np.asarray(rated, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.rated)

    def unseen(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask, true where ids[i] was not seen."""
        return ~self.rated.contains(ids)


class Channel(Protocol):
    name: str

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal: ...


def _keep(ids: np.ndarray, scores: np.ndarray, seen: SeenFilter, depth: int) -> Proposal:
    keep = (ids >= 0) & seen.unseen(ids)
    return ids[keep][:depth], scores[keep][:depth].astype(np.float32)


class PopularityPrior:
    """Re-scores a similarity channel's proposals: similarity * popularity_weight ** strength.

    Pure similarity happily proposes items nobody has liked yet (their cold-start vectors sit close to
    everything); a prior trades a little novelty for items users actually take. The channel over-fetches
    `overfetch` times the depth so the re-scored list is still full. strength 0 turns it off.
    """

    def __init__(self, catalog: RecallCatalog, strength: float = 1.0, overfetch: int = 4) -> None:
        self.catalog = catalog
        self.strength = strength
        self.overfetch = overfetch if strength > 0 else 1

    def depth(self, depth: int) -> int:
        return depth * self.overfetch

    def apply(self, proposal: Proposal, depth: int) -> Proposal:
        ids, scores = proposal
        if self.strength <= 0 or len(ids) == 0:
            return ids[:depth], scores[:depth]
        rows = self.catalog.rows(ids)
        weighted = np.maximum(scores, 0.0) * self.catalog.popularity_weight(np.maximum(rows, 0)) ** self.strength
        order = np.argsort(-weighted, kind="stable")[:depth]
        return ids[order], weighted[order].astype(np.float32)


class EmbeddingChannel:
    """User embedding (mean of recent positives) -> nearest items in the vector index."""

    name = "embedding"

    def __init__(self, catalog: RecallCatalog, prior: PopularityPrior | None = None) -> None:
        self.catalog = catalog
        self.prior = prior or PopularityPrior(catalog, strength=0.0)

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal:
        if user.embedding is None or not np.any(user.embedding):
            return EMPTY
        fetch = self.prior.depth(depth)
        wanted = min(len(self.catalog.index), fetch + len(seen))
        ids, scores = self.catalog.index.search(user.embedding[None, :].astype(np.float32), wanted)
        return self.prior.apply(_keep(ids[0], scores[0], seen, fetch), depth)


class ItemToItemChannel:
    """Items similar to each of the user's newest positives, fused by their best similarity."""

    name = "item2item"

    def __init__(self, catalog: RecallCatalog, seeds: int = 5, prior: PopularityPrior | None = None) -> None:
        self.catalog = catalog
        self.seeds = seeds
        self.prior = prior or PopularityPrior(catalog, strength=0.0)

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal:
        rows = self.catalog.rows(user.recent_items[: self.seeds])
        rows = rows[rows >= 0]
        rows = rows[self.catalog.has_embedding[rows]]
        if len(rows) == 0:
            return EMPTY
        fetch = self.prior.depth(depth)
        per_seed = min(len(self.catalog.index), fetch + len(seen))
        ids, scores = self.catalog.index.search(self.catalog.embeddings[rows], per_seed)
        ids, scores = ids.ravel(), scores.ravel()
        order = np.argsort(-scores, kind="stable")
        ids, scores = ids[order], scores[order]
        _, first = np.unique(ids, return_index=True)
        first.sort()
        return self.prior.apply(_keep(ids[first], scores[first], seen, fetch), depth)


class ContentChannel:
    """The user's content profile (genres + tag TF-IDF of recent positives) matched to every item."""

    name = "content"

    def __init__(
        self, catalog: RecallCatalog, genre_affinity_weight: float = 0.5, prior: PopularityPrior | None = None
    ) -> None:
        self.catalog = catalog
        self.genre_affinity_weight = genre_affinity_weight
        self.prior = prior or PopularityPrior(catalog, strength=0.0)

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal:
        catalog = self.catalog
        rows = catalog.rows(user.recent_items)
        rows = rows[rows >= 0]
        profile = np.zeros(catalog.content.shape[1], np.float32)
        if len(rows):
            recency = rank_scores(len(rows))
            profile += np.asarray(catalog.content[rows].T @ recency).ravel()
        genres = len(catalog.content_space.genres)
        if user.genre_affinity is not None and len(user.genre_affinity) == genres:
            profile[:genres] += self.genre_affinity_weight * catalog.content_space.genre_weight * user.genre_affinity
        if not profile.any():
            return EMPTY
        scores = np.asarray(catalog.content @ profile).ravel()
        scores /= np.linalg.norm(profile)
        fetch = self.prior.depth(depth)
        take = min(len(scores), fetch + len(seen))
        top = np.argpartition(-scores, take - 1)[:take]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return self.prior.apply(_keep(catalog.ids[top], scores[top], seen, fetch), depth)


class Trending(Protocol):
    ids: np.ndarray  # int64, best first
    generation: int  # changes whenever ids do


class PopularityChannel:
    """Recently popular items (time-decayed positive interactions) for everyone: what trends now (the nearline
    tier's list, when there is one) ahead of the bundle's popular list."""

    name = "popularity"

    def __init__(self, catalog: RecallCatalog, trending: Trending | None = None) -> None:
        self.catalog = catalog
        self.trending = trending

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal:
        ids = self.catalog.popular
        if self.trending is not None and len(self.trending.ids):
            now = self.trending.ids[self.catalog.rows(self.trending.ids) >= 0]
            ids = np.concatenate([now, ids[~np.isin(ids, now)]])
        return _keep(ids, rank_scores(len(ids)), seen, depth)


class SegmentChannel:
    """The popular list of the user's cold-start segment (demographics or activity bucket)."""

    name = "segment"

    def __init__(self, catalog: RecallCatalog) -> None:
        self.catalog = catalog

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal:
        ids = self.catalog.segment_list(user.segment)
        return _keep(ids, rank_scores(len(ids)), seen, depth)


class CFChannel:
    """Matrix factorisation: the user's ALS vector, folded in from every item they interacted with, against
    the item factors in their own (inner-product) index."""

    name = "cf"

    def __init__(self, catalog: RecallCatalog) -> None:
        self.catalog = catalog

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal:
        cf, index = self.catalog.cf, self.catalog.cf_index
        if cf is None or index is None or len(user.rated_items) == 0:
            return EMPTY
        vector = cf.fold_in(self.catalog.rows(user.rated_items))
        if vector is None or not np.any(vector):
            return EMPTY
        wanted = min(len(index), depth + len(seen))
        ids, cosines = index.search(cf.query(vector)[None, :], wanted)
        ids, scores = _keep(ids[0], cosines[0], seen, depth)
        return ids, cf.inner_products(vector, scores)


class ItemGraphChannel:
    """Items scored through an item-to-item graph of the catalog (`catalog.item_graphs[name]`): the sum of the
    graph rows of the user's newest `seeds` interactions (all of them when None), weighted decay ** position.
    "covisit" walks the co-visitation graph from the newest items; "ease" sums the EASE weights of everything
    the user rated (a linear item-to-item model)."""

    def __init__(self, catalog: RecallCatalog, name: str, seeds: int | None = None, decay: float = 1.0) -> None:
        self.catalog = catalog
        self.name = name
        self.seeds = seeds
        self.decay = decay

    def propose(self, user: UserProfile, depth: int, seen: SeenFilter) -> Proposal:
        graph = self.catalog.item_graphs.get(self.name)
        if graph is None:
            return EMPTY
        rows = self.catalog.rows(user.rated_items[: self.seeds])
        weights = self.decay ** np.arange(len(rows), dtype=np.float64)
        usable = (rows >= 0) & (rows < graph.n)
        rows, weights = rows[usable], weights[usable]
        if len(rows) == 0:
            return EMPTY
        scores = graph.scores(rows, weights)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) == 0:
            return EMPTY
        take = min(len(candidates), depth + len(seen))
        top = candidates[np.argpartition(-scores[candidates], take - 1)[:take]]
        top = top[np.argsort(-scores[top], kind="stable")]
        return _keep(self.catalog.ids[top], scores[top].astype(np.float32), seen, depth)


CHANNELS = ("embedding", "item2item", "content", "popularity", "segment", "cf", "covisit", "ease")
"""Every channel by name, in the order of Candidates.channels and of the ranking models' recall features."""


def default_channels(
    catalog: RecallCatalog,
    popularity_prior: float = 1.0,
    covisit_seeds: int = 10,
    covisit_decay: float = 0.9,
    trending: Trending | None = None,
) -> list[Channel]:
    prior = PopularityPrior(catalog, strength=popularity_prior)
    channels: list[Channel] = [
        EmbeddingChannel(catalog, prior),
        ItemToItemChannel(catalog, prior=prior),
        ContentChannel(catalog, prior=prior),
        PopularityChannel(catalog, trending),
        SegmentChannel(catalog),
        CFChannel(catalog),
        ItemGraphChannel(catalog, "covisit", covisit_seeds, covisit_decay),
        ItemGraphChannel(catalog, "ease"),
    ]
    assert tuple(channel.name for channel in channels) == CHANNELS
    return channels
