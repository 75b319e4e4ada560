"""Writes small synthetic MovieLens-format datasets with learnable structure for fast tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi")
ACCENTED = {7: "Amélie Poulain", 12: "Le Mépris"}  # items whose title starts with an accented name (search tests)
TAGS = ("funny", "dark", "classic", "twist ending", "space", "love story", "gore", "heist")


def write_movielens(
    directory: Path, users: int = 80, items: int = 150, seed: int = 0, per_user: tuple[int, int] = (25, 60)
) -> Path:
    """ml-latest-small layout (ratings.csv, movies.csv, tags.csv, links.csv) where users prefer some genres and items
    have a quality and a Zipf-like popularity, so ratings, recall and ranking all carry signal."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    item_genres = [rng.choice(len(GENRES), size=rng.integers(1, 4), replace=False) for _ in range(items)]
    quality = rng.normal(0, 0.6, items)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    popularity = popularity[rng.permutation(items)]
    taste = rng.normal(0, 1.0, (users, len(GENRES)))

    with open(directory / "movies.csv", "w") as movies:
        movies.write("movieId,title,genres\n")
        for item in range(items):
            genres = "|".join(GENRES[g] for g in sorted(item_genres[item]))
            year = 1960 + (item * 7) % 60
            name = f"{ACCENTED[item + 1]}, Movie {item + 1}" if item + 1 in ACCENTED else f"Movie {item + 1}"
            movies.write(f'{item + 1},"{name}, the sequel ({year})",{genres}\n')
    with open(directory / "links.csv", "w") as links:
        links.write("movieId,imdbId,tmdbId\n")
        for item in range(items):
            tmdb = "" if item % 10 == 9 else str(9000 + item)
            links.write(f"{item + 1},{1_000_000 + item:07d},{tmdb}\n")

    rows = []
    for user in range(users):
        count = int(rng.integers(*per_user))
        affinity = np.array([taste[user, item_genres[i]].mean() for i in range(items)])
        weights = popularity * np.exp(affinity)
        chosen = rng.choice(items, size=min(count, items), replace=False, p=weights / weights.sum())
        start = 1_000_000_000 + int(rng.integers(0, 10_000_000))
        for step, item in enumerate(chosen):
            score = 3.2 + 0.9 * affinity[item] + quality[item] + rng.normal(0, 0.5)
            rating = float(np.clip(np.round(score * 2) / 2, 0.5, 5.0))
            rows.append((user + 1, item + 1, rating, start + step * 3600 + int(rng.integers(0, 600))))
    with open(directory / "ratings.csv", "w") as ratings:
        ratings.write("userId,movieId,rating,timestamp\n")
        for row in rows:
            ratings.write(f"{row[0]},{row[1]},{row[2]},{row[3]}\n")

    with open(directory / "tags.csv", "w") as tags:
        tags.write("userId,movieId,tag,timestamp\n")
        for index in range(items // 2):
            item = int(rng.integers(0, items))
            tag = TAGS[(int(item_genres[item][0]) + int(rng.integers(0, 2))) % len(TAGS)]
            tags.write(f"{int(rng.integers(1, users + 1))},{item + 1},{tag},{1_000_000_000 + index}\n")
    return directory


TINY_CONFIG = """
seed = 7
[embedding]
dim = 16
epochs = 5
[ranking]
models = ["deepfm", "widedeep"]
epochs = 8
batch_size = 64
learning_rate = 0.003
parity_rows = 300
candidates = 100
random_negatives = 20
[recall]
candidates = 100
[cf]
factors = 8
iterations = 5
[cold_start]
min_interactions = 2
content_neighbours = 5
"""
