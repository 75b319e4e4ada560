"""The in-memory dataset every loader produces, whatever the on-disk MovieLens layout."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Dataset:
    """A validated MovieLens-format dataset.

    Data contract (column: dtype):
      ratings: user_id int64, item_id int64, rating float32 (0.5..5), timestamp int64 (epoch seconds);
               one row per (user_id, item_id), every item_id present in `items`.
      items:   item_id int64 (unique), title str, genres object (tuple[str, ...], empty when none listed),
               year int32 (release year parsed from the title; 0 when unknown).
      tags:    user_id int64, item_id int64, tag str (stripped, lower-cased), timestamp int64;
               empty frame with these columns when the layout has no tags.
      links:   item_id int64 (unique, every one in `items`), imdb_id str, tmdb_id str (digits as in the file,
               "" when missing); empty frame with these columns when the layout has no links.
      users:   user_id int64, age int32, gender str, occupation str, zip str; None when the layout
               carries no demographics (only ml-100k and ml-1m do).
    `dropped` counts rows removed during loading by reason (e.g. "ratings: unknown item"), so nothing
    disappears silently; `files` are the input files, hashed into the bundle's data fingerprint.
    """

    layout: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    tags: pd.DataFrame
    users: pd.DataFrame | None = None
    links: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"item_id": pd.Series(dtype="int64"), "imdb_id": pd.Series(dtype="str"), "tmdb_id": pd.Series(dtype="str")}
        )
    )
    files: list[Path] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
