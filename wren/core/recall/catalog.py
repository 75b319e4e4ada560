"""The item catalog recall serves from: ids, embeddings, vector index, content vectors, popular lists."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from wren.core.arrays import IdIndex, l2_normalize
from wren.core.bundle import Bundle
from wren.core.cf import CFModel
from wren.core.errors import InvalidArgument
from wren.core.index.base import VectorIndex
from wren.core.index.factory import load_index
from wren.core.item_graph import ItemGraph
from wren.core.recall.content import ContentSpace, content_neighbour_embeddings


@dataclass
class RecallCatalog:
    """Mutable only through `add_item` (new items join the live index at once).

    ids[i] is the item of row i; embeddings rows are L2-normalised (zero where has_embedding is false);
    content is the CSR [n, width] content matrix; popularity is float32 [n] (positive interactions in
    training, 0 for items added since); popular and segments hold item ids, best first. cf holds the ALS
    item factors by row and cf_index searches them by inner product; item_graphs are item-to-item graphs
    by row ("covisit", "ease"). Items added since training have no factors and no graph row.
    """

    ids: np.ndarray
    embeddings: np.ndarray
    has_embedding: np.ndarray
    index: VectorIndex
    content: sparse.csr_matrix
    content_space: ContentSpace
    popularity: np.ndarray
    popular: np.ndarray
    segments: dict[str, np.ndarray]
    default_segment: str
    version: str
    neighbours_for_new_items: int = 10
    cf: CFModel | None = None
    cf_index: VectorIndex | None = None
    item_graphs: dict[str, ItemGraph] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._write_lock = threading.Lock()
        self._index_ids()

    def _index_ids(self) -> None:
        """Sorted ids and their rows (ids are in row order, not sorted, once items are added)."""
        order = np.argsort(self.ids, kind="stable")
        self._sorted = IdIndex(self.ids[order])
        self._sorted_rows = order.astype(np.int64)

    @classmethod
    def from_bundle(cls, bundle: Bundle, index_kind: str) -> RecallCatalog:
        items = bundle.items
        content = bundle.content
        vocab = bundle.content_vocabulary
        cold = bundle.cold_start
        return cls(
            ids=items.ids,
            embeddings=l2_normalize(bundle.embeddings),
            has_embedding=items.has_embedding,
            index=load_index(index_kind, bundle.index_dir(index_kind), bundle.index_params(index_kind)),
            content=sparse.csr_matrix(
                (content["data"], content["indices"], content["indptr"]), shape=tuple(content["shape"])
            ),
            content_space=ContentSpace(
                genres=vocab["genres"],
                tags=vocab["tags"],
                idf=np.asarray(vocab["idf"], np.float32),
                genre_weight=vocab["genre_weight"],
                tag_weight=vocab["tag_weight"],
            ),
            popularity=items.popularity.astype(np.float32),
            popular=np.asarray(cold["popular"], np.int64),
            segments={name: np.asarray(ids, np.int64) for name, ids in cold["segments"].items()},
            default_segment=cold["default_segment"],
            version=bundle.version,
            neighbours_for_new_items=int(bundle.manifest.config["cold_start"]["content_neighbours"]),
            cf=bundle.cf_model,
            cf_index=load_index(bundle.cf_index_kind, bundle.file("index/cf"), bundle.cf_index_params),
            item_graphs={name: bundle.item_graph(name) for name in bundle.item_graph_names},
        )

    def popularity_weight(self, rows: np.ndarray, floor: float = 0.05) -> np.ndarray:
        """floor + log-popularity scaled to [0, 1]: the prior personal channels multiply similarity by."""
        top = float(np.log1p(self.popularity.max())) if len(self.popularity) else 0.0
        scaled = np.log1p(self.popularity[rows]) / top if top > 0 else np.zeros(len(rows), np.float32)
        return (floor + scaled).astype(np.float32)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 for ids not in the catalog."""
        pos = self._sorted.rows(item_ids)
        return np.where(pos >= 0, self._sorted_rows[pos], -1) if len(self._sorted_rows) else pos

    def row(self, item_id: int) -> int:
        """Row of one id, -1 when the catalog does not hold it."""
        pos = self._sorted.row(int(item_id))
        return int(self._sorted_rows[pos]) if pos >= 0 else -1

    def segment_list(self, segment: str) -> np.ndarray:
        return self.segments.get(segment, self.segments.get(self.default_segment, self.popular))

    def add_item(self, item_id: int, genres: list[str], tags: list[str]) -> int:
        """Adds (or replaces) an item with a cold-start embedding from its content neighbours.

        Returns how many neighbours were averaged. Raises InvalidArgument when the item's content has
        nothing in common with any item that has an embedding (there is nothing to place it by).
        """
        vector = self.content_space.vector(genres, tags)
        if vector.nnz == 0:
            raise InvalidArgument("item has no known genre or tag; cannot place it in the embedding space")
        embedding, used = content_neighbour_embeddings(
            vector, self.content, self.embeddings, self.has_embedding, self.neighbours_for_new_items
        )
        if used[0] == 0:
            raise InvalidArgument("no catalog item shares a genre or tag with this item")
        unit = l2_normalize(embedding)
        with self._write_lock:
            self.index.add(np.array([item_id], np.int64), unit)
            row = self.row(item_id)
            if row < 0:
                row = len(self.ids)
                self.ids = np.append(self.ids, np.int64(item_id))
                self.embeddings = np.vstack([self.embeddings, unit])
                self.has_embedding = np.append(self.has_embedding, True)
                self.content = sparse.vstack([self.content, vector], format="csr")
                self.popularity = np.append(self.popularity, np.float32(0.0))
                self._index_ids()
            else:
                self.embeddings[row] = unit[0]
                self.has_embedding[row] = True
                self.content = sparse.vstack([self.content[:row], vector, self.content[row + 1 :]], format="csr")
        return int(used[0])
