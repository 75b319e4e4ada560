"""Training configuration: defaults here, overridable from a TOML file (`wren train --config`)."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from pipeline.cf import CFConfig
from pipeline.config_section import ConfigSection, IntTuple, StrTuple
from pipeline.covisit import CovisitConfig
from pipeline.ease import EaseConfig
from pipeline.embeddings import EmbeddingConfig
from wren.core.index.hnsw import HnswIndex
from wren.core.index.lsh import LshIndex


class ConfigError(ValueError):
    """A training config that does not parse; the message names the key (`config.ranking.epochs: ...`)."""


def _default(constructor: type, name: str) -> Any:
    """The default of one constructor parameter, so a setting that mirrors it is written once (at the index)."""
    return inspect.signature(constructor).parameters[name].default


class IndexConfig(ConfigSection):
    """The embedding indexes every bundle holds; the HNSW and LSH parameters default to their constructors'."""

    kind: str = "hnsw"  # the backend the recall tier serves by default
    m: int = _default(HnswIndex, "m")
    ef_construction: int = _default(HnswIndex, "ef_construction")
    ef_search: int = _default(HnswIndex, "ef_search")  # the least width; training widens it until target_recall
    full_scan_share: float = _default(HnswIndex, "full_scan_share")  # queries asking this share of items: exact
    target_recall: float = 0.98  # HNSW recall@100 vs exact search on sample queries (index_tuning); 0 = off
    calibration_queries: int = 500
    lsh_tables: int = _default(LshIndex, "n_tables")
    lsh_projections: int = _default(LshIndex, "n_projections")


class CFIndexConfig(ConfigSection):
    """The index the CF channel searches its item factors with (inner product, via CFModel.index_vectors).

    Inner-product vectors are hard on a graph index: they all lean towards the appended coordinate, and on
    ml-latest-small the HNSW graph misses ~6 % of the exact top 10 at any ef (served NDCG@10 0.31 vs 0.33).
    Queries asking for at least `full_scan_share` of the items are therefore answered by HNSW's exact scan
    (the recall channel's ~400 of 8.4k items there); larger catalogues walk the graph."""

    kind: str = "hnsw"
    m: int = _default(HnswIndex, "m")
    ef_construction: int = _default(HnswIndex, "ef_construction")
    ef_search: int = 256
    full_scan_share: float = 0.02

    def params(self, seed: int) -> dict[str, Any]:
        if self.kind != "hnsw":
            return {}
        return {
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "seed": seed,
            "full_scan_share": self.full_scan_share,
        }


class EvaluationConfig(ConfigSection):
    """How `wren train` and `wren evaluate` measure the served list.

    protocol "time": each user's newest test_fraction of ratings is held out; "random": a seeded random
    test_fraction per user (the public benchmark protocol). Every held-out rating is relevant; lists exclude
    what the user rated in the training part. Past max_users test users (0 = no limit) every system is scored
    on one seeded sample of that many, and the report gives the interval that sample leaves: 10,000 users
    cost ~70 s of served lists and give NDCG@10 within about +-0.005."""

    protocol: str = "time"
    time_test_fraction: float = 0.2
    random_test_fraction: float = 0.25
    k: int = 10
    baselines: StrTuple = ("popularity", "cooccurrence", "als", "bpr", "ease")
    max_users: int = 10_000

    @property
    def test_fraction(self) -> float:
        return self.time_test_fraction if self.protocol == "time" else self.random_test_fraction


class ColdStartConfig(ConfigSection):
    min_interactions: int = 3  # fewer positive interactions than this: embedding from content neighbours
    content_neighbours: int = 10
    segment_list_size: int = 500
    popularity_half_life_days: float = 0.0  # > 0: popularity decays with age ("trending"); 0: all-time


class ContentConfig(ConfigSection):
    genre_weight: float = 0.5
    tag_weight: float = 1.0
    min_item_frequency: int = 2


class RankingConfig(ConfigSection):
    models: StrTuple = ("deepfm", "widedeep", "ncf")
    default_model: str = "auto"  # the model serving answers with; "auto": the best on validation NDCG
    ranker_fraction: float = 0.2  # share of each user's training ratings the rankers' labels come from
    max_label_users: int = 5_000  # a seeded sample of this many users labels the rankers' rows (0 = every user)
    validation_users: float = 0.3  # share of those users held out for early stopping, the prior and the quotas
    # (0.15 left 91 users on ml-latest-small: too few to tell epochs apart; 0.45 leaves too few to train on)
    folds: int = 4  # cross-fitting: each fold's candidates come from recall models fitted without its labels
    candidates: int = 300  # recall candidates per user a ranker learns to order (hard negatives)
    random_negatives: int = 50  # random catalogue items per user (easy negatives)
    negatives_per_positive: int = 8  # pairs per positive and epoch (half hard, half random when possible)
    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 3e-4  # validation NDCG over candidates, ml-latest-small: 0.199 at 1e-3, 0.206 here
    patience: int = 4
    prior: bool = True  # each ranker starts from the best recall channel's order (pipeline.models.prior)
    tune_prior_scale: bool = True  # after training, the prior's weight is chosen on validation NDCG
    parity_rows: int = 1000
    parity_tolerance: float = 1e-4


class RecallConfig(ConfigSection):
    candidates: int = 300  # merged candidates the recall tier returns per request (quotas are fitted at this size)
    popularity_prior: float = 1.0  # strength of the popularity prior on similarity channels; 0 = off
    eval_ks: IntTuple = (10, 50, 100, 300)
    eval_max_users: int = 5_000  # per-channel recall on a seeded sample of this many test users; 0 = all


class TrainConfig(ConfigSection):
    seed: int = 42
    positive_threshold: float = 3.5
    recent_len: int = 10
    threads: int = 1  # torch/onnxruntime threads; one is fastest on a shared 2-core machine
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    cold_start: ColdStartConfig = Field(default_factory=ColdStartConfig)
    content: ContentConfig = Field(default_factory=ContentConfig)
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    recall: RecallConfig = Field(default_factory=RecallConfig)
    cf: CFConfig = Field(default_factory=CFConfig)
    cf_index: CFIndexConfig = Field(default_factory=CFIndexConfig)
    covisit: CovisitConfig = Field(default_factory=CovisitConfig)
    ease: EaseConfig = Field(default_factory=EaseConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    def updated(self, **changes: Any) -> TrainConfig:
        """A validated copy with `changes` applied; a section's change is a dict of its settings to replace,
        e.g. `config.updated(seed=3, evaluation={"protocol": "random"})`."""
        values = self.model_dump()
        for name, value in changes.items():
            values[name] = {**values.get(name, {}), **value} if isinstance(value, dict) else value
        return config_from_dict(values)


def _known(section: tuple[int | str, ...]) -> list[str]:
    """The settings of the section at `section` (a path of field names from TrainConfig)."""
    model: type[ConfigSection] = TrainConfig
    for name in section:
        annotation = model.model_fields[str(name)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, ConfigSection)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _message(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(["config", *(str(part) for part in item["loc"])])
        if item["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown setting; known: {', '.join(_known(item['loc'][:-1]))}")
        elif item["type"] == "model_type":
            problems.append(f"{where}: must be a table, got {item['input']!r}")
        else:
            problems.append(f"{where}: {item['msg'].lower()}, got {item['input']!r}")
    return "; ".join(problems)


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A config from its dict form: a parsed TOML file, or the `config` of a bundle manifest."""
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_message(error)) from None


def load_config(path: Path | None, **overrides: Any) -> TrainConfig:
    """Defaults, then the TOML file, then explicit overrides (e.g. the --seed flag)."""
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_from_dict(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}" if path is not None else str(error)) from None
