"""Synthetic MovieLens-layout data at any size, with the skews real rating logs have, for scale benchmarks."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
# how often each genre is listed on a MovieLens title, roughly (Drama and Comedy lead, IMAX and Film-Noir trail)
GENRE_WEIGHTS = np.array([12, 8, 4, 4, 17, 7, 3, 23, 4, 1, 6, 1, 2, 4, 8, 5, 10, 2, 1], dtype=np.float64)
TAG_WORDS = (
    "classic",
    "funny",
    "dark",
    "twist ending",
    "visually stunning",
    "slow",
    "quotable",
    "overrated",
    "atmospheric",
    "based on a book",
)
FIRST_TIMESTAMP = 820_454_400  # 1996-01-01, the start of MovieLens' log
LAST_TIMESTAMP = 1_577_836_800  # 2020-01-01
CHUNK_ROWS = 2_000_000


@dataclass(frozen=True)
class SyntheticSpec:
    """Target sizes and skews. Item popularity is log-normal with sigma `popularity_sigma` (1.6: the top 1 % of
    titles take 14-19 % of the ratings and many titles have only a few; ml-latest-small: 16 %). User activity
    is log-normal with sigma `activity_sigma` and at least `min_per_user` ratings, as in MovieLens. Each
    user's taste is a Dirichlet draw over genres with concentration `taste_concentration` (small = narrow)."""

    ratings: int
    users: int
    items: int
    seed: int = 0
    popularity_sigma: float = 1.6
    activity_sigma: float = 1.1
    min_per_user: int = 20
    taste_concentration: float = 0.3
    tag_share: float = 0.01

    @classmethod
    def for_ratings(
        cls, ratings: int, seed: int = 0, users: int | None = None, items: int | None = None
    ) -> SyntheticSpec:
        """Sizes in MovieLens' proportions: ~155 ratings per user, and a catalogue that grows with the log
        as ratings^0.34 (ml-latest-small: 100k ratings over 9.7k titles; ml-25m: 25M over 62k)."""
        users = users or max(10, round(ratings / 155))
        items = items or max(50, round(9_700 * (ratings / 100_000) ** 0.336))
        return cls(ratings=ratings, users=users, items=items, seed=seed)

    def check(self) -> None:
        if self.users < 1 or self.items < 2:
            raise ValueError(f"need at least 1 user and 2 items, got {self.users} users and {self.items} items")
        if self.ratings < self.users * self.min_per_user:
            raise ValueError(f"{self.ratings} ratings cannot give {self.users} users {self.min_per_user} each")
        if self.ratings > 0.5 * self.users * self.items:
            raise ValueError(f"{self.ratings} ratings over {self.users} x {self.items} is too dense (> 50 %)")


def write_synthetic(directory: Path, spec: SyntheticSpec, progress: bool = True) -> dict[str, int]:
    """Writes ratings.csv, movies.csv, tags.csv and links.csv (the ml-latest layout) under `directory` and
    returns the row counts. Deterministic for a spec. Memory is about 60 bytes per rating."""
    spec.check()
    rng = np.random.default_rng(spec.seed)
    directory.mkdir(parents=True, exist_ok=True)
    item_genres = _item_genres(spec.items, rng)
    years = rng.integers(1920, 2020, spec.items)
    popularity = rng.lognormal(0.0, spec.popularity_sigma, spec.items)
    quality = rng.normal(0.0, 0.45, spec.items)
    users, items = _draw_pairs(spec, item_genres, popularity, rng, progress)
    taste_bias = rng.normal(0.0, 0.4, spec.users)
    noise = rng.normal(0.0, 0.85, len(users))
    score = 3.5 + taste_bias[users] + quality[items] + noise
    rating = np.clip(np.round(score * 2.0) / 2.0, 0.5, 5.0).astype(np.float32)
    timestamps = _timestamps(users, years[items], spec.users, rng)
    ratings = pd.DataFrame({"userId": users + 1, "movieId": items + 1, "rating": rating, "timestamp": timestamps})
    _write_csv(ratings, directory / "ratings.csv", progress, "writing ratings.csv")
    movies = pd.DataFrame(
        {
            "movieId": np.arange(1, spec.items + 1),
            "title": [f"Synthetic Movie {item + 1} ({year})" for item, year in enumerate(years)],
            "genres": ["|".join(GENRES[g] for g in genres) for genres in item_genres],
        }
    )
    movies.to_csv(directory / "movies.csv", index=False)
    tags = _tags(ratings, spec.tag_share, rng)
    tags.to_csv(directory / "tags.csv", index=False)
    links = pd.DataFrame(
        {
            "movieId": movies["movieId"],
            "imdbId": [f"{9_000_000 + item:07d}" for item in range(spec.items)],
            "tmdbId": 500_000 + np.arange(spec.items),
        }
    )
    links.to_csv(directory / "links.csv", index=False)
    return {"ratings": len(ratings), "users": int(ratings["userId"].nunique()), "items": spec.items, "tags": len(tags)}


def _item_genres(items: int, rng: np.random.Generator) -> list[np.ndarray]:
    counts = rng.choice([1, 2, 3], size=items, p=[0.45, 0.35, 0.20])
    weights = GENRE_WEIGHTS / GENRE_WEIGHTS.sum()
    return [np.sort(rng.choice(len(GENRES), size=count, replace=False, p=weights)) for count in counts]


def _activity(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Ratings per user: log-normal, at least min_per_user, at most a third of the catalogue, summing to
    about spec.ratings (what the cap cuts off the heaviest users goes to the others)."""
    raw = rng.lognormal(0.0, spec.activity_sigma, spec.users)
    cap = max(spec.min_per_user, spec.items // 3)
    counts = np.full(spec.users, spec.min_per_user, np.float64)
    for _ in range(20):
        open_ = counts < cap
        extra = spec.ratings - counts.sum()
        if extra < 1 or not open_.any():
            break
        counts[open_] += raw[open_] / raw[open_].sum() * extra
        counts = np.minimum(counts, cap)
    return np.floor(counts).astype(np.int64)


def _draw_pairs(
    spec: SyntheticSpec, item_genres: list[np.ndarray], popularity: np.ndarray, rng: np.random.Generator, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) rows, distinct, each user's count from `_activity`. A row first draws a genre from the
    user's taste, then an item of that genre by popularity: O(ratings x log items), no users x items work."""
    genre_items = [np.flatnonzero([g in genres for genres in item_genres]) for g in range(len(GENRES))]
    cumulative = [np.cumsum(popularity[members]) for members in genre_items]
    present = np.array([len(members) > 0 for members in genre_items])
    prior = GENRE_WEIGHTS * present
    taste = rng.dirichlet(spec.taste_concentration * prior[present] / prior[present].mean(), spec.users)
    taste_full = np.zeros((spec.users, len(GENRES)))
    taste_full[:, present] = taste
    taste_cdf = np.cumsum(taste_full, axis=1)
    wanted = _activity(spec, rng)
    users, items = np.empty(0, np.int64), np.empty(0, np.int64)
    todo, missing = np.arange(spec.users), wanted.copy()
    bar = tqdm(
        total=int(wanted.sum()), desc="drawing ratings", unit="row", disable=not progress, file=sys.stderr, leave=False
    )
    everything = np.cumsum(popularity)
    for attempt in range(12):  # each pass tops up the users that lost rows to duplicates
        if len(todo) == 0:
            break
        rows = np.repeat(todo, np.ceil(missing[todo] * 1.15).astype(np.int64) + 1)
        if attempt < 8:
            item = _by_genre(_sample_rows(taste_cdf, rows, rng), genre_items, cumulative, rng)
        else:  # a user whose genres are exhausted takes the rest from the whole catalogue
            item = _by_popularity(everything, len(rows), rng)
        users, items = _merge(np.concatenate([users, rows]), np.concatenate([items, item]), wanted, rng)
        have = np.bincount(users, minlength=spec.users)
        missing = wanted - have
        todo = np.flatnonzero(missing > 0)
        bar.n = int(have.sum())
        bar.refresh()
    bar.close()
    return users, items


def _by_genre(
    genre: np.ndarray, genre_items: list[np.ndarray], cumulative: list[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """For each row, an item of its genre drawn by popularity."""
    item = np.empty(len(genre), np.int64)
    for g in np.unique(genre):
        chosen = genre == g
        item[chosen] = genre_items[g][_by_popularity(cumulative[g], int(chosen.sum()), rng)]
    return item


def _by_popularity(cumulative: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n positions drawn with probability proportional to the weights whose running sum is `cumulative`."""
    return np.minimum(np.searchsorted(cumulative, rng.random(n) * cumulative[-1]), len(cumulative) - 1)


def _merge(
    users: np.ndarray, items: np.ndarray, wanted: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The rows drawn so far, distinct, at most wanted[u] for user u."""
    return _cap_per_user(*_distinct(users, items), wanted, rng)


def _sample_rows(cdf: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row from the row's user's cumulative distribution, in chunks."""
    out = np.empty(len(rows), np.int64)
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start : start + CHUNK_ROWS]
        draw = rng.random(len(part))[:, None] * cdf[part, -1:]
        out[start : start + CHUNK_ROWS] = np.minimum((cdf[part] < draw).sum(axis=1), cdf.shape[1] - 1)
    return out


def _distinct(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    key = users * (int(items.max()) + 1) + items
    _, first = np.unique(key, return_index=True)
    first.sort()
    return users[first], items[first]


def _cap_per_user(
    users: np.ndarray, items: np.ndarray, wanted: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Keeps at most wanted[u] rows per user, a random subset (rows are grouped by user after the shuffle)."""
    order = np.lexsort((rng.random(len(users)), users))
    users, items = users[order], items[order]
    starts = np.searchsorted(users, users, side="left")
    keep = (np.arange(len(users)) - starts) < wanted[users]
    return users[keep], items[keep]


def _timestamps(users: np.ndarray, item_years: np.ndarray, n_users: int, rng: np.random.Generator) -> np.ndarray:
    """Each user rates within an active span (days to years) that starts somewhere in the log; a title is
    never rated before its release year, so newer titles gather ratings later."""
    span = LAST_TIMESTAMP - FIRST_TIMESTAMP
    start = FIRST_TIMESTAMP + (rng.random(n_users) ** 0.7 * span * 0.9).astype(np.int64)
    length = np.minimum(rng.lognormal(math.log(60 * 86_400), 2.0, n_users), LAST_TIMESTAMP - start).astype(np.int64)
    stamp = start[users] + (rng.random(len(users)) * length[users]).astype(np.int64)
    release = ((item_years.astype(np.int64) - 1970) * 31_556_952).clip(FIRST_TIMESTAMP, LAST_TIMESTAMP - 86_400)
    return np.maximum(stamp, release + rng.integers(0, 86_400 * 30, len(users)))


def _tags(ratings: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    chosen = rng.random(len(ratings)) < share
    picked = ratings[chosen]
    words = np.array(TAG_WORDS)[(picked["movieId"].to_numpy() + rng.integers(0, 3, len(picked))) % len(TAG_WORDS)]
    return pd.DataFrame(
        {
            "userId": picked["userId"].to_numpy(),
            "movieId": picked["movieId"].to_numpy(),
            "tag": words,
            "timestamp": picked["timestamp"].to_numpy() + 60,
        }
    )


def _write_csv(frame: pd.DataFrame, path: Path, progress: bool, description: str) -> None:
    with open(path, "w", newline="") as out:
        out.write(",".join(frame.columns) + "\n")
        for start in tqdm(
            range(0, len(frame), CHUNK_ROWS),
            desc=description,
            disable=not progress,
            file=sys.stderr,
            leave=False,
            unit="chunk",
        ):
            frame.iloc[start : start + CHUNK_ROWS].to_csv(out, header=False, index=False)
