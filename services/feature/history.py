"""Merges a user's bundle ratings with the events recorded since into one list, newest first, one entry per item."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from wren.core.types import Event, RatedEntry


def merge_history(
    item_ids: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray, events: Iterable[Event]
) -> list[RatedEntry]:
    """The bundle's entries (item ids newest first, ratings NaN when unknown, timestamps) with `events` (oldest
    first) applied: an event makes its item the latest interaction at the event's time; a rating event sets
    the item's rating, a click or view keeps the rating the user gave before. Sorted by timestamp, newest
    first; entries with equal timestamps keep their order (later events first)."""
    merged: dict[int, RatedEntry] = {}
    for item_id, rating, stamp in reversed(
        list(zip(item_ids.tolist(), ratings.tolist(), timestamps.tolist(), strict=True))
    ):
        merged[item_id] = RatedEntry(item_id, None if np.isnan(rating) else float(rating), int(stamp))
    for event in events:
        before = merged.pop(event.item_id, None)
        rating = event.rating if event.type == "rating" else (before.rating if before else None)
        merged[event.item_id] = RatedEntry(event.item_id, rating, event.timestamp)
    newest_first = list(merged.values())[::-1]
    return sorted(newest_first, key=lambda entry: -entry.timestamp)
