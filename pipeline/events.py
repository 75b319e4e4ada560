"""Logged events for training: reads the nearline tier's JSON-lines event log and merges its ratings into a Dataset."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.data.cleaning import clean_ratings
from pipeline.data.dataset import Dataset
from pipeline.data.errors import DataValidationError
from wren.core.schema import EVENT_TYPES, RATING_RANGE

EVENT_LOG_GLOB = "*.jsonl"
DUPLICATE_EVENTS = "events: duplicate event id"
CUT_SHORT_EVENTS = "events: last line cut short"
NOT_RATING_EVENTS = "events: not a rating"
_COLUMNS = {"user_id": "int64", "item_id": "int64", "rating": "float32", "timestamp": "int64"}


@dataclasses.dataclass
class LoggedEvents:
    """The rating events of a log directory (one row per event id) as ratings rows (Dataset.ratings columns),
    the files read, and the rows dropped by reason."""

    ratings: pd.DataFrame
    files: list[Path]
    dropped: Counter[str]


def load_event_log(directory: Path) -> LoggedEvents:
    """Every `*.jsonl` file of `directory`, in name order. A line that is not a valid event raises
    DataValidationError naming the file and line, except a last line without its newline (a writer killed
    mid-line; that event was never acknowledged and is logged again), which is dropped and counted. An event
    id seen before (a redelivery) and click/view events (training learns from ratings) are dropped and counted."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataValidationError(directory, None, f"not a directory: {directory}")
    files = sorted(directory.glob(EVENT_LOG_GLOB))
    dropped: Counter[str] = Counter()
    seen: set[str] = set()
    rows: list[tuple[int, int, float, int]] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            last = number == len(lines)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if last:
                    dropped[CUT_SHORT_EVENTS] += 1
                    continue
                raise DataValidationError(path, number, f"not a JSON event: {error.msg}") from None
            event_id, row = _event(record, path, number)
            if event_id in seen:
                dropped[DUPLICATE_EVENTS] += 1
            elif row is None:
                seen.add(event_id)
                dropped[NOT_RATING_EVENTS] += 1
            else:
                seen.add(event_id)
                rows.append(row)
    ratings = pd.DataFrame(rows, columns=list(_COLUMNS)).astype(_COLUMNS)
    return LoggedEvents(ratings, files, dropped)


def _event(record: object, path: Path, line: int) -> tuple[str, tuple[int, int, float, int] | None]:
    """(event id, ratings row or None for clicks and views); raises DataValidationError for a bad record."""

    def bad(message: str) -> DataValidationError:
        return DataValidationError(path, line, message)

    if not isinstance(record, dict):
        raise bad("an event must be a JSON object")
    event_id = record.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise bad("event_id must be a non-empty string")
    for name in ("user_id", "item_id", "timestamp"):
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "timestamp" else 1):
            sign = "non-negative" if name == "timestamp" else "positive"
            raise bad(f"{name} must be a {sign} integer, got {value!r}")
    kind = record.get("type")
    if kind not in EVENT_TYPES:
        raise bad(f"type must be one of {', '.join(EVENT_TYPES)}, got {kind!r}")
    if kind != "rating":
        return event_id, None
    rating = record.get("rating")
    low, high = RATING_RANGE
    if (
        isinstance(rating, bool)
        or not isinstance(rating, int | float)
        or not math.isfinite(rating)
        or not low <= rating <= high
    ):
        raise bad(f"rating {rating!r} out of range {low}..{high}")
    return event_id, (record["user_id"], record["item_id"], float(rating), record["timestamp"])


def merge_events(dataset: Dataset, directory: Path) -> Dataset:
    """`dataset` with the logged rating events added as ratings, cleaned by the loaders' own rules (unknown
    items dropped, a later rating of the same (user, item) replacing the earlier one) and counted in
    `dropped` beside the log's own drops; the log files join `files` (and so the data fingerprint)."""
    log = load_event_log(directory)
    dropped = Counter(dataset.dropped)
    dropped.update(log.dropped)
    combined = pd.concat([dataset.ratings, log.ratings], ignore_index=True)
    ratings = clean_ratings(combined, dataset.items["item_id"], dropped)
    return dataclasses.replace(dataset, ratings=ratings, files=[*dataset.files, *log.files], dropped=dropped)
