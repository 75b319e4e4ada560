"""Ratings recorded after a bundle: the per-minute sums the feature tier reads and how they fold into a summary."""

from __future__ import annotations

from services.feature.catalogue_core import with_live_ratings
from services.feature.live_ratings import ratings_after
from wren.core.types import ItemSummary


def test_only_minutes_that_start_after_the_cutoff_count() -> None:
    buckets = {b"100:n": b"2", b"100:s": b"7.5", b"101:n": b"1", b"101:s": b"3", b"99:n": b"5", b"99:s": b"20"}
    assert ratings_after(buckets, data_cutoff=100 * 60 - 1) == (3, 10.5)
    assert ratings_after(buckets, data_cutoff=100 * 60) == (1, 3.0)  # minute 100 holds the cutoff itself
    assert ratings_after({"7:n": "1", "7:s": "4", "junk": "9"}, data_cutoff=0) == (1, 4.0)
    assert ratings_after({}, data_cutoff=0) == (0, 0.0)


def test_live_ratings_fold_into_the_bundles_count_and_mean() -> None:
    summary = ItemSummary(5, "Heat (1995)", 1995, ["Action"], 4, 3.0)
    assert with_live_ratings(summary, 0, 0.0) is summary
    moved = with_live_ratings(summary, 2, 10.0)  # (4 * 3 + 10) / 6
    assert (moved.rating_count, moved.rating_mean) == (6, round(22 / 6, 4))
    unrated = with_live_ratings(ItemSummary(6, "New", None, [], 0, None), 1, 4.5)
    assert (unrated.rating_count, unrated.rating_mean) == (1, 4.5)
