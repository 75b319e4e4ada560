"""Cleaning a parsed dataset: whole-file validation, dropping unusable rows (counted), sort and dedup."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from pipeline.data.layouts import Parts
from pipeline.data.parsing import Mask, Table
from wren.core.schema import RATING_RANGE

UNKNOWN_ITEM_RATINGS = "ratings: unknown item"
DUPLICATE_RATINGS = "ratings: duplicate (user, item)"
UNKNOWN_ITEM_TAGS = "tags: unknown item"
EMPTY_TAGS = "tags: empty tag"
UNKNOWN_ITEM_LINKS = "links: unknown item"
DUPLICATE_LINKS = "links: duplicate item"

_USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip"]


def validate(parts: Parts) -> None:
    """Whole-file checks: ratings present and in range, item (and user) ids unique."""
    parts.ratings.require_rows("ratings")
    _check_rating_range(parts.ratings)
    parts.items.require_rows("items")
    _check_unique(parts.items, "item_id")
    if parts.users is not None:
        _check_unique(parts.users, "user_id")


def _check_rating_range(table: Table) -> None:
    low, high = RATING_RANGE

    def describe(row: pd.Series) -> str:
        value = float(row["rating"])
        if np.isnan(value):
            return f"rating is NaN, expected {low}..{high}"
        return f"rating {value} out of range {low}..{high}"

    table.reject_first(~table.frame["rating"].between(low, high), describe)


def _check_unique(table: Table, column: str) -> None:
    values = table.frame[column]

    def describe(row: pd.Series) -> str:
        first = values.index[(values == row[column]).to_numpy().argmax()]
        return f"duplicate {column.replace('_', ' ')} {row[column]} (first on line {table.lines(first)})"

    table.reject_first(values.duplicated(), describe)


def _drop(frame: pd.DataFrame, mask: Mask, reason: str, dropped: Counter[str]) -> pd.DataFrame:
    """Frame without the masked rows, whose number is added to `dropped[reason]`."""
    count = int(np.count_nonzero(mask))
    if not count:
        return frame
    dropped[reason] += count
    return frame[~np.asarray(mask, dtype=bool)]


def clean_ratings(frame: pd.DataFrame, known_items: pd.Series, dropped: Counter[str]) -> pd.DataFrame:
    """Known items only, one rating per (user, item), sorted by (user, time, item) with a fresh index."""
    frame = _drop(frame, ~frame["item_id"].isin(known_items), UNKNOWN_ITEM_RATINGS, dropped)
    frame = _drop(frame, _superseded_ratings(frame), DUPLICATE_RATINGS, dropped)
    order = _sort_order([frame[column].to_numpy() for column in ("user_id", "timestamp", "item_id")])
    return frame.take(order).astype({"rating": "float32"}).reset_index(drop=True)


def _superseded_ratings(frame: pd.DataFrame) -> np.ndarray:
    """Rows a later rating of the same (user, item) replaces: latest timestamp wins, then file order."""
    pair = ["user_id", "item_id"]
    involved = _repeated(frame, pair)
    if not involved.any():
        return involved
    candidates = frame[involved].sort_values("timestamp", kind="stable")
    return frame.index.isin(candidates.index[candidates.duplicated(pair, keep="last")])


def _repeated(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Which rows share their `columns` values with another row (sort-based: quicker than hashing; on 25M
    synthetic ratings 18 s against 65 s for `frame.duplicated(columns, keep=False)`, 2 busy cores)."""
    key = _packed_key([frame[column].to_numpy() for column in columns])
    if key is None:
        return frame.duplicated(columns, keep=False).to_numpy()
    ordered = np.sort(key)
    repeats = ordered[1:][ordered[1:] == ordered[:-1]]
    if not repeats.size:
        return np.zeros(key.size, dtype=bool)
    return pd.Series(key).isin(repeats).to_numpy()


def _offset_bits(values: np.ndarray) -> int:
    """Bits needed for `values - values.min()`."""
    return (int(values.max()) - int(values.min())).bit_length() if values.size else 0


def _packed_key(columns: list[np.ndarray]) -> np.ndarray | None:
    """One int64 per row ordering like the tuple of `columns`, or None when they need more than 63 bits."""
    return _pack(columns) if sum(_offset_bits(values) for values in columns) <= 63 else None


def _pack(columns: list[np.ndarray]) -> np.ndarray:
    """`_packed_key` for columns known to fit in 63 bits."""
    key = np.zeros(columns[0].size, dtype=np.int64)
    for values in columns:
        key = (key << _offset_bits(values)) | (values - values.min() if values.size else values)
    return key


def _sort_order(keys: list[np.ndarray]) -> np.ndarray:
    """Positions sorting the rows by keys[0], then keys[1], ... (ties in all keys in any order).

    Packs as many keys as fit into one int64 and argsorts that, re-ranking the sorted prefix whenever
    the next key no longer fits: much faster than a multi-key lexsort on tens of millions of rows (25M synthetic
    ratings, 2 busy cores: 112 s, plus 26 s for the `take`, against 148 s for `sort_values(kind="stable")`).
    """
    order = np.arange(keys[0].size)
    prefix = np.zeros(keys[0].size, dtype=np.int64)
    for values in keys:
        if _offset_bits(prefix) + _offset_bits(values) > 63:
            order, prefix = _rank_sorted(order, prefix)
            if _offset_bits(prefix) + _offset_bits(values) > 63:
                return np.lexsort(keys[::-1])
        prefix = _pack([prefix, values[order]])
    return _rank_sorted(order, prefix)[0]


def _rank_sorted(order: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`order` re-sorted by `key`, and each row's dense rank of `key` in that new order."""
    positions = np.argsort(key)
    ordered = key[positions]
    ranks = np.zeros(key.size, dtype=np.int64)
    ranks[1:] = np.cumsum(ordered[1:] != ordered[:-1])
    return order[positions], ranks


def clean_tags(frame: pd.DataFrame, known_items: pd.Series, dropped: Counter[str]) -> pd.DataFrame:
    """Tags of known items, stripped and lower-cased, empty ones removed."""
    frame = _drop(frame, ~frame["item_id"].isin(known_items), UNKNOWN_ITEM_TAGS, dropped)
    frame = frame.assign(tag=frame["tag"].str.strip().str.lower())
    frame = _drop(frame, (frame["tag"] == "").to_numpy(), EMPTY_TAGS, dropped)
    return frame.reset_index(drop=True)


def clean_links(frame: pd.DataFrame, known_items: pd.Series, dropped: Counter[str]) -> pd.DataFrame:
    """Links of known items, one row per item (the first), ids stripped ("" when the file has none)."""
    frame = _drop(frame, ~frame["item_id"].isin(known_items), UNKNOWN_ITEM_LINKS, dropped)
    frame = _drop(frame, frame["item_id"].duplicated().to_numpy(), DUPLICATE_LINKS, dropped)
    return frame.assign(imdb_id=frame["imdb_id"].str.strip(), tmdb_id=frame["tmdb_id"].str.strip()).reset_index(
        drop=True
    )


def users(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[_USER_COLUMNS].astype({"age": "int32"}).reset_index(drop=True)
