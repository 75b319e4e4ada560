"""Catalogue: every item's summary of one bundle, searchable by title and grouped by genre (no I/O here)."""

from __future__ import annotations

import io
import re
import unicodedata
from functools import cached_property

import numpy as np

from wren.core.arrays import sorted_rows
from wren.core.bundle import ItemTable
from wren.core.errors import NotFound
from wren.core.types import ItemSummary

PRIOR_RATINGS = 10.0  # pseudo-ratings at the catalogue's mean rating in the Bayesian mean of the rating sort
_TITLE_YEAR = re.compile(r"\s*\(\d{4}[^)]*\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(.*), (the|a|an|le|la|les|l'|il|el|der|die|das)$")  # "Matrix, The"


def _name_forms(title: str) -> set[str]:
    """Folded forms of a title an exact query may take: without its year, and "matrix, the" also as
    "the matrix" and "matrix"."""
    name = fold(_TITLE_YEAR.sub("", title))
    found = _TRAILING_ARTICLE.match(name)
    if found is None:
        return {name}
    rest, article = found.groups()
    return {name, rest, f"{article}{'' if article.endswith(chr(39)) else ' '}{rest}"}


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).casefold().split())


class Catalogue:
    """Item summaries of one bundle version, row i belonging to ids[i] (ascending).

    Data contract: titles str ("" never occurs for a catalogue item), years int32 (0 = unknown), genres uint8
    [n, G] multi-hot over genre_names, rating_count int64 and rating_mean float64 (NaN when unrated) over
    every rating the bundle was built from.
    """

    def __init__(
        self,
        version: str,
        ids: np.ndarray,
        titles: list[str],
        years: np.ndarray,
        genres: np.ndarray,
        genre_names: list[str],
        rating_count: np.ndarray,
        rating_mean: np.ndarray,
    ) -> None:
        self.version = version
        self.ids = np.asarray(ids, np.int64)
        self.titles = list(titles)
        self.years = np.asarray(years, np.int32)
        self.genres = np.asarray(genres, np.uint8)
        self.genre_names = list(genre_names)
        self.rating_count = np.asarray(rating_count, np.int64)
        self.rating_mean = np.asarray(rating_mean, np.float64)
        self._folded = [fold(title) for title in self.titles]
        self._names = [_name_forms(title) for title in self.titles]

    @classmethod
    def from_items(cls, version: str, items: ItemTable, genre_names: list[str]) -> Catalogue:
        n = len(items.ids)
        count = items.rating_count if items.rating_count is not None else np.zeros(n, np.int64)
        mean = items.rating_mean if items.rating_mean is not None else np.full(n, np.nan)
        return cls(version, items.ids, items.titles, items.years, items.genres, genre_names, count, mean)

    def to_bytes(self) -> bytes:
        """npz bytes (no pickle): the arrays plus the titles as one UTF-8 blob with their byte lengths."""
        encoded = [title.encode() for title in self.titles]
        buffer = io.BytesIO()
        np.savez(
            buffer,
            ids=self.ids,
            years=self.years,
            genres=self.genres,
            rating_count=self.rating_count,
            rating_mean=self.rating_mean,
            title_lengths=np.array([len(t) for t in encoded], np.int64),
            titles=np.frombuffer(b"".join(encoded), np.uint8),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, version: str, data: bytes, genre_names: list[str]) -> Catalogue:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            parts = {key: arrays[key] for key in arrays.files}
        blob = parts["titles"].tobytes()
        ends = np.cumsum(parts["title_lengths"])
        titles = [blob[end - length : end].decode() for end, length in zip(ends, parts["title_lengths"], strict=True)]
        return cls(
            version,
            parts["ids"],
            titles,
            parts["years"],
            parts["genres"],
            genre_names,
            parts["rating_count"],
            parts["rating_mean"],
        )

    def rows(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, found) per id; row 0 where not found."""
        rows = sorted_rows(self.ids, item_ids)
        found = rows >= 0
        return np.where(found, rows, 0), found

    def summaries(self, item_ids: list[int] | np.ndarray) -> list[ItemSummary]:
        """One summary per id in order; an id not in the catalogue gets an empty title, no genres, no ratings."""
        rows, found = self.rows(np.asarray(item_ids, np.int64))
        return [
            self._summary(int(row)) if hit else ItemSummary(int(i), "", None, [], 0, None)
            for i, row, hit in zip(np.asarray(item_ids).tolist(), rows, found, strict=True)
        ]

    def summary(self, item_id: int) -> ItemSummary:
        """NotFound for an id the catalogue does not hold."""
        rows, found = self.rows(np.array([item_id], np.int64))
        if not found[0]:
            raise NotFound(f"unknown item {item_id}")
        return self._summary(int(rows[0]))

    def _summary(self, row: int) -> ItemSummary:
        mean = float(self.rating_mean[row])
        year = int(self.years[row])
        names = [self.genre_names[g] for g in np.flatnonzero(self.genres[row])]
        return ItemSummary(
            int(self.ids[row]),
            self.titles[row],
            year or None,
            names,
            int(self.rating_count[row]),
            None if np.isnan(mean) else round(mean, 4),
        )

    def search(self, query: str, k: int) -> list[ItemSummary]:
        """Items whose folded title holds every word of the folded query, or is the query, best first: the whole
        title (year aside, a trailing article such as "Matrix, The" read either way) equal to the query, then
        titles starting with it, then titles with a word starting with it, then any other match; ties by rating
        count (more first), then item id."""
        wanted = fold(query)
        words = wanted.split()
        if not words:
            return []
        word_start = re.compile(r"(?:^|\W)" + re.escape(wanted))
        ranked = []
        for row, title in enumerate(self._folded):
            exact = wanted in self._names[row]
            if not exact and not all(word in title for word in words):
                continue
            tier = 0 if exact else 1 if title.startswith(wanted) else 2 if word_start.search(title) else 3
            ranked.append((tier, -int(self.rating_count[row]), int(self.ids[row]), row))
        ranked.sort()
        return [self._summary(row) for *_, row in ranked[:k]]

    def genre_counts(self) -> list[tuple[str, int]]:
        """(genre, items of that genre) for every genre of the vocabulary, sorted by name."""
        counts = self.genres.sum(axis=0, dtype=np.int64) if len(self.ids) else np.zeros(len(self.genre_names))
        return sorted((name, int(count)) for name, count in zip(self.genre_names, counts, strict=True))

    def genre(self, name: str) -> str:
        """The vocabulary's spelling of `name` (matched case- and accent-insensitively); NotFound otherwise."""
        wanted = fold(name)
        for known in self.genre_names:
            if fold(known) == wanted:
                return known
        raise NotFound(f"unknown genre {name!r}; known genres: {', '.join(sorted(self.genre_names))}")

    @cached_property
    def _bayesian_mean(self) -> np.ndarray:
        rated = self.rating_count > 0
        total = np.where(rated, self.rating_mean, 0.0) * self.rating_count
        overall = total.sum() / max(int(self.rating_count.sum()), 1)
        return (total + PRIOR_RATINGS * overall) / (self.rating_count + PRIOR_RATINGS)

    def genre_items(self, genre: str, sort: str, k: int) -> list[ItemSummary]:
        """A genre's top k items. popularity: most rated first. rating: rated items only, by the Bayesian mean
        (sum of ratings + PRIOR_RATINGS pseudo-ratings at the catalogue's mean rating) / (count + PRIOR_RATINGS),
        so an item with one 5-star rating does not top the row. Ties by rating count, then item id."""
        column = self.genre_names.index(genre)
        rows = np.flatnonzero(self.genres[:, column])
        count = self.rating_count[rows]
        if sort == "rating":
            rows, count = rows[count > 0], count[count > 0]
            order = np.lexsort((self.ids[rows], -count, -self._bayesian_mean[rows]))
        else:
            order = np.lexsort((self.ids[rows], -count))
        return [self._summary(int(row)) for row in rows[order[:k]]]
