"""Embedded feature store: the bundle's features in process memory, events applied in place."""

from __future__ import annotations

from collections import deque

import numpy as np

from services.common.bundle import Bundle
from services.common.types import Event, ItemBatch, UserProfile
from services.feature.items import ItemCatalog
from services.feature.profiles import ProfileBuilder, UserState
from services.feature.store import FeatureStore


class MemoryFeatureStore(FeatureStore):
    """Default backend. State changed by events lives in this process only: with several replicas the
    gateway's consistent hashing sends a user's reads and writes to the same one (Redis shares state
    across replicas). The last `event_log_size` events are kept for inspection."""

    kind = "memory"

    def __init__(self, bundle: Bundle, event_log_size: int = 10_000) -> None:
        self._bundle_version = bundle.version
        self.data_cutoff = bundle.data_cutoff
        self.users = bundle.users
        self.catalog = ItemCatalog(bundle)
        self.builder = ProfileBuilder.from_bundle(bundle)
        self.changed: dict[int, UserState] = {}
        self.event_log: deque[Event] = deque(maxlen=event_log_size)

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
        else:
            state.version += 1
        self.event_log.append(event)
        return state.version
