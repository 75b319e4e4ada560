"""What the gateway reads from its own bundle: display data and genres of every item, and what it serves on its
own when a tier is down (a cold-start profile, per-segment popular lists, genre neighbours)."""

from __future__ import annotations

import numpy as np

from wren.core.arrays import IdIndex, rank_scores
from wren.core.bundle import Bundle
from wren.core.profiles import ProfileBuilder
from wren.core.schema import recall_feature_width
from wren.core.types import Candidates, UserProfile

FALLBACK_POPULAR = "fallback_popular"  # the source of candidates from the segment's popular list
FALLBACK_GENRE = "fallback_genre"  # the source of similar items from the item's first genre
POPULAR_CHANNEL = "segment"  # the recall channel whose features a popular list carries


class FallbackCatalog:
    """Read from one bundle: per-segment popular lists (best first), item titles and genres, and the items each
    user of the bundle rated (so that no fallback list re-serves them while features are down)."""

    def __init__(self, bundle: Bundle) -> None:
        self.version = bundle.version
        cold = bundle.cold_start
        self.popular = np.asarray(cold["popular"], np.int64)
        self.segments = {name: np.asarray(ids, np.int64) for name, ids in cold["segments"].items()}
        self.default_segment = cold["default_segment"]
        items = bundle.items
        names = np.array(bundle.genres)
        self.index = IdIndex(items.ids)
        # One more entry than items, read for row -1 (an id the bundle does not know): no title, no genres.
        self.titles = [*items.titles, ""]
        self.genres = [*(list(names[row.astype(bool)]) for row in items.genres), []]
        self.users = bundle.users
        self.recall_channels = tuple(bundle.schema.recall_channels)
        self.profiles = ProfileBuilder.from_bundle(bundle)

    def rated(self, user_id: int) -> np.ndarray:
        """Items the bundle says `user_id` rated (empty for users it does not know)."""
        row = self.users.row(user_id)
        return self.users.rated(row) if row is not None else np.empty(0, np.int64)

    def cold_profile(self, user_id: int, seen: np.ndarray) -> UserProfile:
        """The profile the feature tier gives a user it knows nothing about (default segment, zero features),
        with `seen` as the rated items: what recall and ranking get while the feature tier is down."""
        profile = self.profiles.profile(user_id, self.profiles.empty_state())
        profile.rated_items = np.asarray(seen, np.int64)
        return profile

    def recall_features(self, n: int, channel: str = POPULAR_CHANNEL) -> np.ndarray:
        """[n, recall feature width] recall features of a fallback list that `channel` ranked (the ranking
        models' input when the recall tier could not answer)."""
        width = len(self.recall_channels)
        features = np.zeros((n, recall_feature_width(width)), np.float32)
        if channel in self.recall_channels:
            column = self.recall_channels.index(channel)
            features[:, column] = features[:, width + column] = 1.0 / (1.0 + np.arange(n))
        return features

    def popular_for(self, segment: str, exclude: np.ndarray, n: int) -> np.ndarray:
        """Up to n items of the segment's list (else the default one), minus `exclude`."""
        ranked = self.segments.get(segment, self.segments.get(self.default_segment, self.popular))
        return ranked[~np.isin(ranked, exclude)][:n]

    def popular_candidates(self, segment: str, exclude: np.ndarray, n: int) -> Candidates:
        """`popular_for` as recall candidates: rank scores, no recall channel bit set, and the recall features
        of a list the segment channel ranked."""
        ids = self.popular_for(segment, exclude, n)
        return Candidates(
            item_ids=ids,
            scores=rank_scores(len(ids)),
            source_masks=np.zeros(len(ids), np.uint32),
            channels=self.recall_channels,
            recall_features=self.recall_features(len(ids)),
        )

    def rows(self, item_ids: np.ndarray) -> list[int]:
        """Each id's row for `titles` and `genres` (-1, which reads "" and [], for ids the bundle does not know)."""
        return self.index.rows(item_ids).tolist()

    def display(self, item_ids: np.ndarray) -> tuple[list[str], list[list[str]]]:
        """(titles, genres) of each id, "" and [] for ids the bundle does not know."""
        rows = self.rows(item_ids)
        return [self.titles[row] for row in rows], [self.genres[row] for row in rows]

    def describe(self, item_id: int) -> tuple[str, list[str]]:
        """(title, genres); empty for ids the bundle does not know."""
        row = self.index.row(item_id)
        return self.titles[row], self.genres[row]

    def similar_by_genre(self, item_id: int, n: int) -> np.ndarray:
        """Popular items sharing the item's first genre: a stand-in when the recall tier is down."""
        _, genres = self.describe(item_id)
        if not genres:
            return np.empty(0, np.int64)
        wanted = genres[0]
        rows = self.index.rows(self.popular).tolist()
        chosen = [
            int(item)
            for item, row in zip(self.popular, rows, strict=True)
            if item != item_id and wanted in self.genres[row]
        ]
        return np.asarray(chosen[:n], np.int64)
