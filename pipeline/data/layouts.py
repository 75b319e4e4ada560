"""The MovieLens on-disk layouts (csv, dat, 100k): which one a directory holds, and each layout's reader."""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.errors import DataValidationError
from pipeline.data.parsing import Kind, Table, read_csv_table, read_delimited_table

LAYOUT_FILES: dict[str, tuple[str, ...]] = {
    "csv": ("ratings.csv", "movies.csv"),
    "dat": ("ratings.dat", "movies.dat"),
    "100k": ("u.data", "u.item"),
}
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

_RATINGS: dict[str, Kind] = {"user_id": "int", "item_id": "int", "rating": "float", "timestamp": "int"}
_MOVIES: dict[str, Kind] = {"item_id": "int", "title": "str", "genres": "str"}
TAGS: dict[str, Kind] = {"user_id": "int", "item_id": "int", "tag": "str", "timestamp": "int"}
LINKS: dict[str, Kind] = {"item_id": "int", "imdb_id": "str", "tmdb_id": "str"}
_USERS_DAT: dict[str, Kind] = {
    "user_id": "int",
    "gender": "str",
    "age": "int",
    "occupation": "str",
    "zip": "str",
}
_USERS_100K: dict[str, Kind] = {
    "user_id": "int",
    "age": "int",
    "gender": "str",
    "occupation": "str",
    "zip": "str",
}
_GENRES_100K: dict[str, Kind] = {"genre": "str", "index": "int"}
_ITEM_100K: dict[str, Kind] = {
    "item_id": "int",
    "title": "str",
    "release_date": "str",
    "video_release_date": "str",
    "imdb_url": "str",
}
_NO_GENRE = frozenset({"", "(no genres listed)", "unknown"})
_GENRE_ALIASES = {"Children's": "Children"}
_TITLE_YEAR = r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\s*\)$"
_DATE_YEAR = r"(\d{4})\s*$"


def detect_layout(directory: Path) -> str:
    """The MovieLens layout held in `directory`: "csv", "dat" or "100k"."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataValidationError(directory, None, f"not a directory: {directory}")
    found = [name for name, files in LAYOUT_FILES.items() if all((directory / f).is_file() for f in files)]
    if len(found) > 1:
        several = ", ".join(found)
        raise DataValidationError(directory, None, f"files of several layouts ({several}) in {directory}")
    if not found:
        expected = "; ".join(f"{' + '.join(files)} ({name})" for name, files in LAYOUT_FILES.items())
        message = f"no MovieLens layout in {directory}; looked for {expected}"
        raise DataValidationError(directory, None, message)
    return found[0]


@dataclass
class Parts:
    """The tables a layout reader produced, before cross-file validation and cleaning."""

    ratings: Table
    items: Table
    tags: Table | None = None
    users: Table | None = None
    links: Table | None = None


@dataclass
class Reader:
    """Reads input files, remembering which were read and optionally reporting each on stderr."""

    progress: bool
    files: list[Path] = field(default_factory=list)

    def csv(self, path: Path, kinds: dict[str, Kind]) -> Table:
        return self._done(read_csv_table(path, kinds))

    def delimited(self, path: Path, separator: str, kinds: dict[str, Kind]) -> Table:
        return self._done(read_delimited_table(path, separator, kinds))

    def optional(self, path: Path, separator: str, kinds: dict[str, Kind]) -> Table | None:
        if not path.is_file():
            return None
        return self.csv(path, kinds) if separator == "," else self.delimited(path, separator, kinds)

    def _done(self, table: Table) -> Table:
        self.files.append(table.path)
        if self.progress:
            print(f"reading {table.path.name} …  {len(table.frame):,} rows", file=sys.stderr)
        return table


def _read_csv_layout(directory: Path, reader: Reader) -> Parts:
    return Parts(
        ratings=reader.csv(directory / "ratings.csv", _RATINGS),
        items=_items_from_titles(reader.csv(directory / "movies.csv", _MOVIES)),
        tags=reader.optional(directory / "tags.csv", ",", TAGS),
        links=reader.optional(directory / "links.csv", ",", LINKS),
    )


def _read_dat_layout(directory: Path, reader: Reader) -> Parts:
    return Parts(
        ratings=reader.delimited(directory / "ratings.dat", "::", _RATINGS),
        items=_items_from_titles(reader.delimited(directory / "movies.dat", "::", _MOVIES)),
        tags=reader.optional(directory / "tags.dat", "::", TAGS),
        users=reader.optional(directory / "users.dat", "::", _USERS_DAT),
    )


def _read_100k_layout(directory: Path, reader: Reader) -> Parts:
    ratings = reader.delimited(directory / "u.data", "\t", _RATINGS)
    genres = _read_100k_genres(directory / "u.genre", reader)
    flags: dict[str, Kind] = {f"genre_flag_{i}": "int" for i in range(len(genres))}
    items = reader.delimited(directory / "u.item", "|", {**_ITEM_100K, **flags})
    return Parts(
        ratings=ratings,
        items=_items_from_flags(items, list(flags), genres),
        users=reader.optional(directory / "u.user", "|", _USERS_100K),
    )


LAYOUT_READERS: dict[str, Callable[[Path, Reader], Parts]] = {
    "csv": _read_csv_layout,
    "dat": _read_dat_layout,
    "100k": _read_100k_layout,
}


def _read_100k_genres(path: Path, reader: Reader) -> list[str]:
    """Genre names in flag order, from u.genre when present."""
    table = reader.optional(path, "|", _GENRES_100K)
    if table is None:
        return list(ML100K_GENRES)
    table.require_rows("genres")
    index = table.frame["index"].to_numpy()
    out_of_order = index != np.arange(index.size)
    table.reject_first(out_of_order, lambda row: f"genre index {row['index']}, expected {row.name}")
    return table.frame["genre"].str.strip().tolist()


def _items_from_titles(table: Table) -> Table:
    """Items of the csv/dat layouts: genres split on '|', year taken from the title."""
    titles = table.frame["title"].str.strip()
    items = pd.DataFrame(
        {
            "item_id": table.frame["item_id"],
            "title": titles,
            "genres": _genres_from_text(table.frame["genres"]),
            "year": _years(titles, _TITLE_YEAR),
        }
    )
    return dataclasses.replace(table, frame=items)


def _items_from_flags(table: Table, flag_columns: list[str], genres: list[str]) -> Table:
    """Items of the 100k layout: genres from 0/1 flags, year from the title or else the release date."""
    flags = table.frame[flag_columns].to_numpy()
    not_flags = np.asarray(~np.isin(flags, (0, 1)).all(axis=1))
    table.reject_first(not_flags, lambda row: "genre flags must be 0 or 1")
    titles = table.frame["title"].str.strip()
    title_year = _years(titles, _TITLE_YEAR)
    items = pd.DataFrame(
        {
            "item_id": table.frame["item_id"],
            "title": titles,
            "genres": _genres_from_flags(flags, genres, table.frame.index),
            "year": title_year.where(title_year > 0, _years(table.frame["release_date"], _DATE_YEAR)),
        }
    )
    return dataclasses.replace(table, frame=items)


def _genre_tuple(names: Iterable[str]) -> tuple[str, ...]:
    """Genre names with the shared vocabulary: 'Children's' -> 'Children', placeholders dropped."""
    stripped = (name.strip() for name in names)
    return tuple(_GENRE_ALIASES.get(name, name) for name in stripped if name not in _NO_GENRE)


def _genres_from_text(genres: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(genres)
    parsed = np.fromiter((_genre_tuple(text.split("|")) for text in uniques), object, count=len(uniques))
    return pd.Series(parsed[codes], index=genres.index, dtype=object)


def _genres_from_flags(flags: np.ndarray, names: list[str], index: pd.Index) -> pd.Series:
    if flags.shape[0] == 0:
        return pd.Series([], index=index, dtype=object)
    combos, inverse = np.unique(flags, axis=0, return_inverse=True)
    parsed = np.fromiter(
        (_genre_tuple(itertools.compress(names, combo)) for combo in combos), dtype=object, count=len(combos)
    )
    return pd.Series(parsed[inverse.reshape(-1)], index=index, dtype=object)


def _years(text: pd.Series, pattern: str) -> pd.Series:
    found = text.str.extract(pattern, expand=False)
    return pd.to_numeric(found, errors="coerce").fillna(0).astype("int32")
