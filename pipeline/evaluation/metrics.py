"""Top-K list metrics (NDCG, precision, recall, MAP, coverage, popularity) in the Microsoft Recommenders conventions."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

TopKLists = dict[int, np.ndarray]
"""user id -> ranked item ids (int64), best first, without duplicates."""


def relevant_items(test: pd.DataFrame) -> dict[int, np.ndarray]:
    """user id -> ascending distinct int64 ids of every item the user rated in `test` (columns user_id,
    item_id). Every held-out rating is relevant, whatever its value; users without test ratings are absent."""
    users = test["user_id"].to_numpy(np.int64)
    items = test["item_id"].to_numpy(np.int64)
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    first = np.ones(len(users), bool)
    first[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    users, items = users[first], items[first]
    if len(users) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return {int(u): chunk for u, chunk in zip(users[starts], np.split(items, starts[1:]), strict=True)}


def interaction_counts(train: pd.DataFrame) -> pd.Series:
    """item id -> number of rows of `train` (column item_id) with that item: the `popularity` of list_metrics."""
    return train["item_id"].value_counts().astype(np.int64)


def list_metrics(
    lists: TopKLists,
    relevant: Mapping[int, np.ndarray],
    k: int,
    catalog_size: int,
    popularity: pd.Series | Mapping[int, int],
) -> dict[str, float]:
    """Binary-relevance top-k metrics, averaged over every user in `relevant`.

    lists: user id -> ranked item ids, best first. Only the first k count; a list must not repeat an
        item (ValueError naming the user). A user of `relevant` without a list scores 0 everywhere and a
        short list merely has fewer chances to hit: nobody is skipped. Users absent from `relevant` are ignored.
    relevant: user id -> the user's held-out items (see `relevant_items`).
    catalog_size: number of recommendable items, the denominator of `coverage`.
    popularity: item id -> training interaction count (see `interaction_counts`); absent items count 0.

    Per user, with hits h_i in {0, 1} at 1-based list positions i <= k and R = |relevant items|:
      precision@k = sum h_i / k;   recall@k = sum h_i / R;
      NDCG@k = (sum h_i / log2(i + 1)) / (sum over i <= min(R, k) of 1 / log2(i + 1));
      MAP@k = (sum h_i * precision@i) / min(R, k).
    coverage = distinct items over all evaluated (truncated) lists / catalog_size; mean_popularity =
    mean popularity over all their list slots; users = number of users evaluated.
    Keys: ndcg_at_{k}, precision_at_{k}, recall_at_{k}, map_at_{k}, coverage, mean_popularity, users, and the
    per-user standard deviation of the first four as {name}_sd (for `sample_interval`).
    Every value is 0 when there is no user to evaluate.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if catalog_size < 1:
        raise ValueError(f"catalog_size must be at least 1, got {catalog_size}")
    users = np.fromiter(relevant.keys(), np.int64, len(relevant))
    rows, positions, items = _flatten([_item_array(lists.get(int(u), ())) for u in users])
    relevant_rows, _, relevant_flat = _flatten([_item_array(relevant[int(u)]) for u in users])
    keys, relevant_keys, width = _pair_keys(rows, items, relevant_rows, relevant_flat)
    _reject_duplicates(users, keys, width)

    in_top = positions < k
    rows, positions, items, keys = rows[in_top], positions[in_top], items[in_top], keys[in_top]
    if np.any(relevant_keys[1:] <= relevant_keys[:-1]):
        relevant_keys = _distinct(relevant_keys)
    n_relevant = np.bincount(relevant_keys // width, minlength=len(users))
    found = np.minimum(np.searchsorted(relevant_keys, keys), max(len(relevant_keys) - 1, 0))
    hit = relevant_keys[found] == keys if len(relevant_keys) else np.zeros(len(keys), bool)
    hits = np.zeros((len(users), k), bool)
    hits[rows[hit], positions[hit]] = True

    result = _ranking_scores(hits, n_relevant, k)
    result["coverage"] = len(_distinct(items)) / catalog_size
    counts = popularity if isinstance(popularity, pd.Series) else pd.Series(dict(popularity), dtype=np.int64)
    slot_counts = counts.reindex(items, fill_value=0).to_numpy(np.float64)
    result["mean_popularity"] = float(slot_counts.mean()) if len(slot_counts) else 0.0
    result["users"] = float(len(users))
    return result


def _ranking_scores(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, float]:
    """Mean NDCG/precision/recall/MAP at k of a [users, k] hit matrix, each user having n_relevant items."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.r_[0.0, np.cumsum(discounts)][np.minimum(n_relevant, k)]
    attainable = np.minimum(n_relevant, k)
    n_hits = hits.sum(axis=1)
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    per_user = {
        f"ndcg_at_{k}": _ratio(hits @ discounts, ideal),
        f"precision_at_{k}": n_hits / k,
        f"recall_at_{k}": _ratio(n_hits, n_relevant),
        f"map_at_{k}": _ratio((precision_at_i * hits).sum(axis=1), attainable),
    }
    means = {name: float(values.mean()) if len(values) else 0.0 for name, values in per_user.items()}
    spread = {f"{name}_sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0 for name, values in per_user.items()}
    return {**means, **spread}


def sample_interval(sd: float, sample: int, population: int, z: float = 1.96) -> float:
    """Half-width of the (default 95 %) normal confidence interval of a mean over `sample` users drawn without
    replacement from `population`, given the per-user standard deviation: z * sd / sqrt(n) * sqrt((N - n) /
    (N - 1)). 0 when the sample is the whole population."""
    if sample < 1 or population < sample:
        raise ValueError(f"need 1 <= sample <= population, got {sample} of {population}")
    if sample == population:
        return 0.0
    return z * sd / np.sqrt(sample) * np.sqrt((population - sample) / (population - 1))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    out = np.zeros(len(numerator), np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _distinct(values: np.ndarray) -> np.ndarray:
    """Ascending distinct values; by sorting, several times faster than numpy 2's hash-based np.unique here."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _item_array(items: object) -> np.ndarray:
    return np.asarray(items, np.int64).reshape(-1)


def _flatten(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, 0-based position within its row, value) of every element of a list of 1-d int64 arrays."""
    lengths = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
    values = np.concatenate(arrays).astype(np.int64, copy=False) if arrays else np.zeros(0, np.int64)
    starts = np.cumsum(lengths) - lengths
    positions = np.arange(len(values)) - np.repeat(starts, lengths)
    return np.repeat(np.arange(len(arrays)), lengths), positions, values


def _pair_keys(
    rows_a: np.ndarray, items_a: np.ndarray, rows_b: np.ndarray, items_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """(keys_a, keys_b, width): one int64 key row * width + code(item) per (row, item) pair of either
    set, equal exactly for equal pairs; the row of a key is key // width. Codes are item - min item,
    or dense ranks when that range times the rows could overflow int64."""
    items = np.concatenate([items_a, items_b])
    rows = np.concatenate([rows_a, rows_b])
    if len(items) == 0:
        return items_a.copy(), items_b.copy(), 1
    low = int(items.min())
    width = int(items.max()) - low + 1
    if (int(rows.max()) + 1) * width < 2**62:
        codes = items - low
    else:
        distinct, codes = np.unique(items, return_inverse=True)
        width = len(distinct)
    keys = rows * width + codes
    return keys[: len(items_a)], keys[len(items_a) :], width


def _reject_duplicates(users: np.ndarray, keys: np.ndarray, width: int) -> None:
    """ValueError naming the first user (in `users` order) whose list repeats an item, given its pair keys."""
    ordered = np.sort(keys)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated):
        raise ValueError(f"the list of user {int(users[int(repeated.min()) // width])} repeats an item")
