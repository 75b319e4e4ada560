"""What the gateway can serve on its own when a tier is down: popular lists, titles and genres."""

from __future__ import annotations

import numpy as np

from wren.core.bundle import Bundle
from wren.core.schema import recall_feature_width


class FallbackCatalog:
    """Read from the bundle at start: per-segment popular lists (best first), item display data, and the
    items each user of the bundle rated (so that no fallback list re-serves them while features are down)."""

    def __init__(self, bundle: Bundle) -> None:
        cold = bundle.cold_start
        self.popular = np.asarray(cold["popular"], np.int64)
        self.segments = {name: np.asarray(ids, np.int64) for name, ids in cold["segments"].items()}
        self.default_segment = cold["default_segment"]
        items = bundle.items
        names = np.array(bundle.genres)
        self.ids = items.ids
        self.titles = items.titles
        self.genres = [list(names[row.astype(bool)]) for row in items.genres]
        self.users = bundle.users
        self.recall_channels = list(bundle.schema.recall_channels)

    def rated(self, user_id: int) -> np.ndarray:
        """Items the bundle says `user_id` rated (empty for users it does not know)."""
        row = self.users.row(user_id)
        return self.users.rated(row) if row is not None else np.empty(0, np.int64)

    def recall_features(self, n: int, channel: str = "segment") -> np.ndarray:
        """[n, channels] recall features of a fallback list that `channel` ranked (the ranking models'
        input when the recall tier could not answer)."""
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

    def describe(self, item_id: int) -> tuple[str, list[str]]:
        """(title, genres); empty for ids the bundle does not know."""
        pos = int(np.searchsorted(self.ids, item_id))
        if pos < len(self.ids) and self.ids[pos] == item_id:
            return self.titles[pos], self.genres[pos]
        return "", []

    def similar_by_genre(self, item_id: int, n: int) -> np.ndarray:
        """Popular items sharing the item's first genre: a stand-in when the recall tier is down."""
        _, genres = self.describe(item_id)
        if not genres:
            return np.empty(0, np.int64)
        wanted = genres[0]
        chosen = [int(i) for i in self.popular if i != item_id and wanted in self.describe(int(i))[1]]
        return np.asarray(chosen[:n], np.int64)
