"""Baseline recommenders fitted on training ratings: popularity, SAR-style co-occurrence, implicit ALS and BPR."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from pipeline.cf import CFConfig, fit_als, interaction_matrix
from pipeline.ease import EaseConfig, ease_weights
from pipeline.evaluation.metrics import TopKLists

BASELINE_NAMES = ("popularity", "cooccurrence", "als", "bpr", "ease")
BATCH_USERS = 256


@dataclass(frozen=True)
class BPRConfig:
    """implicit's BayesianPersonalizedRanking settings (it adds one item-bias factor of its own)."""

    factors: int = 64
    learning_rate: float = 0.01
    regularization: float = 0.01
    iterations: int = 100


Factorise = Callable[[sparse.csr_matrix], tuple[np.ndarray, np.ndarray]]
"""users x items binary CSR -> (user factors [users, f], item factors [items, f])."""

_DEFAULT_CF = CFConfig()
_DEFAULT_BPR = BPRConfig()
_DEFAULT_EASE = EaseConfig()


class Baseline(ABC):
    """A recommender fitted on a training ratings frame (columns user_id, item_id, rating, timestamp).

    Every rating counts as one binary interaction. `recommend` returns, for each requested user, up to
    k distinct training items (int64 ids, best first) the user did not rate in training (fewer only
    when the user rated nearly everything); users unknown to training get the k most popular items.
    Subclasses provide `_scores`, dense scores of a batch of training users over all training items.
    """

    name: str

    def __init__(self, train: pd.DataFrame) -> None:
        self.users = np.unique(train["user_id"].to_numpy(np.int64))
        self.items = np.unique(train["item_id"].to_numpy(np.int64))
        self.seen = interaction_matrix(train, self.users, self.items)
        self.popularity = popularity_scores(self.seen)

    @abstractmethod
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """float [len(rows), n_items] scores of the training users at row positions `rows`; higher is better."""

    def recommend(self, user_ids: np.ndarray, k: int) -> TopKLists:
        """user id -> top-k item ids (int64, best first) for each of `user_ids`."""
        user_ids = np.asarray(user_ids, np.int64).reshape(-1)
        rows = np.searchsorted(self.users, user_ids)
        known = rows < len(self.users)
        known[known] = self.users[rows[known]] == user_ids[known]
        cold = self.items[top_k_unseen(self.popularity[None, :].copy(), sparse.csr_matrix((1, len(self.items))), k)[0]]
        lists: TopKLists = {int(u): cold for u in user_ids[~known]}
        warm_users, warm_rows = user_ids[known], rows[known]
        for start in range(0, len(warm_rows), BATCH_USERS):
            batch = warm_rows[start : start + BATCH_USERS]
            top = top_k_unseen(self._scores(batch), self.seen[batch], k)
            for user, columns in zip(warm_users[start : start + BATCH_USERS], top, strict=True):
                lists[int(user)] = self.items[columns]
        return lists


def top_k_unseen(scores: np.ndarray, seen: sparse.csr_matrix, k: int) -> list[np.ndarray]:
    """Per row of a dense [batch, items] score matrix, the column indices (int64) of its k highest scores,
    best first, among the columns not set in the matching row of `seen` (CSR [batch, items]); rows with
    fewer than k unseen columns get all of them. Equal scores are listed by column; which of several
    items tied at the k-th score gets in is argpartition's (deterministic) choice. `scores` is modified."""
    batch, n_items = scores.shape
    scores[np.repeat(np.arange(batch), np.diff(seen.indptr)), seen.indices] = -np.inf
    k = min(k, n_items)
    if k <= 0:
        return [np.zeros(0, np.int64) for _ in range(batch)]
    candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -chosen), axis=1)
    ranked = np.take_along_axis(candidates, order, axis=1)
    allowed = np.isfinite(np.take_along_axis(chosen, order, axis=1))
    return [row[ok].astype(np.int64) for row, ok in zip(ranked, allowed, strict=True)]


def popularity_scores(seen: sparse.csr_matrix) -> np.ndarray:
    """float64 [items]: a strictly decreasing score along the order (interaction count desc, column asc)."""
    counts = np.asarray(seen.sum(axis=0)).ravel()
    order = np.lexsort((np.arange(len(counts)), -counts))
    scores = np.empty(len(counts), np.float64)
    scores[order] = np.arange(len(counts), 0, -1, dtype=np.float64)
    return scores


class PopularityBaseline(Baseline):
    """The items with the most training interactions (ties by lower item id)."""

    name = "popularity"

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.popularity, (len(rows), 1))


class CooccurrenceBaseline(Baseline):
    """SAR-style item-to-item: Jaccard similarity S_ij = C_ij / (C_ii + C_jj - C_ij) of the co-occurrence
    counts C = XᵀX of the binary user x item matrix X, kept sparse; user scores X @ S."""

    name = "cooccurrence"

    def __init__(self, train: pd.DataFrame) -> None:
        super().__init__(train)
        self.similarity = jaccard_similarity(self.seen)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return (self.seen[rows] @ self.similarity).toarray()


def jaccard_similarity(seen: sparse.csr_matrix) -> sparse.csr_matrix:
    """Sparse float32 [items, items] Jaccard similarity of the item columns of a binary CSR matrix."""
    binary = seen.astype(np.float32)
    cooccurrence = (binary.T @ binary).tocoo()
    counts = np.asarray(binary.sum(axis=0)).ravel()
    union = counts[cooccurrence.row] + counts[cooccurrence.col] - cooccurrence.data
    values = (cooccurrence.data / union).astype(np.float32)
    shape = cooccurrence.shape
    return sparse.csr_matrix((values, (cooccurrence.row, cooccurrence.col)), shape=shape)


class EaseBaseline(Baseline):
    """EASE with its full (untruncated) item-to-item weights: user scores X @ B over the items it keeps; the
    others come after every kept item, by popularity."""

    name = "ease"

    def __init__(self, train: pd.DataFrame, config: EaseConfig) -> None:
        super().__init__(train)
        self.kept, self.weights = ease_weights(self.seen, config)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        scores = np.tile(self.popularity - 1e9, (len(rows), 1))
        scores[:, self.kept] = self.seen[rows][:, self.kept] @ self.weights
        return scores


class FactorBaseline(Baseline):
    """Scores user_factors @ item_factors.T of a matrix factorisation of the binary training interactions."""

    def __init__(self, train: pd.DataFrame, name: str, factorise: Factorise) -> None:
        super().__init__(train)
        self.name = name
        import implicit.cpu.als  # noqa: F401  (loads scipy's BLAS, which the limit below must already see)

        with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, a single-threaded BLAS
            user_factors, item_factors = factorise(self.seen)
        self.user_factors = np.asarray(user_factors, np.float32)
        self.item_factors = np.asarray(item_factors, np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors[rows] @ self.item_factors.T


def fit_bpr(matrix: sparse.csr_matrix, config: BPRConfig, seed: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(user factors [m, f + 1], item factors [n, f + 1]) of implicit's CPU BayesianPersonalizedRanking on a
    users x items matrix; the extra column pairs a constant 1 per user with each item's bias."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(
        factors=config.factors,
        learning_rate=config.learning_rate,
        regularization=config.regularization,
        iterations=config.iterations,
        random_state=seed,
        num_threads=threads,
    )
    model.fit(matrix, show_progress=False)
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)


def fit_baselines(
    train: pd.DataFrame,
    seed: int,
    threads: int = 1,
    cf: CFConfig = _DEFAULT_CF,
    bpr: BPRConfig = _DEFAULT_BPR,
    names: Sequence[str] = BASELINE_NAMES,
    ease: EaseConfig = _DEFAULT_EASE,
) -> list[Baseline]:
    """The baselines `names` (each one of BASELINE_NAMES) fitted on `train`, in that order.
    Deterministic for a seed with threads=1."""
    unknown = [name for name in names if name not in BASELINE_NAMES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {', '.join(unknown)}; expected some of {', '.join(BASELINE_NAMES)}")
    fitted: list[Baseline] = []
    for name in names:
        if name == "popularity":
            fitted.append(PopularityBaseline(train))
        elif name == "cooccurrence":
            fitted.append(CooccurrenceBaseline(train))
        elif name == "ease":
            fitted.append(EaseBaseline(train, ease))
        elif name == "als":
            fitted.append(FactorBaseline(train, "als", lambda matrix: fit_als(matrix, cf, seed, threads)))
        else:
            fitted.append(FactorBaseline(train, "bpr", lambda matrix: fit_bpr(matrix, bpr, seed, threads)))
    return fitted
