"""Read a MovieLens directory in any of its on-disk layouts (csv, dat, 100k) into a validated `Dataset`."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from pipeline.data import cleaning
from pipeline.data.dataset import Dataset
from pipeline.data.layouts import LAYOUT_READERS, LINKS, TAGS, Parts, Reader, detect_layout
from pipeline.data.parsing import empty_frame

logger = logging.getLogger(__name__)


def load_dataset(directory: Path, progress: bool = False) -> Dataset:
    """Detect the layout of `directory`, read and validate its files, and return the `Dataset`.

    Raises DataValidationError (naming the file and line) for anything wrong in the files; rows that
    are merely unusable (unknown items, duplicate ratings, empty tags) are dropped, counted in
    `Dataset.dropped` and logged. With `progress`, prints one line per file read to stderr.
    """
    directory = Path(directory)
    layout = detect_layout(directory)
    reader = Reader(progress)
    parts = LAYOUT_READERS[layout](directory, reader)
    return _assemble(layout, parts, sorted(reader.files))


def _assemble(layout: str, parts: Parts, files: list[Path]) -> Dataset:
    cleaning.validate(parts)
    dropped: Counter[str] = Counter()
    items = parts.items.frame.reset_index(drop=True)
    known = items["item_id"]
    ratings = cleaning.clean_ratings(parts.ratings.frame, known, dropped)
    tags = empty_frame(TAGS) if parts.tags is None else cleaning.clean_tags(parts.tags.frame, known, dropped)
    links = empty_frame(LINKS) if parts.links is None else cleaning.clean_links(parts.links.frame, known, dropped)
    users = None if parts.users is None else cleaning.users(parts.users.frame)
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
