"""Embedded feature store: the bundle's features in process memory, events applied in place."""

from __future__ import annotations

from collections import defaultdict, deque

import numpy as np

from services.feature.catalogue import Catalogue
from services.feature.history import merge_history
from services.feature.items import ItemCatalog
from services.feature.store import FeatureStore
from wren.core.bundle import Bundle
from wren.core.profiles import ProfileBuilder, UserState
from wren.core.types import Event, ItemBatch, ItemExtras, UserHistory, UserProfile


class MemoryFeatureStore(FeatureStore):
    """Default backend. State changed by events lives in this process only: with several replicas the
    gateway's consistent hashing sends a user's reads and writes to the same one (Redis shares state
    across replicas). The last `event_log_size` events are kept for inspection, and the last
    `events_per_user` of each user for their history (as the Redis store keeps them)."""

    kind = "memory"

    def __init__(self, bundle: Bundle, event_log_size: int = 10_000, events_per_user: int = 1000) -> None:
        self._bundle_version = bundle.version
        self.data_cutoff = bundle.data_cutoff
        self.users = bundle.users
        self.items = bundle.items
        self.catalog = ItemCatalog(bundle)
        self._catalogue = Catalogue.from_items(bundle.version, bundle.items, bundle.genres)
        self.user_events: defaultdict[int, deque[Event]] = defaultdict(lambda: deque(maxlen=events_per_user))
        self.builder = ProfileBuilder.from_bundle(bundle)
        self.changed: dict[int, UserState] = {}
        self.event_log: deque[Event] = deque(maxlen=event_log_size)
        self._live_ratings: defaultdict[int, tuple[int, float]] = defaultdict(lambda: (0, 0.0))

    @property
    def bundle_version(self) -> str:
        return self._bundle_version

    def _state(self, user_id: int) -> UserState:
        changed = self.changed.get(user_id)
        if changed is not None:
            return changed
        row = self.users.row(user_id)
        return self.builder.empty_state() if row is None else self.builder.snapshot_state(self.users, row)

    async def get_user(self, user_id: int) -> UserProfile:
        return self.builder.profile(user_id, self._state(user_id))

    async def get_items(self, item_ids: np.ndarray) -> ItemBatch:
        return self.catalog.batch(item_ids)

    async def record_event(self, event: Event) -> int:
        """Events at or before the bundle's data cutoff are taken to be in its training data already: they
        bump the version but do not count twice (the same rule as the Redis store)."""
        state = self._state(event.user_id)
        if event.user_id not in self.changed:
            state = state.copy()
            self.changed[event.user_id] = state
        if event.timestamp > self.data_cutoff:
            self.builder.apply(state, event)
            if event.type == "rating" and event.rating is not None:
                count, total = self._live_ratings[event.item_id]
                self._live_ratings[event.item_id] = count + 1, total + float(event.rating)
        else:
            state.version += 1
        self.event_log.append(event)
        self.user_events[event.user_id].append(event)
        return state.version

    async def catalogue(self) -> Catalogue:
        return self._catalogue

    async def item_extras(self, item_id: int) -> ItemExtras | None:
        rows, found = self.items.rows(np.array([item_id], np.int64))
        if not found[0]:
            return None
        row = int(rows[0])
        imdb, tmdb = self.items.links[row] if self.items.links else (None, None)
        return ItemExtras(list(self.items.tags[row]) if self.items.tags else [], imdb, tmdb)

    async def live_ratings(self, item_id: int) -> tuple[int, float]:
        return self._live_ratings.get(item_id, (0, 0.0))

    async def user_history(self, user_id: int) -> UserHistory:
        state = self._state(user_id)
        row = self.users.row(user_id)
        if row is None:
            snapshot = np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64)
        else:
            snapshot = self.users.history(row)
        entries = merge_history(*snapshot, self.user_events.get(user_id, ()))
        return UserHistory(
            user_id, state.known or bool(entries), state.segment, state.counters.copy(), state.version, entries
        )
