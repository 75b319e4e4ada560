"""Read access to an artifact bundle written by `wren train` (numpy and JSON only, no pickle)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wren.core.arrays import IdIndex
from wren.core.cf import CFModel
from wren.core.errors import BundleError
from wren.core.manifest import MANIFEST, CfEntry, FeatureSchema, Manifest

if TYPE_CHECKING:
    from wren.core.item_graph import ItemGraph

CURRENT = "current"
USER_STATES = {"served": "users.npz", "evaluation": "eval/users.npz"}
"""Which user table a bundle is read with: "served" covers every rating `wren train` was given; "evaluation"
covers only the training part of its split, so that served lists can be scored against the held-out part."""


def resolve_bundle_dir(path: str | os.PathLike[str]) -> Path:
    """A bundle directory itself, or an artifacts root whose `current` link names one."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path.resolve()
    current = path / CURRENT
    if current.exists() and (current / MANIFEST).is_file():
        return current.resolve()
    raise BundleError(f"no artifact bundle at {path}: expected {path / MANIFEST} or {current}/{MANIFEST}")


@dataclass(frozen=True)
class ItemTable:
    """Catalog items in ascending id order; row i of every array belongs to ids[i]."""

    ids: np.ndarray  # int64 [n]
    dense: np.ndarray  # float32 [n, len(ITEM_DENSE)]
    genres: np.ndarray  # uint8 [n, G] multi-hot
    years: np.ndarray  # int32 [n], 0 = unknown
    popularity: np.ndarray  # float32 [n], time-decayed positive interactions
    has_embedding: np.ndarray  # bool [n]; false for items with neither interactions nor content
    titles: list[str]
    rating_count: np.ndarray | None = None  # int64 [n] ratings of the item in all the data
    rating_mean: np.ndarray | None = None  # float64 [n] their mean, NaN for items nobody rated
    tags: list[list[str]] | None = None  # each item's tags, most applied first (empty lists when none)
    links: list[list[str | None]] | None = None  # [imdb id, tmdb id] per item, None where unknown

    @cached_property
    def id_index(self) -> IdIndex:
        return IdIndex(self.ids)

    def rows(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row index, found mask) for each id; row index is 0 where not found."""
        rows = self.id_index.rows(item_ids)
        found = rows >= 0
        return np.where(found, rows, 0), found


@dataclass(frozen=True)
class UserTable:
    """Users known at training time, ascending id order.

    counters: float64 [m, len(USER_COUNTERS)]; genre_counts: float32 [m, G] positive interactions per
    genre; genre_rated / genre_rating_sum: float32 [m, G] ratings per genre and their sum;
    recent: int64 [m, R] recent positive item ids newest first, -1 padded; rated items of user i
    are rated_ids[rated_indptr[i]:rated_indptr[i + 1]], newest first; segment: int32 [m] index into segment names.
    """

    ids: np.ndarray
    counters: np.ndarray
    genre_counts: np.ndarray
    genre_rated: np.ndarray
    genre_rating_sum: np.ndarray
    recent: np.ndarray
    rated_indptr: np.ndarray
    rated_ids: np.ndarray
    segment: np.ndarray
    segment_names: list[str]
    rated_ratings: np.ndarray | None = None  # float32, aligned with rated_ids (absent from older bundles)
    rated_timestamps: np.ndarray | None = None  # int64, aligned with rated_ids (absent from older bundles)

    @cached_property
    def id_index(self) -> IdIndex:
        return IdIndex(self.ids)

    def row(self, user_id: int) -> int | None:
        row = self.id_index.row(user_id)
        return row if row >= 0 else None

    def rated(self, row: int) -> np.ndarray:
        return self.rated_ids[self.rated_indptr[row] : self.rated_indptr[row + 1]]

    def history(self, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item ids, ratings float32, timestamps int64) of the user's ratings, newest first; NaN ratings and
        zero timestamps when the bundle predates them."""
        span = slice(self.rated_indptr[row], self.rated_indptr[row + 1])
        ids = self.rated_ids[span]
        ratings = self.rated_ratings[span] if self.rated_ratings is not None else np.full(len(ids), np.nan, np.float32)
        stamps = self.rated_timestamps[span] if self.rated_timestamps is not None else np.zeros(len(ids), np.int64)
        return ids, ratings, stamps


def _rating_totals(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(rating count int64, rating sum float64) per item: the catalogue columns when the bundle has them, else the
    training counters, else what the dense features keep (log count, mean) in bundles older than both."""
    if "rating_count" in arrays:
        return arrays["rating_count"].astype(np.int64), arrays["rating_sum"].astype(np.float64)
    if "counters" in arrays:
        return arrays["counters"][:, 0].astype(np.int64), arrays["counters"][:, 1].astype(np.float64)
    count = np.rint(np.expm1(arrays["dense"][:, 0].astype(np.float64))).astype(np.int64)
    return count, arrays["dense"][:, 1].astype(np.float64) * count


class Bundle:
    """One artifact bundle on disk; parts load lazily and are cached on the instance."""

    def __init__(self, path: str | os.PathLike[str], user_state: str = "served") -> None:
        if user_state not in USER_STATES:
            raise BundleError(f"unknown user state {user_state!r}; expected one of {', '.join(USER_STATES)}")
        self.user_state = user_state
        self.path = resolve_bundle_dir(path)
        manifest_path = self.path / MANIFEST
        try:
            data = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BundleError(f"cannot read {manifest_path}: {exc}") from exc
        self.manifest = Manifest.parse(data, str(manifest_path))

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def schema(self) -> FeatureSchema:
        return self.manifest.feature_schema

    @property
    def genres(self) -> list[str]:
        return self.schema.genres

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def positive_threshold(self) -> float:
        return self.manifest.positive_threshold

    @property
    def data_cutoff(self) -> int:
        """Newest training timestamp; events after it are not in the bundle's features."""
        return self.manifest.data_cutoff

    def file(self, relative: str) -> Path:
        path = self.path / relative
        if not path.exists():
            raise BundleError(f"bundle {self.version} is missing {relative}")
        return path

    def _npz(self, relative: str) -> dict[str, np.ndarray]:
        with np.load(self.file(relative), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    @cached_property
    def items(self) -> ItemTable:
        arrays = self._npz("items.npz")
        meta = json.loads(self.file("items.json").read_text())
        count, total = _rating_totals(arrays)
        n = len(arrays["ids"])
        return ItemTable(
            ids=arrays["ids"],
            dense=arrays["dense"],
            genres=arrays["genres"],
            years=arrays["years"],
            popularity=arrays["popularity"],
            has_embedding=arrays["has_embedding"],
            titles=meta["titles"],
            rating_count=count,
            rating_mean=np.divide(total, count, out=np.full(n, np.nan), where=count > 0),
            tags=meta.get("tags") or [[] for _ in range(n)],
            links=meta.get("links") or [[None, None] for _ in range(n)],
        )

    @cached_property
    def users(self) -> UserTable:
        arrays = self._npz(USER_STATES[self.user_state])
        return UserTable(segment_names=list(self.manifest.cold_start.segments), **arrays)

    @cached_property
    def embeddings(self) -> np.ndarray:
        """float32 [n_items, D] aligned with items.ids; zero rows where has_embedding is false."""
        return np.load(self.file("embeddings.npy"), allow_pickle=False)

    @cached_property
    def content(self) -> dict[str, np.ndarray]:
        """CSR parts (data, indices, indptr, shape) of the L2-normalised item content matrix."""
        return self._npz("content.npz")

    @cached_property
    def content_vocabulary(self) -> dict:
        """{"genres": [names], "tags": [names], "idf": [floats], "genre_weight": float, "tag_weight": float}."""
        return json.loads(self.file("content_vocab.json").read_text())

    @cached_property
    def cold_start(self) -> dict:
        """{"segments": {name: [item ids]}, "popular": [item ids], "default_segment": name}."""
        return json.loads(self.file("coldstart.json").read_text())

    @cached_property
    def cf_model(self) -> CFModel:
        """ALS item factors aligned with items.ids (zero rows for items the model never saw)."""
        arrays = self._npz("cf.npz")
        return CFModel(arrays["item_factors"], self._cf.regularization, self._cf.alpha)

    @property
    def _cf(self) -> CfEntry:
        if self.manifest.cf is None:
            raise BundleError(f"bundle {self.version} has no CF model")
        return self.manifest.cf

    @property
    def cf_index_kind(self) -> str:
        return self._cf.index_kind

    @property
    def cf_index_params(self) -> dict:
        return self._cf.index

    @property
    def item_graph_names(self) -> list[str]:
        return list(self.manifest.item_graphs)

    def item_graph(self, name: str) -> ItemGraph:
        """Item-to-item weights between item rows (row i: what items.ids[i] gives the others)."""
        from wren.core.item_graph import item_graph_from_arrays

        return item_graph_from_arrays(self._npz(f"graphs/{name}.npz"))

    def index_dir(self, kind: str) -> Path:
        return self.file(f"index/{kind}")

    def index_params(self, kind: str) -> dict:
        return self.manifest.indexes[kind]

    @property
    def model_names(self) -> list[str]:
        return list(self.manifest.models)

    @property
    def default_model(self) -> str:
        return self.manifest.default_model

    def model_path(self, name: str) -> Path:
        try:
            entry = self.manifest.models[name]
        except KeyError:
            raise BundleError(f"bundle {self.version} has no model {name!r}; it has {self.model_names}") from None
        return self.file(entry.file)
