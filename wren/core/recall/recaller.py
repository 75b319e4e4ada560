"""Recaller: the transport-free core of the recall tier (channels -> merged candidates)."""

from __future__ import annotations

import numpy as np

from wren.core.bundle import Bundle
from wren.core.errors import InvalidArgument, NotFound
from wren.core.recall.catalog import RecallCatalog
from wren.core.recall.channels import Channel, Proposal, SeenFilter, Trending, default_channels
from wren.core.recall.merge import merge
from wren.core.types import Candidates, UserProfile

DEFAULT_QUOTAS = {
    "embedding": 0.05,
    "item2item": 0.05,
    "content": 0.05,
    "popularity": 0.1,
    "segment": 0.1,
    "cf": 0.25,
    "covisit": 0.15,
    "ease": 0.25,
}
MAX_K = 2000


class Recaller:
    """Runs every channel for a user and merges the proposals under per-channel quotas."""

    def __init__(
        self,
        catalog: RecallCatalog,
        channels: list[Channel] | None = None,
        quotas: dict[str, float] | None = None,
        max_k: int = MAX_K,
    ) -> None:
        self.catalog = catalog
        self.channels = channels if channels is not None else default_channels(catalog)
        self.quotas = dict(quotas if quotas is not None else DEFAULT_QUOTAS)
        self.max_k = max_k

    @classmethod
    def from_bundle(
        cls, bundle: Bundle, index_kind: str | None = None, trending: Trending | None = None, **overrides: object
    ) -> Recaller:
        """The recaller a bundle was evaluated with: its index, quotas and popularity prior (and, serving, the
        nearline tier's trending list in the popularity channel)."""
        recall = bundle.manifest.recall
        config = bundle.manifest.config
        catalog = RecallCatalog.from_bundle(bundle, index_kind or config["index"]["kind"])
        prior = float(config.get("recall", {}).get("popularity_prior", 1.0))
        covisit = config.get("covisit", {})
        channels = default_channels(
            catalog, prior, int(covisit.get("seeds", 10)), float(covisit.get("decay", 0.9)), trending
        )
        return cls(catalog, channels, recall.quotas if recall is not None else None, **overrides)  # type: ignore[arg-type]

    @property
    def version(self) -> str:
        return self.catalog.version

    def check_k(self, k: int) -> None:
        if not 1 <= k <= self.max_k:
            raise InvalidArgument(f"k must be between 1 and {self.max_k}, got {k}")

    def proposals(self, user: UserProfile, depth: int) -> dict[str, Proposal]:
        """Each channel's own top `depth` unseen items (used by `recall` and by offline evaluation)."""
        seen = SeenFilter(user.rated_items)
        return {channel.name: channel.propose(user, depth, seen) for channel in self.channels}

    def recall(self, user: UserProfile, k: int) -> Candidates:
        self.check_k(k)
        if user.embedding is not None and len(user.embedding) != self.catalog.embeddings.shape[1]:
            raise InvalidArgument(
                f"user embedding has {len(user.embedding)} values, the index has {self.catalog.embeddings.shape[1]}"
            )
        if user.embedding is not None and not np.all(np.isfinite(user.embedding)):
            raise InvalidArgument("user embedding contains NaN or infinite values")
        return self.merge(self.proposals(user, k), k)

    def merge(self, proposals: dict[str, Proposal], k: int) -> Candidates:
        return merge(proposals, self.quotas, k)

    def similar_items(self, item_id: int, k: int) -> Proposal:
        """Nearest items to `item_id` by embedding, the item itself excluded."""
        self.check_k(k)
        row = self.catalog.row(item_id)
        if row < 0:
            raise NotFound(f"unknown item {item_id}")
        if not self.catalog.has_embedding[row]:
            raise NotFound(f"item {item_id} has no embedding (no interactions and no content)")
        wanted = min(len(self.catalog.index), k + 1)
        ids, scores = self.catalog.index.search(self.catalog.embeddings[row][None, :], wanted)
        keep = (ids[0] >= 0) & (ids[0] != item_id)
        return ids[0][keep][:k], scores[0][keep][:k]
