"""Item feature rows and the one way an ItemBatch is cut from them (the embedded and the Redis store share it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.common.redis_layout import ItemRecord, Meta
from wren.core.bundle import Bundle
from wren.core.types import ItemBatch


@dataclass(frozen=True)
class ItemRows:
    """Feature rows of some items: dense/genres/embeddings float32 [n, ·], years int32 [n], titles and "A|B"
    genre names [n]."""

    dense: np.ndarray
    genres: np.ndarray
    embeddings: np.ndarray
    years: np.ndarray
    titles: list[str]
    genre_names: list[str]

    @classmethod
    def from_records(cls, records: list[ItemRecord], meta: Meta) -> ItemRows:
        """Rows of the given Redis item records, in their order."""

        def stacked(values: list[np.ndarray], width: int) -> np.ndarray:
            return np.stack(values).astype(np.float32) if values else np.zeros((0, width), np.float32)

        return cls(
            dense=stacked([record.dense for record in records], meta.item_dense_dim),
            genres=stacked([record.genres for record in records], len(meta.genres)),
            embeddings=stacked([record.embedding for record in records], meta.embedding_dim),
            years=np.array([record.year for record in records], np.int32),
            titles=[record.title for record in records],
            genre_names=[record.genre_names for record in records],
        )

    def batch(self, item_ids: np.ndarray, rows: np.ndarray, found: np.ndarray, version: str) -> ItemBatch:
        """ItemBatch in request order: item_ids[i] is row rows[i] where found[i], a zero row otherwise."""
        n = len(item_ids)
        take = np.asarray(rows)[found]
        positions = np.flatnonzero(found)

        def gathered(table: np.ndarray) -> np.ndarray:
            out = np.zeros((n, *table.shape[1:]), table.dtype)
            out[found] = table[take]
            return out

        titles, genre_names = [""] * n, [""] * n
        for position, row in zip(positions.tolist(), take.tolist(), strict=True):
            titles[position], genre_names[position] = self.titles[row], self.genre_names[row]
        return ItemBatch(
            item_ids=item_ids,
            known=np.asarray(found, bool),
            dense=gathered(self.dense),
            genres=gathered(self.genres),
            embedding=gathered(self.embeddings),
            titles=titles,
            genre_names=genre_names,
            years=gathered(self.years),
            bundle_version=version,
        )


def records_batch(item_ids: np.ndarray, records: dict[int, ItemRecord | None], meta: Meta) -> ItemBatch:
    """ItemBatch of item_ids from Redis records fetched for them (absent or None: a zero row)."""
    known = {item_id: record for item_id, record in records.items() if record is not None}
    row_of = {item_id: row for row, item_id in enumerate(known)}
    ids = item_ids.tolist()
    found = np.array([item_id in row_of for item_id in ids], bool)
    rows = np.array([row_of.get(item_id, 0) for item_id in ids], np.int64)
    return ItemRows.from_records(list(known.values()), meta).batch(item_ids, rows, found, meta.version)


class ItemCatalog:
    """The bundle's item features, ready to slice into ItemBatch rows by id (the embedded store's items)."""

    def __init__(self, bundle: Bundle) -> None:
        items = bundle.items
        self.items = items
        self.version = bundle.version
        names = np.array(bundle.genres)
        self.rows = ItemRows(
            dense=items.dense.astype(np.float32),
            genres=items.genres.astype(np.float32),
            embeddings=(bundle.embeddings * items.has_embedding[:, None]).astype(np.float32),
            years=np.asarray(items.years, np.int32),
            titles=list(items.titles),
            genre_names=["|".join(names[row.astype(bool)]) for row in items.genres],
        )

    def batch(self, item_ids: np.ndarray) -> ItemBatch:
        item_ids = np.asarray(item_ids, np.int64)
        rows, found = self.items.rows(item_ids)
        return self.rows.batch(item_ids, rows, found, self.version)
