"""Ranker: validates a request, gathers its candidates' features from the bundle, assembles model inputs and scores
them (no transport here)."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from services.common.metrics import RANKING_BATCH_SIZE, RANKING_INFERENCE, RANKING_REQUESTS
from services.common.validation import check_finite
from services.ranking.model import OnnxModel, SessionSettings, schema_dims
from wren.core.ab import FORCED_VARIANT, AbSplit
from wren.core.bundle import Bundle
from wren.core.errors import InvalidArgument
from wren.core.item_features import ItemFeatureTable, ItemRows
from wren.core.model_inputs import model_inputs
from wren.core.types import RankResult, UserProfile

log = logging.getLogger(__name__)
MAX_BATCH = 2000


@dataclass(frozen=True)
class RankerOptions:
    """What a Ranker needs besides the bundle; the same options apply to every bundle it reloads."""

    session: SessionSettings = SessionSettings()
    ab_variants: str = ""  # "A=deepfm:90,B=widedeep:10"; empty = the bundle's default model for everyone
    ab_salt: str = ""
    max_batch: int = MAX_BATCH
    workers: int = 2  # inference threads; 0 runs models inline on the event loop


@dataclass(frozen=True)
class ModelSet:
    """Everything one bundle contributes to ranking, replaced as a whole on reload.

    models: name -> loaded, warmed model (every model of the bundle); dims: input widths from the bundle
    schema (see model.schema_dims); items: the bundle's item features and model vocabulary indices, which
    the candidates of every request are read from."""

    version: str
    models: dict[str, OnnxModel]
    default_model: str
    items: ItemFeatureTable
    dims: dict[str, int]
    split: AbSplit

    @classmethod
    def load(cls, bundle: Bundle, options: RankerOptions) -> ModelSet:
        """Loads and warms every model of `bundle` (blocking; seconds for large models). Raises BundleError
        or AbConfigError without side effects when the bundle or the A/B spec does not fit."""
        split = AbSplit.for_models(options.ab_variants, bundle.model_names, bundle.default_model, options.ab_salt)
        models = {}
        for name in bundle.model_names:
            model = OnnxModel.from_bundle(bundle, name, options.session)
            model.warm()
            models[name] = model
        return cls(bundle.version, models, bundle.default_model, ItemFeatureTable(bundle), schema_dims(bundle), split)


class Ranker:
    """Scores candidate batches for one user. `models` is the only state a reload changes, and it is
    swapped by one assignment after the new set is fully loaded: a call reads it once at its start and
    finishes on that set, so reloads never fail or mix calls."""

    def __init__(self, models: ModelSet, options: RankerOptions | None = None) -> None:
        self.models = models
        self.options = options or RankerOptions()
        workers = self.options.workers
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="ranking-model") if workers > 0 else None

    @classmethod
    async def load(cls, bundle: Bundle, options: RankerOptions | None = None) -> Ranker:
        options = options or RankerOptions()
        return cls(await asyncio.to_thread(ModelSet.load, bundle, options), options)

    @property
    def version(self) -> str:
        return self.models.version

    async def rank(
        self, profile: UserProfile, item_ids: np.ndarray, model: str = "", recall_features: np.ndarray | None = None
    ) -> RankResult:
        """Scores the candidates `item_ids` for `profile` with `model` (by name) or with the user's A/B
        variant's model; their item features come from the bundle. `recall_features` [n, recall channels] are
        the candidates' recall features (None: zeros, as for an item no channel proposed). Raises
        InvalidArgument for an empty or oversized batch, widths that differ from the bundle schema, NaN/inf
        features or an unknown model name. Candidates the bundle does not know are scored with zero item
        features and the padding index, and reported in `known`."""
        models = self.models
        item_ids = np.asarray(item_ids, np.int64)
        check_batch(len(item_ids), self.options.max_batch)
        items = models.items.gather(item_ids)
        inputs = request_inputs(models, profile, items, recall_features)
        chosen, variant = choose(models, profile.user_id, model)
        started = time.perf_counter()
        if self._executor is None:
            scores = chosen.score(inputs)
        else:
            scores = await asyncio.get_running_loop().run_in_executor(self._executor, chosen.score, inputs)
        RANKING_INFERENCE.labels(chosen.name).observe(time.perf_counter() - started)
        RANKING_REQUESTS.labels(chosen.name, variant).inc()
        RANKING_BATCH_SIZE.observe(len(scores))
        return RankResult(scores, items.known, chosen.name, chosen.version, variant)

    async def reload(self, bundle: Bundle) -> None:
        """Loads and warms `bundle`'s models off the event loop, then swaps. On error the old set stays."""
        started = time.perf_counter()
        fresh = await asyncio.to_thread(ModelSet.load, bundle, self.options)
        old, self.models = self.models, fresh
        log.info(
            "ranking models switched",
            extra={
                "old": old.version,
                "new": fresh.version,
                "models": sorted(fresh.models),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def choose(models: ModelSet, user_id: int, requested: str) -> tuple[OnnxModel, str]:
    """(model, variant): the requested model ("forced"), else the model of the user's A/B variant."""
    if requested:
        model = models.models.get(requested)
        if model is None:
            raise InvalidArgument(f"unknown model {requested!r}; bundle {models.version} has {sorted(models.models)}")
        return model, FORCED_VARIANT
    variant = models.split.assign(user_id)
    return models.models[variant.model], variant.name


def check_batch(n: int, max_batch: int) -> None:
    if n == 0:
        raise InvalidArgument("item_ids must not be empty: there is nothing to rank")
    if n > max_batch:
        raise InvalidArgument(f"item_ids has {n} candidates; at most {max_batch} per call")


def request_inputs(
    models: ModelSet, profile: UserProfile, items: ItemRows, recall_features: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Validated model inputs for one user and n candidates (the feature-to-input mapping training used).
    `items` come from the bundle (ModelSet.items) and need no checks; the user's features and the recall
    features come from the request and are checked against the bundle schema."""
    dims, n = models.dims, len(items.index)
    embedding = profile.embedding if profile.embedding is not None else np.zeros(dims["embedding_dim"], np.float32)
    for field, vector, key in (
        ("user.dense", profile.dense, "user_dense"),
        ("user.genre_ratings", profile.genre_ratings, "genres"),
        ("user.embedding", embedding, "embedding_dim"),
    ):
        if vector.shape != (dims[key],):
            raise InvalidArgument(f"{field} has {vector.size} values; bundle {models.version} expects {dims[key]}")
        check_finite(vector, field)
    if recall_features is None:
        recall_features = np.zeros((n, dims["recall_channels"]), np.float32)
    elif recall_features.ndim != 2 or recall_features.shape[1] != dims["recall_channels"]:
        width = recall_features.shape[1] if recall_features.ndim == 2 else recall_features.shape
        raise InvalidArgument(
            f"recall_features has {width} columns; bundle {models.version} expects {dims['recall_channels']}"
        )
    elif recall_features.shape[0] != n:
        raise InvalidArgument(f"recall_features has {recall_features.shape[0]} rows for {n} item ids")
    check_finite(recall_features, "recall_features")
    recent = np.zeros(dims["recent_len"], np.int64)
    head = models.items.index.rows(profile.recent_items[: len(recent)]) + 1
    recent[: len(head)] = head
    return model_inputs(
        user_dense=profile.dense,
        user_genres=profile.genre_ratings,
        user_embedding=embedding,
        recent_index=recent,
        item_index=items.index,
        item_dense=items.dense,
        item_genres=items.genres,
        item_embedding=items.embedding,
        recall_features=recall_features,
    )
