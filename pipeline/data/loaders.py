"""Read a MovieLens directory in any of its on-disk layouts (csv, dat, 100k) into a validated `Dataset`."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import logging
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeAlias, TypeVar

import numpy as np
import pandas as pd

from pipeline.data.dataset import Dataset
from pipeline.data.errors import DataValidationError
from wren.core.schema import RATING_RANGE

logger = logging.getLogger(__name__)

Kind = Literal["int", "float", "str"]
T = TypeVar("T")
_Source: TypeAlias = Callable[[], Path | io.BytesIO]
_Mask: TypeAlias = pd.Series | np.ndarray

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

UNKNOWN_ITEM_RATINGS = "ratings: unknown item"
DUPLICATE_RATINGS = "ratings: duplicate (user, item)"
UNKNOWN_ITEM_TAGS = "tags: unknown item"
EMPTY_TAGS = "tags: empty tag"
UNKNOWN_ITEM_LINKS = "links: unknown item"
DUPLICATE_LINKS = "links: duplicate item"

_RATINGS: dict[str, Kind] = {"user_id": "int", "item_id": "int", "rating": "float", "timestamp": "int"}
_MOVIES: dict[str, Kind] = {"item_id": "int", "title": "str", "genres": "str"}
_TAGS: dict[str, Kind] = {"user_id": "int", "item_id": "int", "tag": "str", "timestamp": "int"}
_LINKS: dict[str, Kind] = {"item_id": "int", "imdb_id": "str", "tmdb_id": "str"}
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
_USER_COLUMNS = ["user_id", "age", "gender", "occupation", "zip"]
_CSV_HEADER = {"user_id": "userId", "item_id": "movieId", "imdb_id": "imdbId", "tmdb_id": "tmdbId"}

_DTYPES: dict[Kind, str] = {"int": "int64", "float": "float64", "str": "str"}
_ENCODINGS = ("utf-8-sig", "latin-1")
_UNIT_SEPARATOR = "\x1f"
_TEXT_CHUNK_ROWS = 500_000
_BLANK_BYTES = b" \t\r"
_INT64_LIMIT = 2.0**63
_NO_GENRE = frozenset({"", "(no genres listed)", "unknown"})
_GENRE_ALIASES = {"Children's": "Children"}
_TITLE_YEAR = r"\((\d{4})(?:\s*[-–]\s*\d{0,4})?\s*\)$"
_DATE_YEAR = r"(\d{4})\s*$"
_TOKENIZER_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_NOT_A_VALUE_PROBLEM = (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError)


def load_dataset(directory: Path, progress: bool = False) -> Dataset:
    """Detect the layout of `directory`, read and validate its files, and return the `Dataset`.

    Raises DataValidationError (naming the file and line) for anything wrong in the files; rows that
    are merely unusable (unknown items, duplicate ratings, empty tags) are dropped, counted in
    `Dataset.dropped` and logged. With `progress`, prints one line per file read to stderr.
    """
    directory = Path(directory)
    layout = detect_layout(directory)
    reader = _Reader(progress)
    parts = _LAYOUT_READERS[layout](directory, reader)
    return _assemble(layout, parts, sorted(reader.files))


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


class _LineMap:
    """Maps a data-row number to the 1-based line it came from, skipping blank lines as pandas does."""

    def __init__(self, path: Path, header: bool, lines: np.ndarray | None = None) -> None:
        self._path = path
        self._header = int(header)
        self._lines = lines

    def __call__(self, row: int) -> int | None:
        if self._lines is None:
            self._lines = _data_lines(self._path.read_bytes(), b",")
        position = int(row) + self._header
        return int(self._lines[position]) if position < self._lines.size else None


@dataclass
class _Table:
    """One parsed file; the frame's index holds each row's data-row number, which `lines` maps back."""

    path: Path
    frame: pd.DataFrame
    lines: _LineMap

    def reject_first(self, bad: _Mask, describe: Callable[[pd.Series], str]) -> None:
        """Raise at the first row flagged in `bad`, described by `describe(row)`."""
        flags = np.asarray(bad, dtype=bool)
        if flags.any():
            position = int(flags.argmax())
            row = self.frame.iloc[position]
            raise DataValidationError(self.path, self.lines(self.frame.index[position]), describe(row))


@dataclass
class _Parts:
    """The tables a layout reader produced, before cross-file validation and cleaning."""

    ratings: _Table
    items: _Table
    tags: _Table | None = None
    users: _Table | None = None
    links: _Table | None = None


@dataclass
class _Reader:
    """Reads input files, remembering which were read and optionally reporting each on stderr."""

    progress: bool
    files: list[Path] = field(default_factory=list)

    def csv(self, path: Path, kinds: dict[str, Kind]) -> _Table:
        return self._done(_read_csv_table(path, kinds))

    def delimited(self, path: Path, separator: str, kinds: dict[str, Kind]) -> _Table:
        return self._done(_read_delimited_table(path, separator, kinds))

    def optional(self, path: Path, separator: str, kinds: dict[str, Kind]) -> _Table | None:
        if not path.is_file():
            return None
        return self.csv(path, kinds) if separator == "," else self.delimited(path, separator, kinds)

    def _done(self, table: _Table) -> _Table:
        self.files.append(table.path)
        if self.progress:
            print(f"reading {table.path.name} …  {len(table.frame):,} rows", file=sys.stderr)
        return table


def _read_csv_layout(directory: Path, reader: _Reader) -> _Parts:
    return _Parts(
        ratings=reader.csv(directory / "ratings.csv", _RATINGS),
        items=_items_from_titles(reader.csv(directory / "movies.csv", _MOVIES)),
        tags=reader.optional(directory / "tags.csv", ",", _TAGS),
        links=reader.optional(directory / "links.csv", ",", _LINKS),
    )


def _read_dat_layout(directory: Path, reader: _Reader) -> _Parts:
    return _Parts(
        ratings=reader.delimited(directory / "ratings.dat", "::", _RATINGS),
        items=_items_from_titles(reader.delimited(directory / "movies.dat", "::", _MOVIES)),
        tags=reader.optional(directory / "tags.dat", "::", _TAGS),
        users=reader.optional(directory / "users.dat", "::", _USERS_DAT),
    )


def _read_100k_layout(directory: Path, reader: _Reader) -> _Parts:
    ratings = reader.delimited(directory / "u.data", "\t", _RATINGS)
    genres = _read_100k_genres(directory / "u.genre", reader)
    flags: dict[str, Kind] = {f"genre_flag_{i}": "int" for i in range(len(genres))}
    items = reader.delimited(directory / "u.item", "|", {**_ITEM_100K, **flags})
    return _Parts(
        ratings=ratings,
        items=_items_from_flags(items, list(flags), genres),
        users=reader.optional(directory / "u.user", "|", _USERS_100K),
    )


_LAYOUT_READERS: dict[str, Callable[[Path, _Reader], _Parts]] = {
    "csv": _read_csv_layout,
    "dat": _read_dat_layout,
    "100k": _read_100k_layout,
}


def _read_100k_genres(path: Path, reader: _Reader) -> list[str]:
    """Genre names in flag order, from u.genre when present."""
    table = reader.optional(path, "|", _GENRES_100K)
    if table is None:
        return list(ML100K_GENRES)
    _require_rows(table, "genres")
    index = table.frame["index"].to_numpy()
    out_of_order = index != np.arange(index.size)
    table.reject_first(out_of_order, lambda row: f"genre index {row['index']}, expected {row.name}")
    return table.frame["genre"].str.strip().tolist()


def _read_csv_table(path: Path, kinds: dict[str, Kind]) -> _Table:
    """A comma-separated file with a header naming (at least) the columns in `kinds`."""
    columns = {_CSV_HEADER.get(name, name): name for name in kinds}
    lines = _LineMap(path, header=True)
    header = _with_encodings(lambda encoding: _csv_header(path, encoding, lines))
    missing = [column for column in columns if column not in header]
    if missing:
        message = f"missing column(s) {', '.join(missing)}; header is {','.join(header)}"
        raise DataValidationError(path, 1, message)
    options = {"sep": ",", "index_col": False, "na_filter": False, "engine": "c"}
    file_kinds = {column: kinds[name] for column, name in columns.items()}
    frame = _parse(lambda: path, path, file_kinds, options, lines)
    return _Table(path, frame[list(columns)].rename(columns=columns), lines)


def _csv_header(path: Path, encoding: str, lines: _LineMap) -> list[str]:
    with _parser_errors(path, lines):
        return [str(name) for name in pd.read_csv(path, nrows=0, encoding=encoding, engine="c").columns]


def _read_delimited_table(path: Path, separator: str, kinds: dict[str, Kind]) -> _Table:
    """A headerless file whose lines hold exactly the fields in `kinds`, split by `separator`."""
    raw = path.read_bytes()
    sep = separator
    if len(separator) > 1:
        raw = raw.replace(separator.encode(), _UNIT_SEPARATOR.encode())
        sep = _UNIT_SEPARATOR
    numbers = _check_field_counts(path, raw, sep.encode(), len(kinds), separator)
    lines = _LineMap(path, header=False, lines=numbers)
    options = {
        "sep": sep,
        "header": None,
        "names": list(kinds),
        "index_col": False,
        "na_filter": False,
        "quoting": csv.QUOTE_NONE,
        "engine": "c",
    }
    frame = _parse(lambda: io.BytesIO(raw), path, kinds, options, lines)
    return _Table(path, frame, lines)


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, newline left out) byte offsets of every line."""
    ends = np.flatnonzero(buf == ord("\n"))
    if buf.size and buf[-1] != ord("\n"):
        ends = np.append(ends, buf.size)
    starts = np.concatenate(([0], ends[:-1] + 1))[: ends.size]
    return starts, ends


def _count_within(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many of the sorted `positions` fall in each [start, end) span."""
    return np.searchsorted(positions, ends) - np.searchsorted(positions, starts)


def _nonblank(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, separator: bytes) -> np.ndarray:
    """Which lines hold more than whitespace (a separator byte never counts as whitespace)."""
    is_blank = np.zeros(buf.shape, dtype=bool)
    for byte in _BLANK_BYTES:
        if byte != separator[0]:
            is_blank |= buf == byte
    whitespace = np.flatnonzero(is_blank)
    return _count_within(whitespace, starts, ends) < ends - starts


def _data_lines(raw: bytes, separator: bytes) -> np.ndarray:
    """1-based numbers of the lines pandas turns into rows (the header line included)."""
    buf = np.frombuffer(raw, np.uint8)
    starts, ends = _line_bounds(buf)
    return np.flatnonzero(_nonblank(buf, starts, ends, separator)) + 1


def _check_field_counts(path: Path, raw: bytes, separator: bytes, expected: int, shown: str) -> np.ndarray:
    """Raise at the first non-blank line without `expected` fields; return the data lines' numbers."""
    buf = np.frombuffer(raw, np.uint8)
    starts, ends = _line_bounds(buf)
    nonblank = _nonblank(buf, starts, ends, separator)
    fields = _count_within(np.flatnonzero(buf == separator[0]), starts, ends) + 1
    wrong = np.flatnonzero(nonblank & (fields != expected))
    if wrong.size:
        first = int(wrong[0])
        message = f"expected {expected} fields separated by {shown!r}, found {fields[first]}"
        raise DataValidationError(path, first + 1, message)
    return np.flatnonzero(nonblank) + 1


def _with_encodings(attempt: Callable[[str], T]) -> T:
    """Run `attempt` with UTF-8, falling back to latin-1 (which decodes any byte)."""
    for encoding in _ENCODINGS[:-1]:
        with contextlib.suppress(UnicodeDecodeError):
            return attempt(encoding)
    return attempt(_ENCODINGS[-1])


def _parse(source: _Source, path: Path, kinds: dict[str, Kind], options: dict, lines: _LineMap) -> pd.DataFrame:
    """The file's rows with `kinds` columns typed, in whichever encoding reads it."""

    def attempt(encoding: str) -> pd.DataFrame:
        return _parse_encoded(source, path, kinds, {**options, "encoding": encoding}, lines)

    return _with_encodings(attempt)


def _parse_encoded(source: _Source, path: Path, kinds: dict[str, Kind], options: dict, lines: _LineMap) -> pd.DataFrame:
    """Fast typed read; when a value does not parse, a chunked text read finds and reports it."""
    dtypes = {name: _DTYPES[kind] for name, kind in kinds.items()}
    with _parser_errors(path, lines):
        try:
            return pd.read_csv(source(), dtype=dtypes, **options)
        except _NOT_A_VALUE_PROBLEM:
            raise
        except (ValueError, OverflowError):
            pass
        return _parse_as_text(source(), path, kinds, options, lines)


def _parse_as_text(
    source: Path | io.BytesIO, path: Path, kinds: dict[str, Kind], options: dict, lines: _LineMap
) -> pd.DataFrame:
    with pd.read_csv(source, dtype="str", chunksize=_TEXT_CHUNK_ROWS, **options) as chunks:
        parts = [_convert(chunk, path, kinds, lines) for chunk in chunks]
    return pd.concat(parts) if parts else _empty_frame(kinds)


def _convert(chunk: pd.DataFrame, path: Path, kinds: dict[str, Kind], lines: _LineMap) -> pd.DataFrame:
    """Typed columns of one chunk of text; raises at the first value that does not parse."""
    parsed = {name: _CONVERTERS[kind](chunk[name]) for name, kind in kinds.items()}
    bad = pd.DataFrame({name: flags for name, (_, flags) in parsed.items()}, index=chunk.index)
    if bad.to_numpy().any():
        row = bad.any(axis=1).idxmax()
        name = str(bad.loc[row].idxmax())
        raise DataValidationError(path, lines(row), _unparsable(name, str(chunk.at[row, name])))
    return pd.DataFrame({name: values for name, (values, _) in parsed.items()}, index=chunk.index)


def _unparsable(name: str, value: str) -> str:
    label = name.replace("_", " ")
    if not value.strip():
        return f"missing {label}"
    shown = value if len(value) <= 40 else value[:37] + "..."
    return f"unparsable {label} {shown!r}"


def _as_int(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    number = pd.to_numeric(text, errors="coerce")
    bad = ~(number.abs() < _INT64_LIMIT) | (number % 1 != 0)
    return number.where(~bad, 0).astype("int64"), bad


def _as_float(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    return number, number.isna() & (text.str.strip().str.lower() != "nan")


def _as_str(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    return text, pd.Series(False, index=text.index)


_CONVERTERS: dict[Kind, Callable[[pd.Series], tuple[pd.Series, pd.Series]]] = {
    "int": _as_int,
    "float": _as_float,
    "str": _as_str,
}


@contextlib.contextmanager
def _parser_errors(path: Path, lines: _LineMap) -> Iterator[None]:
    """Turn pandas' tokenizer complaints into DataValidationErrors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            yield
        except pd.errors.EmptyDataError as exc:
            raise DataValidationError(path, None, "the file is empty") from exc
        except pd.errors.ParserWarning as exc:
            raise DataValidationError(path, lines(0), "more fields than the header has columns") from exc
        except pd.errors.ParserError as exc:
            found = _TOKENIZER_ERROR.search(str(exc))
            if found is None:
                raise DataValidationError(path, None, f"unreadable: {str(exc).strip()}") from exc
            expected, line, seen = (int(group) for group in found.groups())
            raise DataValidationError(path, line, f"expected {expected} fields, found {seen}") from exc


def _empty_frame(kinds: dict[str, Kind]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=_DTYPES[kind]) for name, kind in kinds.items()})


def _items_from_titles(table: _Table) -> _Table:
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


def _items_from_flags(table: _Table, flag_columns: list[str], genres: list[str]) -> _Table:
    """Items of the 100k layout: genres from 0/1 flags, year from the title or else the release date."""
    flags = table.frame[flag_columns].to_numpy()
    table.reject_first(~np.isin(flags, (0, 1)).all(axis=1), lambda row: "genre flags must be 0 or 1")
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


def _assemble(layout: str, parts: _Parts, files: list[Path]) -> Dataset:
    _validate(parts)
    dropped: Counter[str] = Counter()
    items = parts.items.frame.reset_index(drop=True)
    known = items["item_id"]
    ratings = clean_ratings(parts.ratings.frame, known, dropped)
    tags = _empty_frame(_TAGS) if parts.tags is None else _clean_tags(parts.tags.frame, known, dropped)
    links = _empty_frame(_LINKS) if parts.links is None else _clean_links(parts.links.frame, known, dropped)
    users = None if parts.users is None else _users(parts.users.frame)
    for reason, count in dropped.items():
        logger.warning("dropped %s row(s): %s", f"{count:,}", reason)
    return Dataset(
        layout=layout,
        ratings=ratings,
        items=items,
        tags=tags,
        users=users,
        links=links,
        files=files,
        dropped=dropped,
    )


def _validate(parts: _Parts) -> None:
    """Whole-file checks: ratings present and in range, item (and user) ids unique."""
    _require_rows(parts.ratings, "ratings")
    _check_rating_range(parts.ratings)
    _require_rows(parts.items, "items")
    _check_unique(parts.items, "item_id")
    if parts.users is not None:
        _check_unique(parts.users, "user_id")


def _require_rows(table: _Table, what: str) -> None:
    if table.frame.empty:
        raise DataValidationError(table.path, None, f"no {what}: the file has no data rows")


def _check_rating_range(table: _Table) -> None:
    low, high = RATING_RANGE

    def describe(row: pd.Series) -> str:
        value = float(row["rating"])
        if np.isnan(value):
            return f"rating is NaN, expected {low}..{high}"
        return f"rating {value} out of range {low}..{high}"

    table.reject_first(~table.frame["rating"].between(low, high), describe)


def _check_unique(table: _Table, column: str) -> None:
    values = table.frame[column]

    def describe(row: pd.Series) -> str:
        first = values.index[(values == row[column]).to_numpy().argmax()]
        return f"duplicate {column.replace('_', ' ')} {row[column]} (first on line {table.lines(first)})"

    table.reject_first(values.duplicated(), describe)


def _drop(frame: pd.DataFrame, mask: _Mask, reason: str, dropped: Counter[str]) -> pd.DataFrame:
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
    """Which rows share their `columns` values with another row (sort-based: quicker than hashing)."""
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
    if sum(_offset_bits(values) for values in columns) > 63:
        return None
    key = np.zeros(columns[0].size, dtype=np.int64)
    for values in columns:
        key = (key << _offset_bits(values)) | (values - values.min() if values.size else values)
    return key


def _sort_order(keys: list[np.ndarray]) -> np.ndarray:
    """Positions sorting the rows by keys[0], then keys[1], ... (ties in all keys in any order).

    Packs as many keys as fit into one int64 and argsorts that, re-ranking the sorted prefix whenever
    the next key no longer fits: much faster than a multi-key lexsort on tens of millions of rows.
    """
    order = np.arange(keys[0].size)
    prefix = np.zeros(keys[0].size, dtype=np.int64)
    for values in keys:
        if _offset_bits(prefix) + _offset_bits(values) > 63:
            order, prefix = _rank_sorted(order, prefix)
            if _offset_bits(prefix) + _offset_bits(values) > 63:
                return np.lexsort(keys[::-1])
        prefix = _packed_key([prefix, values[order]])
    return _rank_sorted(order, prefix)[0]


def _rank_sorted(order: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`order` re-sorted by `key`, and each row's dense rank of `key` in that new order."""
    positions = np.argsort(key)
    ordered = key[positions]
    ranks = np.zeros(key.size, dtype=np.int64)
    ranks[1:] = np.cumsum(ordered[1:] != ordered[:-1])
    return order[positions], ranks


def _clean_tags(frame: pd.DataFrame, known_items: pd.Series, dropped: Counter[str]) -> pd.DataFrame:
    """Tags of known items, stripped and lower-cased, empty ones removed."""
    frame = _drop(frame, ~frame["item_id"].isin(known_items), UNKNOWN_ITEM_TAGS, dropped)
    frame = frame.assign(tag=frame["tag"].str.strip().str.lower())
    frame = _drop(frame, (frame["tag"] == "").to_numpy(), EMPTY_TAGS, dropped)
    return frame.reset_index(drop=True)


def _clean_links(frame: pd.DataFrame, known_items: pd.Series, dropped: Counter[str]) -> pd.DataFrame:
    """Links of known items, one row per item (the first), ids stripped ("" when the file has none)."""
    frame = _drop(frame, ~frame["item_id"].isin(known_items), UNKNOWN_ITEM_LINKS, dropped)
    frame = _drop(frame, frame["item_id"].duplicated().to_numpy(), DUPLICATE_LINKS, dropped)
    return frame.assign(imdb_id=frame["imdb_id"].str.strip(), tmdb_id=frame["tmdb_id"].str.strip()).reset_index(
        drop=True
    )


def _users(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[_USER_COLUMNS].astype({"age": "int32"}).reset_index(drop=True)
