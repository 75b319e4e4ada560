"""Builds item content vectors (genres + tag TF-IDF) from the catalog and tags known at training time."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from wren.core.recall.content import ContentSpace


def training_tags(tags: pd.DataFrame, user_cutoff: pd.Series) -> pd.DataFrame:
    """Tags applied before the tagging user's test period began (later tags would leak the future)."""
    if tags.empty:
        return tags
    cutoff = tags["user_id"].map(user_cutoff)
    return tags[cutoff.isna() | (tags["timestamp"] < cutoff)]


def build_content(
    item_ids: np.ndarray,
    item_genres: np.ndarray,
    genres: list[str],
    tags: pd.DataFrame,
    genre_weight: float,
    tag_weight: float,
    min_item_frequency: int = 2,
) -> tuple[ContentSpace, sparse.csr_matrix]:
    """(content space, CSR [n_items, G + T]) with rows aligned to item_ids (ascending)."""
    documents: list[list[str]] = [[] for _ in item_ids]
    if not tags.empty:
        rows = np.searchsorted(item_ids, tags["item_id"].to_numpy(np.int64))
        for row, tag in zip(rows, tags["tag"], strict=True):
            documents[row].append(tag)
    tagged = sum(1 for doc in documents if doc)
    if tagged >= min_item_frequency:
        vectorizer = TfidfVectorizer(
            analyzer=lambda doc: doc, min_df=min_item_frequency, norm="l2", smooth_idf=True, dtype=np.float32
        )
        try:
            tag_block = vectorizer.fit_transform(documents)
            vocabulary = list(vectorizer.get_feature_names_out())
            idf = vectorizer.idf_.astype(np.float32)
        except ValueError:  # no tag reaches min_item_frequency
            tag_block, vocabulary, idf = sparse.csr_matrix((len(item_ids), 0), dtype=np.float32), [], np.empty(0)
    else:
        tag_block, vocabulary, idf = sparse.csr_matrix((len(item_ids), 0), dtype=np.float32), [], np.empty(0)
    space = ContentSpace(genres, vocabulary, np.asarray(idf, np.float32), genre_weight, tag_weight)
    return space, space.combine(sparse.csr_matrix(item_genres, dtype=np.float32), tag_block)
