"""Item content vectors: a genre block and a TF-IDF tag block, each L2-normalised, weighted, joined.

Genres are the coarse top of the tag hierarchy, so by default they weigh less than specific tags.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class ContentSpace:
    """The column space of content vectors: G genre columns, then one column per tag."""

    genres: list[str]
    tags: list[str]
    idf: np.ndarray  # float32 [len(tags)], smooth idf as in the offline TF-IDF
    genre_weight: float = 0.5
    tag_weight: float = 1.0

    @property
    def width(self) -> int:
        return len(self.genres) + len(self.tags)

    def combine(self, genre_block: sparse.csr_matrix, tag_block: sparse.csr_matrix) -> sparse.csr_matrix:
        """Row-normalises both blocks, weights them, joins them and L2-normalises each row."""
        joined = sparse.hstack(
            [_normalise_rows(genre_block) * self.genre_weight, _normalise_rows(tag_block) * self.tag_weight],
            format="csr",
            dtype=np.float32,
        )
        return _normalise_rows(joined)

    def vector(self, genres: list[str], tags: list[str]) -> sparse.csr_matrix:
        """Content vector [1, width] of an item described by genre names and free-text tags."""
        genre_pos = {g: i for i, g in enumerate(self.genres)}
        tag_pos = {t: i for i, t in enumerate(self.tags)}
        genre_cols = sorted({genre_pos[g] for g in genres if g in genre_pos})
        genre_block = sparse.csr_matrix(
            (np.ones(len(genre_cols), np.float32), ([0] * len(genre_cols), genre_cols)), shape=(1, len(self.genres))
        )
        counts = Counter(tag_pos[t] for t in (tag.strip().lower() for tag in tags) if t in tag_pos)
        cols = sorted(counts)
        values = np.array([counts[c] * self.idf[c] for c in cols], dtype=np.float32)
        tag_block = sparse.csr_matrix((values, ([0] * len(cols), cols)), shape=(1, len(self.tags)))
        return self.combine(genre_block, tag_block)


def _normalise_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sparse.diags(scale.astype(np.float32)) @ matrix


def content_neighbour_embeddings(
    queries: sparse.csr_matrix,
    content: sparse.csr_matrix,
    embeddings: np.ndarray,
    eligible: np.ndarray,
    k: int,
    chunk: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """Cold-start embeddings: the mean embedding of each query's k most content-similar eligible items.

    queries: [q, width] content vectors; content: [n, width]; embeddings: float32 [n, D]; eligible: bool
    [n] (items whose embedding is trusted). Returns (float32 [q, D], int32 [q] neighbours used); a query
    with no content overlap with any eligible item gets a zero vector and 0 neighbours.
    """
    candidates = np.flatnonzero(eligible)
    result = np.zeros((queries.shape[0], embeddings.shape[1]), np.float32)
    used = np.zeros(queries.shape[0], np.int32)
    if len(candidates) == 0 or k <= 0:
        return result, used
    target = content[candidates].T.tocsc()
    for start in range(0, queries.shape[0], chunk):
        block = (queries[start : start + chunk] @ target).toarray()
        take = min(k, block.shape[1])
        top = np.argpartition(-block, take - 1, axis=1)[:, :take]
        similar = np.take_along_axis(block, top, axis=1) > 0
        gathered = embeddings[candidates[top]] * similar[..., None]
        counts = similar.sum(axis=1)
        result[start : start + len(block)] = np.divide(
            gathered.sum(axis=1), counts[:, None], out=np.zeros_like(gathered[:, 0]), where=counts[:, None] > 0
        )
        used[start : start + len(block)] = counts
    return result, used
