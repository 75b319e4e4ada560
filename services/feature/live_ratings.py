"""Ratings an item received after its bundle's data: the nearline tier's per-minute sums, read by the feature tier."""

from __future__ import annotations

from collections.abc import Mapping

BUCKET_SECONDS = 60  # a bucket counts only when it starts after the cutoff: at most its first minute is missed


def ratings_after(buckets: Mapping[bytes | str, bytes | str], data_cutoff: int) -> tuple[int, float]:
    """(count, sum) over the buckets `{minute}:n` / `{minute}:s` that start after `data_cutoff` (seconds).

    The nearline tier adds every rating event to the bucket of its minute (services.nearline.apply); the bundle
    already holds ratings up to its data cutoff, so earlier buckets would count those twice after a retrain.
    """
    count, total = 0, 0.0
    for raw_field, raw_value in buckets.items():
        field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
        minute, _, kind = field.partition(":")
        if not minute.isdigit() or int(minute) * BUCKET_SECONDS <= data_cutoff:
            continue
        value = raw_value.decode() if isinstance(raw_value, bytes) else raw_value
        if kind == "n":
            count += int(value)
        elif kind == "s":
            total += float(value)
    return count, total
