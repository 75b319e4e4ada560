"""`wren train`: data -> features, embeddings, indexes, ranking models -> an evaluated, published bundle."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pipeline import coldstart, content, embeddings, features
from pipeline.bundle_writer import BundleWriter, data_fingerprint, new_version
from pipeline.config import TrainConfig
from pipeline.data.dataset import Dataset
from pipeline.data.loaders import load_dataset
from pipeline.evaluate import evaluate_bundle
from pipeline.progress import Steps
from pipeline.quotas import fit_quotas
from pipeline.ranking_training import RankingResult, embedding_rows, train_rankers
from pipeline.report import plot_training, summary_table
from pipeline.split import Split, tail_mask, time_split
from pipeline.users import user_table
from services.common.bundle import FORMAT_VERSION, Bundle, UserTable
from services.common.schema import ITEM_DENSE, USER_COUNTERS, USER_DENSE
from services.recall.index.base import VectorIndex
from services.recall.index.factory import build_index

STEPS = 10


@dataclass(frozen=True)
class TrainResult:
    bundle_dir: Path
    manifest: dict


def train(data_dir: Path, out_root: Path, config: TrainConfig, progress: bool = True) -> TrainResult:
    """Runs the whole pipeline; the new bundle becomes OUT/current only once complete and evaluated."""
    started = time.perf_counter()
    steps = Steps(STEPS, enabled=progress)
    _seed_everything(config)

    with steps.step("loading data"):
        dataset = load_dataset(data_dir, progress=progress)
        fingerprint = data_fingerprint(dataset.files)
    version = new_version(fingerprint)
    with BundleWriter(out_root, version) as writer:
        with steps.step("splitting and computing features"):
            split = time_split(dataset.ratings, config.test_fraction)
            genres = features.genre_vocabulary(dataset.items)
            items = features.item_features(
                split.train, dataset.items, genres, config.positive_threshold,
                config.cold_start.popularity_half_life_days,
            )
            space, content_matrix = content.build_content(
                items.ids, items.genres, genres, content.training_tags(dataset.tags, split.user_cutoff),
                config.content.genre_weight, config.content.tag_weight, config.content.min_item_frequency,
            )
            users, segment_kind = user_table(
                split.train, items, dataset.users, config.positive_threshold, config.recent_len
            )
        with steps.step(f"training {config.embedding.method} embeddings"):
            history = embedding_rows(split.train, config)
            trained_vectors, trained = embeddings.train_embeddings(
                history, items.ids, config.positive_threshold, config.embedding, config.seed, progress
            )
            positives = np.bincount(
                items.rows(history["item_id"].to_numpy()[history["rating"].to_numpy() >= config.positive_threshold]),
                minlength=len(items.ids),
            )
            vectors, has_embedding, cold_report = coldstart.fill_cold_embeddings(
                trained_vectors, trained, positives, content_matrix,
                config.cold_start.min_interactions, config.cold_start.content_neighbours,
            )
        with steps.step("cold-start segments and popular lists"):
            segment_lists, popular = coldstart.segment_popular_lists(
                split.train, users.ids, users.segment, users.segment_names, items.ids, items.popularity,
                config.positive_threshold, config.cold_start.segment_list_size,
            )
        with steps.step("building vector indexes (hnsw, lsh, exact)"):
            index_params = {
                kind: index.save(writer.path(f"index/{kind}/"))
                for kind, index in _build_indexes(items.ids[has_embedding], vectors[has_embedding], config).items()
            }
        with steps.step("training ranking models"):
            ranking = train_rankers(
                split, items, vectors, has_embedding, users, config, writer, progress
            )
        with steps.step("writing the bundle"):
            writer.save_npz(
                "items.npz", ids=items.ids, dense=items.dense, genres=items.genres, years=items.years,
                popularity=items.popularity, has_embedding=has_embedding, counters=items.counters,
            )
            writer.save_json("items.json", {"titles": _titles(dataset, items.ids)})
            writer.save_npz(
                "users.npz", ids=users.ids, counters=users.counters, genre_counts=users.genre_counts,
                genre_rated=users.genre_rated, genre_rating_sum=users.genre_rating_sum,
                recent=users.recent, rated_indptr=users.rated_indptr, rated_ids=users.rated_ids,
                segment=users.segment,
            )
            writer.save_npy("embeddings.npy", vectors * has_embedding[:, None])
            writer.save_npz(
                "content.npz", data=content_matrix.data, indices=content_matrix.indices,
                indptr=content_matrix.indptr, shape=np.array(content_matrix.shape),
            )
            writer.save_json("content_vocab.json", {
                "genres": space.genres, "tags": space.tags, "idf": space.idf.tolist(),
                "genre_weight": space.genre_weight, "tag_weight": space.tag_weight,
            })
            writer.save_json("coldstart.json", {
                "segments": segment_lists, "popular": popular, "default_segment": coldstart.NEW_SEGMENT,
            })
            manifest = _manifest(
                version, fingerprint, dataset, split, config, items, users, genres, has_embedding,
                cold_report, segment_kind, index_params, ranking,
            )
            writer.write_manifest(manifest)
        with steps.step("fitting recall quotas on the validation holdout"):
            manifest["recall"] = _fit_recall_quotas(Bundle(writer.staging), split, items, dataset, config)
            writer.write_manifest(manifest)
        with steps.step("evaluating the bundle on the test split"):
            metrics = evaluate_bundle(Bundle(writer.staging), dataset, config)
            metrics["train_seconds"] = round(time.perf_counter() - started, 2)
            metrics["step_seconds"] = {k: round(v, 2) for k, v in steps.timings.items()}
            for name, model_metrics in metrics["models"].items():
                manifest["models"][name]["metrics"] = model_metrics
            manifest["metrics"] = metrics
            writer.write_manifest(manifest)
            plot_training(ranking.histories, metrics, writer.path("report/training_curves.png"))
            writer.path("report/summary.txt").write_text(summary_table(manifest) + "\n")
        bundle_dir = writer.publish()
    if progress:
        print(summary_table(manifest))
        print(f"bundle {version} written to {bundle_dir} (now {out_root / 'current'})")
    return TrainResult(bundle_dir, manifest)


def _seed_everything(config: TrainConfig) -> None:
    import torch

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)


def _build_indexes(ids: np.ndarray, vectors: np.ndarray, config: TrainConfig) -> dict[str, VectorIndex]:
    dim = vectors.shape[1]
    return {
        "hnsw": build_index("hnsw", dim, ids, vectors, m=config.index.m, ef_construction=config.index.ef_construction,
                            ef_search=config.index.ef_search, full_scan_share=config.index.full_scan_share,
                            seed=config.seed),
        "lsh": build_index("lsh", dim, ids, vectors, n_tables=config.index.lsh_tables,
                           n_projections=config.index.lsh_projections, seed=config.seed),
        "exact": build_index("exact", dim, ids, vectors),
    }


def _fit_recall_quotas(
    bundle: Bundle, split: Split, items: features.ItemFeatures, dataset: Dataset, config: TrainConfig
) -> dict:
    """Quotas fitted on each user's last training ratings, with profiles from the ratings before them."""
    held_out = tail_mask(split.train, config.ranking.validation_fraction)
    before = split.train[~held_out]
    validation_users: UserTable = user_table(
        before, items, dataset.users, config.positive_threshold, config.recent_len
    )[0]
    k = config.recall.candidates
    quotas, search = fit_quotas(
        bundle, validation_users, split.train[held_out], k, config.recall.eval_max_users, config.seed
    )
    return {"quotas": quotas, "candidates": k, "quota_search": search}


def _titles(dataset: Dataset, ids: np.ndarray) -> list[str]:
    titles = dataset.items.set_index("item_id")["title"]
    return [str(titles.get(int(i), "")) for i in ids]


def _manifest(
    version: str, fingerprint: str, dataset: Dataset, split: Split, config: TrainConfig,
    items: features.ItemFeatures, users: UserTable, genres: list[str], has_embedding: np.ndarray,
    cold_report: dict, segment_kind: str, index_params: dict, ranking: RankingResult,
) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_fingerprint": fingerprint,
        "data": {"layout": dataset.layout, "files": [p.name for p in dataset.files], "dropped": dict(dataset.dropped)},
        "data_cutoff": int(split.train["timestamp"].max()),
        "config": config.to_dict(),
        "counts": {
            "ratings": int(len(dataset.ratings)),
            "train_ratings": int(len(split.train)),
            "test_ratings": int(len(split.test)),
            "users": int(dataset.ratings["user_id"].nunique()),
            "train_users": int(len(users.ids)),
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
        },
        "embedding_dim": config.embedding.dim,
        "embedding": {"method": config.embedding.method, **cold_report},
        "indexes": index_params,
        "cold_start": {"kind": segment_kind, "segments": users.segment_names, "default_segment": coldstart.NEW_SEGMENT},
        "models": ranking.entries,
        "default_model": config.ranking.default_model,
        "signature": ranking.entries[config.ranking.default_model]["signature"],
    }
