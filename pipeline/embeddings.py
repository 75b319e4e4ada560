"""Item embeddings: Item2vec (skip-gram over time-ordered positives) and DeepWalk (walks on the item graph)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import sparse

from pipeline.config_section import ConfigSection

log = logging.getLogger(__name__)

EMBEDDING_METHODS = ("item2vec", "deepwalk")


class EmbeddingConfig(ConfigSection):
    method: str = "item2vec"
    dim: int = 64
    window: int = 5
    negative: int = 5
    epochs: int = 10
    min_count: int = 1
    walks_per_item: int = 10
    walk_length: int = 20


def positive_sequences(train: pd.DataFrame, threshold: float) -> list[np.ndarray]:
    """Each user's positively rated items in time order (ties by item id)."""
    positives = train[train["rating"] >= threshold].sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    users = positives["user_id"].to_numpy()
    items = positives["item_id"].to_numpy(np.int64)
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b - a > 1]


def transition_graph(sequences: list[np.ndarray]) -> tuple[np.ndarray, sparse.csr_matrix]:
    """(node item ids, row-normalised CSR of consecutive-item transition weights)."""
    nodes = np.unique(np.concatenate(sequences)) if sequences else np.empty(0, np.int64)
    src = np.concatenate([np.searchsorted(nodes, s[:-1]) for s in sequences]) if sequences else np.empty(0, int)
    dst = np.concatenate([np.searchsorted(nodes, s[1:]) for s in sequences]) if sequences else np.empty(0, int)
    counts = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(len(nodes), len(nodes)))
    counts.sum_duplicates()
    out = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
    return nodes, sparse.csr_matrix(sparse.diags(scale) @ counts)


def random_walks(graph: sparse.csr_matrix, walks_per_node: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted random walks, all advanced in lock-step with numpy; [walks, length] node indices, -1
    after a walk reaches a node with no outgoing edge."""
    n = graph.shape[0]
    cumulative = np.cumsum(graph.data)
    row_start = graph.indptr[:-1]
    row_end = graph.indptr[1:]
    base = np.where(row_start > 0, cumulative[np.maximum(row_start - 1, 0)], 0.0)
    walks = np.full((n * walks_per_node, length), -1, dtype=np.int64)
    current = np.tile(np.arange(n), walks_per_node)
    walks[:, 0] = current
    alive = row_end[current] > row_start[current]
    for step in range(1, length):
        idx = np.flatnonzero(alive)
        if len(idx) == 0:
            break
        nodes = current[idx]
        draw = base[nodes] + rng.random(len(idx)) * (cumulative[row_end[nodes] - 1] - base[nodes])
        edge = np.searchsorted(cumulative, draw, side="right")
        edge = np.clip(edge, row_start[nodes], row_end[nodes] - 1)
        current[idx] = graph.indices[edge]
        walks[idx, step] = current[idx]
        alive[idx] = row_end[current[idx]] > row_start[current[idx]]
    return walks


def skipgram(
    sentences: list[list[str]], config: EmbeddingConfig, seed: int, progress: bool = False
) -> dict[int, np.ndarray]:
    """Skip-gram with negative sampling (gensim, one worker so a seed gives the same vectors)."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    from pipeline.progress import bar

    class EpochBar(CallbackAny2Vec):
        def __init__(self) -> None:
            self.bar = bar(config.epochs, f"{config.method} epochs", progress)

        def on_epoch_end(self, model: Word2Vec) -> None:
            self.bar.update(1)

        def on_train_end(self, model: Word2Vec) -> None:
            self.bar.close()

    model = Word2Vec(
        callbacks=[EpochBar()],
        sentences=sentences,
        vector_size=config.dim,
        window=config.window,
        negative=config.negative,
        sg=1,
        min_count=config.min_count,
        epochs=config.epochs,
        workers=1,
        seed=seed,
    )
    return {int(token): model.wv[token] for token in model.wv.index_to_key}


def train_embeddings(
    train: pd.DataFrame,
    item_ids: np.ndarray,
    threshold: float,
    config: EmbeddingConfig,
    seed: int,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [n_items, dim] aligned with item_ids, bool [n_items] has a trained vector)."""
    if config.method not in EMBEDDING_METHODS:
        raise ValueError(f"unknown embedding method {config.method!r}; choose one of {EMBEDDING_METHODS}")
    sequences = positive_sequences(train, threshold)
    if config.method == "item2vec":
        sentences = [[str(i) for i in s] for s in sequences]
    else:
        nodes, graph = transition_graph(sequences)
        walks = random_walks(graph, config.walks_per_item, config.walk_length, np.random.default_rng(seed))
        sentences = [[str(nodes[i]) for i in walk[walk >= 0]] for walk in walks if (walk >= 0).sum() > 1]
    log.info("%s: %d sequences, %d tokens", config.method, len(sentences), sum(map(len, sentences)))
    vectors = skipgram(sentences, config, seed, progress)
    matrix = np.zeros((len(item_ids), config.dim), np.float32)
    trained = np.zeros(len(item_ids), bool)
    for row, item in enumerate(item_ids):
        vector = vectors.get(int(item))
        if vector is not None:
            matrix[row] = vector
            trained[row] = True
    return matrix, trained
