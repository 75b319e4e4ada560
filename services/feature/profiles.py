"""Turns stored user state (training snapshot plus events since) into the UserProfile the tiers use."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from services.common.bundle import Bundle, ItemTable, UserTable
from services.common.embedding import mean_embeddings
from services.common.schema import POSITIVE_EVENT_TYPES, genre_affinity, genre_rating_deviation, user_dense
from services.common.types import Event, UserProfile


@dataclass
class UserState:
    """Counters form of a user's features: what events update.

    counters: float64 [4] (count, sum, sum of squares, positives); genre_counts: float32 [G] positives
    per genre; genre_rated / genre_rating_sum: float32 [G] ratings per genre and their sum;
    recent: positive item ids newest first (at most recent_len); rated: every interacted item id.
    """

    counters: np.ndarray
    genre_counts: np.ndarray
    genre_rated: np.ndarray
    genre_rating_sum: np.ndarray
    recent: list[int]
    rated: set[int] = field(default_factory=set)
    segment: str = ""
    version: int = 0
    known: bool = True


class ProfileBuilder:
    """Derives profiles and applies events with one set of rules for every store backend."""

    def __init__(
        self,
        items: ItemTable,
        embeddings: np.ndarray,
        *,
        recent_len: int,
        positive_threshold: float,
        new_user_segment: str,
        bundle_version: str = "",
    ) -> None:
        self.items = items
        self.embeddings = embeddings
        self.recent_len = recent_len
        self.positive_threshold = positive_threshold
        self.new_user_segment = new_user_segment
        self.bundle_version = bundle_version

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> ProfileBuilder:
        return cls(
            bundle.items,
            bundle.embeddings,
            recent_len=int(bundle.schema["recent_len"]),
            positive_threshold=bundle.positive_threshold,
            new_user_segment=bundle.cold_start["default_segment"],
            bundle_version=bundle.version,
        )

    @property
    def genre_count(self) -> int:
        return self.items.genres.shape[1]

    def empty_state(self) -> UserState:
        return UserState(
            counters=np.zeros(4, np.float64),
            genre_counts=np.zeros(self.genre_count, np.float32),
            genre_rated=np.zeros(self.genre_count, np.float32),
            genre_rating_sum=np.zeros(self.genre_count, np.float32),
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
            rated={int(i) for i in users.rated(row)},
            segment=users.segment_names[int(users.segment[row])],
        )

    def is_positive(self, event: Event) -> bool:
        if event.type == "rating":
            return event.rating is not None and event.rating >= self.positive_threshold
        return event.type in POSITIVE_EVENT_TYPES

    def apply(self, state: UserState, event: Event) -> UserState:
        """Applies one event in place (and returns the state): counters, genres, recent, rated, version."""
        state.known = True
        state.version += 1
        state.rated.add(event.item_id)
        rows, found = self.items.rows(np.array([event.item_id]))
        item_genres = self.items.genres[rows[0]] if found[0] else np.zeros(self.genre_count, np.uint8)
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

    def profile(self, user_id: int, state: UserState) -> UserProfile:
        recent = np.asarray(state.recent, np.int64)
        rows, found = self.items.rows(recent)
        embedding = mean_embeddings(
            np.where(found, rows, -1)[None, :], self.embeddings, self.items.has_embedding
        )[0] if len(recent) else None
        if embedding is not None and not embedding.any():
            embedding = None
        return UserProfile(
            user_id=user_id,
            known=state.known,
            segment=state.segment,
            version=state.version,
            dense=user_dense(state.counters)[0],
            genre_affinity=genre_affinity(state.genre_counts)[0],
            genre_ratings=genre_rating_deviation(state.genre_rated, state.genre_rating_sum, state.counters)[0],
            recent_items=recent,
            rated_items=np.fromiter(state.rated, np.int64, len(state.rated)),
            embedding=embedding,
            bundle_version=self.bundle_version,
        )
