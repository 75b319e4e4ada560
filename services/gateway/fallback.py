"""What the gateway can serve on its own when a tier is down: popular lists, titles and genres."""

from __future__ import annotations

import numpy as np

from services.common.bundle import Bundle


class FallbackCatalog:
    """Read from the bundle at start: per-segment popular lists (best first) and item display data."""

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
