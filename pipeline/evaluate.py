"""Evaluates a bundle: the served top-k list against baselines; ranking AUC, per-channel recall, index recall."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from pipeline.config import TrainConfig
from pipeline.data.dataset import Dataset
from pipeline.engine import Engine, LocalEngine
from pipeline.evaluation.baselines import fit_baselines
from pipeline.evaluation.metrics import interaction_counts, list_metrics, relevant_items, sample_interval
from pipeline.index_tuning import index_recall_at
from pipeline.ranking_data import snapshot_rows
from pipeline.split import Split, column_by_user, make_split
from wren.core.bundle import Bundle
from wren.core.index.factory import build_index, load_index
from wren.core.onnx import cpu_session
from wren.core.profiles import ProfileBuilder
from wren.core.recall.channels import Channel, EmbeddingChannel, PopularityPrior, SeenFilter
from wren.core.recall.recaller import Recaller
from wren.core.schema import recall_feature_width
from wren.core.served import ServedLists, ServedListSource

log = logging.getLogger(__name__)

LOCAL = LocalEngine()


@dataclass(frozen=True)
class TestRows:
    inputs: dict[str, np.ndarray]
    labels: np.ndarray


def test_rows(bundle: Bundle, test: pd.DataFrame) -> TestRows:
    """Model inputs for test ratings from the bundle's training-time snapshot (what serving sees)."""
    items = bundle.items
    inputs, rows = snapshot_rows(
        test,
        bundle.users,
        items.ids,
        items.dense,
        items.genres,
        bundle.embeddings,
        items.has_embedding,
        recall_feature_width(len(bundle.schema.recall_channels)),
    )
    labels = (rows["rating"].to_numpy() >= bundle.positive_threshold).astype(np.float32)
    return TestRows(inputs, labels)


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    clipped = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    return {"auc": float(roc_auc_score(labels, clipped)), "logloss": float(log_loss(labels, clipped))}


def onnx_scores(session: ort.InferenceSession, inputs: dict[str, np.ndarray], batch: int = 8192) -> np.ndarray:
    n = len(inputs["item_index"])
    parts = [
        session.run(None, {name: value[start : start + batch] for name, value in inputs.items()})[0]
        for start in range(0, n, batch)
    ]
    return np.concatenate(parts) if parts else np.empty(0, np.float32)


def baseline_scores(parameters: dict, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """Logistic-regression baseline from its exported parameters (see pipeline.models.baseline)."""
    from pipeline.models.baseline import flatten_inputs

    features = flatten_inputs(inputs).astype(np.float64)
    z = (features - np.asarray(parameters["mean"])) / np.asarray(parameters["scale"])
    logit = z @ np.asarray(parameters["coef"]) + float(parameters["intercept"])
    return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)


def sample_users(users: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Ascending `users`, or a seeded sample of `cap` of them when there are more (cap 0: no limit)."""
    users = np.sort(np.asarray(users, np.int64))
    if cap and len(users) > cap:
        return np.sort(np.random.default_rng(seed).choice(users, cap, replace=False))
    return users


def recall_metrics(
    recaller: Recaller,
    bundle: Bundle,
    test: pd.DataFrame,
    ks: tuple[int, ...],
    max_users: int,
    seed: int,
    extra_channels: tuple[Channel, ...] = (),
) -> tuple[dict[str, dict[str, float]], int, np.ndarray]:
    """Recall@K, NDCG@K and HR@K per channel (plus `extra_channels`, e.g. baselines) and for the merged
    list, over test positives the user had not seen in training. Returns (metrics, users evaluated,
    the evaluated users' embeddings as index queries)."""
    builder = ProfileBuilder.from_bundle(bundle)
    users = bundle.users
    positives = test[test["rating"] >= bundle.positive_threshold]
    by_user = column_by_user(positives)
    user_ids = sample_users(np.array([u for u in by_user if users.row(u) is not None], np.int64), max_users, seed)
    depth = max(ks)
    discount = 1.0 / np.log2(np.arange(2, depth + 2))
    sums: dict[str, np.ndarray] = {}
    evaluated, queries = 0, []
    for user_id in user_ids.tolist():
        user_row = users.row(user_id)
        if user_row is None:  # sampled from users with a row: never
            continue
        profile = builder.profile(user_id, builder.snapshot_state(users, user_row))
        relevant = np.setdiff1d(by_user[user_id], profile.rated_items)
        if len(relevant) == 0:
            continue
        evaluated += 1
        if profile.embedding is not None:
            queries.append(profile.embedding)
        proposals = recaller.proposals(profile, depth)
        seen = SeenFilter(profile.rated_items)
        lists = {name: ids for name, (ids, _) in proposals.items()}
        lists.update({channel.name: channel.propose(profile, depth, seen)[0] for channel in extra_channels})
        lists["merged"] = recaller.merge(proposals, depth).item_ids
        ideal = np.cumsum(discount[: len(relevant)])
        for name, ids in lists.items():
            hits = np.zeros(depth, bool)
            hits[: len(ids)] = np.isin(ids[:depth], relevant)
            row = []
            for k in ks:
                ndcg = (hits[:k] * discount[:k]).sum() / ideal[min(k, len(relevant)) - 1]
                row += [hits[:k].sum() / len(relevant), ndcg, float(hits[:k].any())]
            sums[name] = sums.get(name, 0.0) + np.array(row)
    metrics: dict[str, dict[str, float]] = {}
    for name, total in sums.items():
        mean = total / max(evaluated, 1)
        metrics[name] = {}
        for i, k in enumerate(ks):
            metrics[name].update(
                {
                    f"recall_at_{k}": float(mean[3 * i]),
                    f"ndcg_at_{k}": float(mean[3 * i + 1]),
                    f"hr_at_{k}": float(mean[3 * i + 2]),
                }
            )
    return metrics, evaluated, np.array(queries, np.float32).reshape(-1, bundle.embedding_dim)


class _Renamed:
    """A channel reported under another name (e.g. the embedding channel over exact search)."""

    def __init__(self, channel: Channel, name: str) -> None:
        self.channel, self.name = channel, name

    def propose(self, user, depth, seen):
        return self.channel.propose(user, depth, seen)


def bundle_split(bundle: Bundle, dataset: Dataset) -> Split:
    """The split the bundle was trained on (its protocol, test fraction and seed), recomputed from the data."""
    evaluation = bundle.manifest.evaluation
    return make_split(dataset.ratings, evaluation.protocol, evaluation.test_fraction, evaluation.seed)


def _served_in_shards(
    engine: Engine, source: ServedListSource, bundle_dir: Path, users: np.ndarray, k: int, progress: bool
) -> ServedLists:
    """The served lists of `users`, fetched in one call per engine slot (each slot serves its own shard)."""
    shards = [shard for shard in np.array_split(np.asarray(users, np.int64), engine.parallelism) if len(shard)]
    if len(shards) <= 1:
        return source(bundle_dir, users.tolist(), k, progress=progress)
    parts = engine.map(source, [(bundle_dir, shard.tolist(), k) for shard in shards])
    lists = {user: ids for part in parts for user, ids in part.lists.items()}
    return ServedLists(lists, sum(part.degraded for part in parts), parts[0].source)


def _baseline_lists(name: str, train: pd.DataFrame, users: np.ndarray, k: int, config: TrainConfig) -> dict:
    """One baseline fitted on `train` and its top-k for `users` (one engine call)."""
    (baseline,) = fit_baselines(train, config.seed, config.threads, config.cf, names=[name], ease=config.ease)
    return baseline.recommend(users, k)


def served_metrics(
    bundle: Bundle,
    dataset: Dataset,
    config: TrainConfig,
    served_lists: ServedListSource,
    progress: bool = False,
    engine: Engine = LOCAL,
) -> dict:
    """The served top-k list against the held-out part, beside the baselines fitted on the same training part,
    with the same metric code. `served_lists` fetches Wren's lists (the serving code in this process, or a
    running gateway over HTTP); `engine` runs the lists' shards and the baselines (pipeline.engine). Past
    `evaluation.max_users` test users, every system is scored on the same seeded sample of them; `ndcg_ci95` is
    then each system's 95 % interval half-width (0 without sampling)."""
    split = bundle_split(bundle, dataset)
    k = config.evaluation.k
    relevant = relevant_items(split.test[split.test["user_id"].isin(split.train["user_id"])])
    population = len(relevant)
    users = sample_users(np.fromiter(relevant, np.int64, len(relevant)), config.evaluation.max_users, config.seed)
    if len(users) < population:
        relevant = {int(u): relevant[int(u)] for u in users}
    served = _served_in_shards(engine, served_lists, bundle.path, users, k, progress)
    lists = served.lists
    popularity = interaction_counts(split.train)
    catalog = len(bundle.items.ids)
    rows = {"wren": list_metrics(lists, relevant, k, catalog, popularity)}
    rated = split.train.groupby("user_id")["item_id"].apply(lambda s: set(s.tolist()))
    rows["wren"]["rated_items_served"] = int(
        sum(len(rated.get(u, set()) & set(ids.tolist())) for u, ids in lists.items())
    )
    rows["wren"]["degraded_answers"] = served.degraded
    train = engine.put(split.train)
    baseline_lists = engine.map(
        _baseline_lists, [(name, train, users, k, config) for name in config.evaluation.baselines]
    )
    for name, baseline in zip(config.evaluation.baselines, baseline_lists, strict=True):
        rows[name] = list_metrics(baseline, relevant, k, catalog, popularity)
    best = max((name for name in rows if name != "wren"), key=lambda name: rows[name][f"ndcg_at_{k}"])
    ndcg = rows["wren"][f"ndcg_at_{k}"]
    return {
        "protocol": bundle.manifest.evaluation.protocol,
        "k": k,
        "users": int(len(users)),
        "population": int(population),
        "ndcg_ci95": {
            name: sample_interval(row[f"ndcg_at_{k}_sd"], len(users), population) if len(users) else 0.0
            for name, row in rows.items()
        },
        "source": served.source,
        "systems": rows,
        "best_baseline": best,
        "vs_best_baseline": ndcg / max(rows[best][f"ndcg_at_{k}"], 1e-12),
        "vs_popularity": ndcg / max(rows.get("popularity", {}).get(f"ndcg_at_{k}", 0.0), 1e-12),
    }


def evaluate_bundle(
    bundle: Bundle,
    dataset: Dataset,
    config: TrainConfig,
    served_lists: ServedListSource,
    progress: bool = False,
    engine: Engine = LOCAL,
) -> dict:
    """Every metric the manifest carries except timings, recomputed from the bundle and the data: the served
    list first; then, secondary, ranking AUC on the test ratings, per-channel recall and index recall."""
    served = served_metrics(bundle, dataset, config, served_lists, progress=progress, engine=engine)
    split = bundle_split(bundle, dataset)
    bundle = Bundle(bundle.path, "evaluation")
    # the rating AUC is secondary: on a large test part, the rows of a seeded sample of its users suffice
    auc_users = sample_users(split.test["user_id"].unique(), config.evaluation.max_users, config.seed)
    rows = test_rows(bundle, split.test[split.test["user_id"].isin(auc_users)])
    models: dict[str, dict[str, float]] = {}
    for name in bundle.model_names:
        session = cpu_session(bundle.model_path(name), config.threads)
        models[name] = ranking_metrics(rows.labels, onnx_scores(session, rows.inputs))
    baseline = json.loads(bundle.file("baseline.json").read_text())
    baseline_metrics = ranking_metrics(rows.labels, baseline_scores(baseline, rows.inputs))
    default = models[bundle.default_model]

    recaller = Recaller.from_bundle(bundle, config.index.kind)
    catalog = recaller.catalog
    exact = build_index(
        "exact", bundle.embedding_dim, catalog.ids[catalog.has_embedding], catalog.embeddings[catalog.has_embedding]
    )
    exact_channel = _Renamed(
        EmbeddingChannel(replace(catalog, index=exact), PopularityPrior(catalog, config.recall.popularity_prior)),
        "embedding_exact",
    )
    channel_metrics, evaluated, queries = recall_metrics(
        recaller,
        bundle,
        split.test,
        config.recall.eval_ks,
        config.recall.eval_max_users,
        config.seed,
        extra_channels=(exact_channel,),
    )
    rng = np.random.default_rng(config.seed)
    warm_rows = np.flatnonzero(catalog.has_embedding)
    item_queries = catalog.embeddings[rng.choice(warm_rows, min(1000, len(warm_rows)), replace=False)]
    queries = np.vstack([queries, item_queries])
    # The graph itself is measured: a query this size may otherwise be answered by HNSW's exact scan.
    graph_only = {"hnsw": {"full_scan_share": 0.0}, "lsh": {}}
    index_metrics = {
        f"{kind}_recall_at_100": index_recall_at(
            load_index(kind, bundle.index_dir(kind), {**bundle.index_params(kind), **graph_only[kind]}), exact, queries
        )
        for kind in ("hnsw", "lsh")
    }

    return {
        "served": served,
        "ranking": {
            "auc": default["auc"],
            "logloss": default["logloss"],
            "baseline_auc": baseline_metrics["auc"],
            "baseline_logloss": baseline_metrics["logloss"],
            "test_rows": int(len(rows.labels)),
            "positive_rate": float(rows.labels.mean()) if len(rows.labels) else 0.0,
        },
        "models": models,
        "baseline": baseline_metrics,
        "index": {**index_metrics, "queries": int(len(queries))},
        "recall": channel_metrics,
        "recall_users": evaluated,
    }
