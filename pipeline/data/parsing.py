"""Typed parsing of one MovieLens file: pandas reads, byte-level line numbers, errors naming file and line."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias, TypeVar

import numpy as np
import pandas as pd

from pipeline.data.errors import DataValidationError

Kind = Literal["int", "float", "str"]
T = TypeVar("T")
_Source: TypeAlias = Callable[[], Path | io.BytesIO]
Mask: TypeAlias = pd.Series | np.ndarray

_CSV_HEADER = {"user_id": "userId", "item_id": "movieId", "imdb_id": "imdbId", "tmdb_id": "tmdbId"}
_DTYPES: dict[Kind, str] = {"int": "int64", "float": "float64", "str": "str"}
_ENCODINGS = ("utf-8-sig", "latin-1")
_UNIT_SEPARATOR = "\x1f"
_TEXT_CHUNK_ROWS = 500_000
_BLANK_BYTES = b" \t\r"
_INT64_LIMIT = 2.0**63
_TOKENIZER_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_NOT_A_VALUE_PROBLEM = (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError)


class LineMap:
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
class Table:
    """One parsed file; the frame's index holds each row's data-row number, which `lines` maps back."""

    path: Path
    frame: pd.DataFrame
    lines: LineMap

    def require_rows(self, what: str) -> None:
        if self.frame.empty:
            raise DataValidationError(self.path, None, f"no {what}: the file has no data rows")

    def reject_first(self, bad: Mask, describe: Callable[[pd.Series], str]) -> None:
        """Raise at the first row flagged in `bad`, described by `describe(row)`."""
        flags = np.asarray(bad, dtype=bool)
        if flags.any():
            position = int(flags.argmax())
            row = self.frame.iloc[position]
            raise DataValidationError(self.path, self.lines(self.frame.index[position]), describe(row))


def read_csv_table(path: Path, kinds: dict[str, Kind]) -> Table:
    """A comma-separated file with a header naming (at least) the columns in `kinds`."""
    columns = {_CSV_HEADER.get(name, name): name for name in kinds}
    lines = LineMap(path, header=True)
    header = _with_encodings(lambda encoding: _csv_header(path, encoding, lines))
    missing = [column for column in columns if column not in header]
    if missing:
        message = f"missing column(s) {', '.join(missing)}; header is {','.join(header)}"
        raise DataValidationError(path, 1, message)
    options = {"sep": ",", "index_col": False, "na_filter": False, "engine": "c"}
    file_kinds = {column: kinds[name] for column, name in columns.items()}
    frame = _parse(lambda: path, path, file_kinds, options, lines)
    return Table(path, frame[list(columns)].rename(columns=columns), lines)


def _csv_header(path: Path, encoding: str, lines: LineMap) -> list[str]:
    with _parser_errors(path, lines):
        return [str(name) for name in pd.read_csv(path, nrows=0, encoding=encoding, engine="c").columns]


def read_delimited_table(path: Path, separator: str, kinds: dict[str, Kind]) -> Table:
    """A headerless file whose lines hold exactly the fields in `kinds`, split by `separator`."""
    raw = path.read_bytes()
    sep = separator
    if len(separator) > 1:
        raw = raw.replace(separator.encode(), _UNIT_SEPARATOR.encode())
        sep = _UNIT_SEPARATOR
    numbers = _check_field_counts(path, raw, sep.encode(), len(kinds), separator)
    lines = LineMap(path, header=False, lines=numbers)
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
    return Table(path, frame, lines)


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


def _parse(source: _Source, path: Path, kinds: dict[str, Kind], options: dict, lines: LineMap) -> pd.DataFrame:
    """The file's rows with `kinds` columns typed, in whichever encoding reads it."""

    def attempt(encoding: str) -> pd.DataFrame:
        return _parse_encoded(source, path, kinds, {**options, "encoding": encoding}, lines)

    return _with_encodings(attempt)


def _parse_encoded(source: _Source, path: Path, kinds: dict[str, Kind], options: dict, lines: LineMap) -> pd.DataFrame:
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
    source: Path | io.BytesIO, path: Path, kinds: dict[str, Kind], options: dict, lines: LineMap
) -> pd.DataFrame:
    with pd.read_csv(source, dtype="str", chunksize=_TEXT_CHUNK_ROWS, **options) as chunks:
        parts = [_convert(chunk, path, kinds, lines) for chunk in chunks]
    return pd.concat(parts) if parts else empty_frame(kinds)


def _convert(chunk: pd.DataFrame, path: Path, kinds: dict[str, Kind], lines: LineMap) -> pd.DataFrame:
    """Typed columns of one chunk of text; raises at the first value that does not parse."""
    parsed = {name: _CONVERTERS[kind](chunk[name]) for name, kind in kinds.items()}
    bad = pd.DataFrame({name: flags for name, (_, flags) in parsed.items()}, index=chunk.index)
    flags = bad.to_numpy()
    if flags.any():
        position, column = divmod(int(flags.argmax()), flags.shape[1])  # the first bad row, its first bad value
        name = str(bad.columns[column])
        value = str(chunk[name].iloc[position])
        raise DataValidationError(path, lines(int(chunk.index[position])), _unparsable(name, value))
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
def _parser_errors(path: Path, lines: LineMap) -> Iterator[None]:
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


def empty_frame(kinds: dict[str, Kind]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=_DTYPES[kind]) for name, kind in kinds.items()})
