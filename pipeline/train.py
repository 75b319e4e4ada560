"""`wren train`: data -> features, embeddings, indexes, ranking models -> an evaluated, published bundle."""
# Long: one run is one sequence of steps over shared state (split, models, rows, manifest); the work is elsewhere.

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import catalogue, coldstart, content, embeddings, features
from pipeline.config import TrainConfig
from pipeline.crossfit import ItemSide, crossfit_rows, sample_label_users
from pipeline.data.dataset import Dataset
from pipeline.data.loaders import load_dataset
from pipeline.embedding_indexes import build_indexes
from pipeline.engine import Engine
from pipeline.evaluate import LOCAL, evaluate_bundle
from pipeline.events import merge_events
from pipeline.models.trainer import predict
from pipeline.progress import Steps
from pipeline.quotas import fit_quotas, scores_by_user
from pipeline.ranking_training import RankingResult, train_rankers
from pipeline.recall_models import fit_recall_models, save_recall_models
from pipeline.report import summary_table, write_report
from pipeline.split import Split, column_by_user, make_split
from pipeline.users import align_segments, user_table
from wren.core.bundle import Bundle, UserTable
from wren.core.bundle_writer import BundleWriter, data_fingerprint, new_version
from wren.core.manifest import FORMAT_VERSION, Manifest, RecallEntry
from wren.core.recall.channels import CHANNELS
from wren.core.rerank import MAX_GENRE_SHARE
from wren.core.schema import ITEM_DENSE, USER_COUNTERS, USER_DENSE
from wren.core.served import ServedListSource

STEPS = 8


@dataclass(frozen=True)
class TrainResult:
    bundle_dir: Path
    manifest: Manifest


def train(
    data_dir: Path,
    out_root: Path,
    config: TrainConfig,
    served_lists: ServedListSource,
    progress: bool = True,
    events: Path | None = None,
    engine: Engine = LOCAL,
) -> TrainResult:
    """Runs the whole pipeline; the new bundle becomes OUT/current only once complete and evaluated.

    The evaluation protocol's split holds out a test part. Models learn from the training part only; the
    served user table covers every rating, the evaluation user table (eval/users.npz) the training part.
    Within the training part, a held-out share of each user's ratings labels the rankers' candidate rows;
    recall models that never saw those labels propose the candidates (cross-fitted, pipeline.crossfit). `events`:
    a nearline event log directory whose rating events join the data (pipeline.events.merge_events).
    `served_lists` serves the bundle's lists for its evaluation (the CLI hands in services.inprocess.served_lists);
    `engine` runs the evaluation's independent parts (pipeline.engine: here, or on a Ray cluster).
    Torch's process-wide thread count is set for the run and restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    steps = Steps(STEPS, enabled=progress)
    try:
        _seed_everything(config)
        return _run(data_dir, out_root, config, served_lists, engine, steps, progress, events)
    finally:
        steps.close()
        torch.set_num_threads(threads)


def _run(
    data_dir: Path,
    out_root: Path,
    config: TrainConfig,
    served_lists: ServedListSource,
    engine: Engine,
    steps: Steps,
    progress: bool,
    events: Path | None,
) -> TrainResult:
    started = time.perf_counter()

    with steps.step("loading data"):
        dataset = load_dataset(data_dir, progress=progress)
        if events is not None:
            dataset = merge_events(dataset, events)
        fingerprint = data_fingerprint(dataset.files)
    version = new_version(fingerprint)
    with BundleWriter(out_root, version) as writer:
        with steps.step(f"splitting ({config.evaluation.protocol} protocol) and computing features"):
            split = make_split(
                dataset.ratings, config.evaluation.protocol, config.evaluation.test_fraction, config.seed
            )
            labels = make_split(
                split.train, config.evaluation.protocol, config.ranking.ranker_fraction, config.seed + 1
            )
            history = labels.train
            genres = features.genre_vocabulary(dataset.items)
            items = features.item_features(
                split.train,
                dataset.items,
                genres,
                config.positive_threshold,
                config.cold_start.popularity_half_life_days,
            )
            # the user tables read only the catalogue's genres from `items`
            eval_users, segment_kind = user_table(
                split.train, items, dataset.users, config.positive_threshold, config.recent_len
            )
            history_users = user_table(history, items, dataset.users, config.positive_threshold, config.recent_len)[0]
            served_users = user_table(
                dataset.ratings, items, dataset.users, config.positive_threshold, config.recent_len
            )[0]
            eval_users, history_users, served_users = align_segments(eval_users, history_users, served_users)
            space, content_matrix = content.build_content(
                items.ids,
                items.genres,
                genres,
                content.training_tags(dataset.tags, split.user_cutoff),
                config.content.genre_weight,
                config.content.tag_weight,
                config.content.min_item_frequency,
            )
        with steps.step(f"training {config.embedding.method} embeddings"):
            trained_vectors, trained = embeddings.train_embeddings(
                history, items.ids, config.positive_threshold, config.embedding, config.seed, progress
            )
            positives = np.bincount(
                items.rows(history["item_id"].to_numpy()[history["rating"].to_numpy() >= config.positive_threshold]),
                minlength=len(items.ids),
            )
            vectors, has_embedding, cold_report = coldstart.fill_cold_embeddings(
                trained_vectors,
                trained,
                positives,
                content_matrix,
                config.cold_start.min_interactions,
                config.cold_start.content_neighbours,
            )
            indexes, calibration = build_indexes(items.ids[has_embedding], vectors[has_embedding], config)
        with steps.step(f"recall models and ranking candidates ({config.ranking.folds} cross-fitted folds)"):
            rng = np.random.default_rng(config.seed)
            label_rows, unlabelled = sample_label_users(labels.test, config.ranking.max_label_users, rng)
            held_users = np.unique(label_rows["user_id"].to_numpy(np.int64))
            valid_users = rng.choice(
                held_users, max(1, int(len(held_users) * config.ranking.validation_users)), replace=False
            )
            item_side = ItemSide(
                dataset.items, genres, vectors, has_embedding, indexes[config.index.kind], content_matrix, space
            )
            # the other users' held-out ratings stay in every fold's fit: only the sampled users label rows
            fold_history = pd.concat([history, unlabelled]) if len(unlabelled) else history
            ranking_rows = crossfit_rows(fold_history, label_rows, history_users, valid_users, item_side, config)
            fit_rows, valid_rows, proposals = ranking_rows.fit, ranking_rows.valid, ranking_rows.proposals
        with steps.step("training ranking models"):
            ranking = train_rankers(fit_rows, valid_rows, vectors, has_embedding, config, writer, progress)
        with steps.step("fitting recall quotas for the served list on validation users"):
            model = ranking.models[ranking.default_model]
            by_user = scores_by_user(valid_rows, predict(model, valid_rows.inputs))
            is_valid = labels.test["user_id"].isin(valid_users)
            held = column_by_user(labels.test[is_valid])
            names = np.array(genres)
            quotas, search = fit_quotas(
                {u: p for u, p in proposals.items() if u in held},
                held,
                lambda user, ids: np.array([by_user[user].get(int(i), -np.inf) for i in ids]),
                lambda ids: [list(names[items.genres[r].astype(bool)]) for r in items.rows(ids)],
                config.recall.candidates,
                config.evaluation.k,
                MAX_GENRE_SHARE,
            )
        with steps.step("refitting recall models on the whole training part and writing the bundle"):
            served = fit_recall_models(split.train, dataset.items, genres, eval_users, config)
            cf_entry = save_recall_models(served, writer, config)
            index_params = {kind: index.save(writer.path(f"index/{kind}/")) for kind, index in indexes.items()}
            _write_users(writer, "users.npz", served_users)
            _write_users(writer, "eval/users.npz", eval_users)
            items = served.items
            catalogue_arrays, catalogue_lists = catalogue.catalogue_columns(dataset, items.ids)
            writer.save_npz(
                "items.npz",
                ids=items.ids,
                dense=items.dense,
                genres=items.genres,
                years=items.years,
                popularity=items.popularity,
                has_embedding=has_embedding,
                counters=items.counters,
                **catalogue_arrays,
            )
            writer.save_json("items.json", {"titles": _titles(dataset, items.ids), **catalogue_lists})
            writer.save_npy("embeddings.npy", vectors * has_embedding[:, None])
            writer.save_npz(
                "content.npz",
                data=content_matrix.data,
                indices=content_matrix.indices,
                indptr=content_matrix.indptr,
                shape=np.array(content_matrix.shape),
            )
            writer.save_json(
                "content_vocab.json",
                {
                    "genres": space.genres,
                    "tags": space.tags,
                    "idf": space.idf.tolist(),
                    "genre_weight": space.genre_weight,
                    "tag_weight": space.tag_weight,
                },
            )
            writer.save_json(
                "coldstart.json",
                {
                    "segments": served.segments,
                    "popular": served.popular,
                    "default_segment": coldstart.NEW_SEGMENT,
                },
            )
            manifest = _manifest(
                version,
                fingerprint,
                dataset,
                split,
                config,
                items,
                served_users,
                eval_users,
                genres,
                has_embedding,
                cold_report,
                segment_kind,
                index_params,
                ranking,
            )
            manifest.cf = cf_entry
            manifest.index_calibration = calibration
            manifest.item_graphs = sorted(served.graphs)
            manifest.recall = RecallEntry.model_validate(
                {"quotas": quotas, "candidates": config.recall.candidates, "quota_search": search}
            )
            writer.write_manifest(manifest)
        with steps.step("evaluating the served list on the test split"):
            metrics = evaluate_bundle(
                Bundle(writer.staging), dataset, config, served_lists, progress=progress, engine=engine
            )
        metrics["train_seconds"] = round(time.perf_counter() - started, 2)
        metrics["step_seconds"] = {k: round(v, 2) for k, v in steps.timings.items()}
        metrics["step_peak_mb"] = {k: round(v, 1) for k, v in steps.peak_mb.items()}
        for name, model_metrics in metrics["models"].items():
            manifest.models[name].metrics = model_metrics
        manifest.metrics = metrics
        writer.write_manifest(manifest)
        write_report(writer.path("report"), manifest, ranking.histories)
        bundle_dir = writer.publish()
    if progress:
        print(summary_table(manifest))
        print(f"bundle {version} written to {bundle_dir} (now {out_root / 'current'})")
    return TrainResult(bundle_dir, manifest)


def _write_users(writer: BundleWriter, relative: str, users: UserTable) -> None:
    if users.rated_ratings is None or users.rated_timestamps is None:  # optional only in bundles from before them
        raise ValueError("a user table built by training holds every rating and its timestamp")
    writer.save_npz(
        relative,
        ids=users.ids,
        counters=users.counters,
        genre_counts=users.genre_counts,
        genre_rated=users.genre_rated,
        genre_rating_sum=users.genre_rating_sum,
        recent=users.recent,
        rated_indptr=users.rated_indptr,
        rated_ids=users.rated_ids,
        segment=users.segment,
        rated_ratings=users.rated_ratings,
        rated_timestamps=users.rated_timestamps,
    )


def _seed_everything(config: TrainConfig) -> None:
    import torch

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)


def _titles(dataset: Dataset, ids: np.ndarray) -> list[str]:
    titles = dataset.items.set_index("item_id")["title"]
    return [str(titles.get(int(i), "")) for i in ids]


def _manifest(
    version: str,
    fingerprint: str,
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    items: features.ItemFeatures,
    users: UserTable,
    eval_users: UserTable,
    genres: list[str],
    has_embedding: np.ndarray,
    cold_report: dict,
    segment_kind: str,
    index_params: dict,
    ranking: RankingResult,
) -> Manifest:
    return Manifest.model_validate(
        {
            "format_version": FORMAT_VERSION,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_fingerprint": fingerprint,
            "data": {
                "layout": dataset.layout,
                "files": [p.name for p in dataset.files],
                "dropped": dict(dataset.dropped),
            },
            "data_cutoff": int(split.train["timestamp"].max()),
            "config": config.model_dump(),
            "counts": {
                "ratings": int(len(dataset.ratings)),
                "train_ratings": int(len(split.train)),
                "test_ratings": int(len(split.test)),
                "users": int(dataset.ratings["user_id"].nunique()),
                "served_users": int(len(users.ids)),
                "train_users": int(len(eval_users.ids)),
                "items": int(len(items.ids)),
                "items_with_embedding": int(has_embedding.sum()),
                "tags": int(len(dataset.tags)),
                "genres": len(genres),
            },
            "feature_schema": {
                "genres": genres,
                "user_counters": list(USER_COUNTERS),
                "user_dense": list(USER_DENSE),
                "item_dense": list(ITEM_DENSE),
                "recent_len": config.recent_len,
                "embedding_dim": config.embedding.dim,
                "recall_channels": list(CHANNELS),
            },
            "evaluation": {
                "protocol": config.evaluation.protocol,
                "test_fraction": config.evaluation.test_fraction,
                "seed": config.seed,
            },
            "embedding_dim": config.embedding.dim,
            "embedding": {"method": config.embedding.method, **cold_report},
            "indexes": index_params,
            "cold_start": {
                "kind": segment_kind,
                "segments": users.segment_names,
                "default_segment": coldstart.NEW_SEGMENT,
            },
            "models": ranking.entries,
            "default_model": ranking.default_model,
            "signature": ranking.entries[ranking.default_model]["signature"],
        }
    )
