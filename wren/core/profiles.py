"""Turns stored user state (training snapshot plus events since) into the UserProfile the tiers use."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from wren.core.arrays import mean_embeddings
from wren.core.bundle import Bundle, ItemTable, UserTable
from wren.core.schema import POSITIVE_EVENT_TYPES, genre_affinity, genre_rating_deviation, user_dense
from wren.core.types import Event, UserProfile


class ItemLookup(Protocol):
    """What profile building needs to know about items (the embedded store answers from the bundle's
    arrays, the Redis store from item records it fetched)."""

    def genres(self, item_ids: np.ndarray) -> np.ndarray:
        """uint8 [n, G] multi-hot genres; zero rows for unknown items."""

    def vectors(self, item_ids: np.ndarray) -> np.ndarray:
        """float32 [n, D] item embeddings; zero rows for unknown items or items without one."""


class TableLookup:
    """ItemLookup over the bundle's item table and embedding matrix."""

    def __init__(self, items: ItemTable, embeddings: np.ndarray) -> None:
        self.items = items
        self.embeddings = embeddings * items.has_embedding[:, None]

    def genres(self, item_ids: np.ndarray) -> np.ndarray:
        rows, found = self.items.rows(item_ids)
        return self.items.genres[rows] * found[:, None].astype(np.uint8)

    def vectors(self, item_ids: np.ndarray) -> np.ndarray:
        rows, found = self.items.rows(item_ids)
        return self.embeddings[rows] * found[:, None]


@dataclass
class UserState:
    """Counters form of a user's features: what events update.

    counters: float64 [4] (count, sum, sum of squares, positives); genre_counts: float32 [G] positives
    per genre; genre_rated / genre_rating_sum: float32 [G] ratings per genre and their sum;
    recent: positive item ids newest first (at most recent_len); rated: every interacted item id,
    oldest first (a dict used as an ordered set: re-rating an item moves it to the end).
    """

    counters: np.ndarray
    genre_counts: np.ndarray
    genre_rated: np.ndarray
    genre_rating_sum: np.ndarray
    recent: list[int]
    rated: dict[int, None] = field(default_factory=dict)
    segment: str = ""
    version: int = 0
    known: bool = True

    def copy(self) -> UserState:
        return copy.deepcopy(self)


class ProfileBuilder:
    """Derives profiles and applies events with one set of rules for every store backend."""

    def __init__(
        self,
        *,
        genre_count: int,
        recent_len: int,
        positive_threshold: float,
        new_user_segment: str,
        bundle_version: str = "",
        lookup: ItemLookup | None = None,
    ) -> None:
        self.genre_count = genre_count
        self.recent_len = recent_len
        self.positive_threshold = positive_threshold
        self.new_user_segment = new_user_segment
        self.bundle_version = bundle_version
        self.lookup = lookup

    @classmethod
    def from_bundle(cls, bundle: Bundle, lookup: ItemLookup | None = None) -> ProfileBuilder:
        return cls(
            genre_count=len(bundle.genres),
            recent_len=bundle.schema.recent_len,
            positive_threshold=bundle.positive_threshold,
            new_user_segment=bundle.cold_start["default_segment"],
            bundle_version=bundle.version,
            lookup=lookup or TableLookup(bundle.items, bundle.embeddings),
        )

    def _lookup(self, lookup: ItemLookup | None) -> ItemLookup:
        chosen = lookup or self.lookup
        if chosen is None:
            raise ValueError("no ItemLookup: pass one, or build the ProfileBuilder with one")
        return chosen

    def empty_state(self) -> UserState:
        zeros = np.zeros(self.genre_count, np.float32)
        return UserState(
            counters=np.zeros(4, np.float64),
            genre_counts=zeros.copy(),
            genre_rated=zeros.copy(),
            genre_rating_sum=zeros.copy(),
            recent=[],
            segment=self.new_user_segment,
            known=False,
        )

    def snapshot_state(self, users: UserTable, row: int) -> UserState:
        recent = users.recent[row]
        return UserState(
            counters=users.counters[row].astype(np.float64, copy=True),
            genre_counts=users.genre_counts[row].astype(np.float32, copy=True),
            genre_rated=users.genre_rated[row].astype(np.float32, copy=True),
            genre_rating_sum=users.genre_rating_sum[row].astype(np.float32, copy=True),
            recent=[int(i) for i in recent[recent >= 0]],
            rated=dict.fromkeys(int(i) for i in users.rated(row)[::-1]),
            segment=users.segment_names[int(users.segment[row])],
        )

    def is_positive(self, event: Event) -> bool:
        if event.type == "rating":
            return event.rating is not None and event.rating >= self.positive_threshold
        return event.type in POSITIVE_EVENT_TYPES

    def apply(self, state: UserState, event: Event, lookup: ItemLookup | None = None) -> UserState:
        """Applies one event in place (and returns the state): counters, genres, recent, rated, version."""
        lookup = self._lookup(lookup)
        state.known = True
        state.version += 1
        state.rated.pop(event.item_id, None)
        state.rated[event.item_id] = None
        item_genres = lookup.genres(np.array([event.item_id], np.int64))[0]
        if event.type == "rating" and event.rating is not None:
            rating = float(event.rating)
            state.counters += (1.0, rating, rating * rating, float(rating >= self.positive_threshold))
            state.genre_rated += item_genres
            state.genre_rating_sum += item_genres * rating
        if self.is_positive(event):
            state.genre_counts += item_genres
            state.recent = [event.item_id] + [i for i in state.recent if i != event.item_id]
            del state.recent[self.recent_len :]
        return state

    def profile(self, user_id: int, state: UserState, lookup: ItemLookup | None = None) -> UserProfile:
        lookup = self._lookup(lookup)
        recent = np.asarray(state.recent, np.int64)
        return UserProfile(
            user_id=user_id,
            known=state.known,
            segment=state.segment,
            version=state.version,
            dense=user_dense(state.counters)[0],
            genre_affinity=genre_affinity(state.genre_counts)[0],
            genre_ratings=genre_rating_deviation(state.genre_rated, state.genre_rating_sum, state.counters)[0],
            recent_items=recent,
            rated_items=np.fromiter(reversed(state.rated), np.int64, len(state.rated)),
            embedding=mean_vector(lookup.vectors(recent)) if len(recent) else None,
            bundle_version=self.bundle_version,
        )


def mean_vector(vectors: np.ndarray) -> np.ndarray | None:
    """wren.core.arrays.mean_embeddings for one user whose items' vectors are `vectors` (a zero row = an item
    without an embedding); None when no item has one."""
    usable = np.any(vectors != 0, axis=1)
    if not usable.any():
        return None
    return mean_embeddings(np.arange(len(vectors))[None, :], vectors, usable)[0]
