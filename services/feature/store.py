"""The feature store contract every backend (embedded memory, Redis) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from services.feature.catalogue import Catalogue
from wren.core.types import Event, ItemBatch, ItemExtras, UserHistory, UserProfile


class FeatureStore(ABC):
    """User and item features plus event ingestion.

    Data contract:
    - get_user: a profile for any id; an id never seen gives known=False and cold-start defaults
      (zero counters, the new-user segment, no embedding). Events recorded for the user are included.
    - get_items: one row per requested id in request order (duplicates allowed); unknown ids have
      known=False and zero feature rows, empty title.
    - record_event: applies the event to the user's state so the next get_user reflects it (read your
      writes), appends it to the event log, and returns the user's new version.
    - catalogue: the summaries of every item of the bundle the store serves (one object per bundle version).
    - item_extras: tags and external ids of one item; None for an id the catalogue does not hold.
    - live_ratings: (count, sum) of the item's ratings recorded after the bundle's data (timestamp past its data
      cutoff), so that catalogue figures move without a retrain; (0, 0.0) when there are none.
    - user_history: the user's segment, counters and every item they interacted with (bundle ratings and recorded
      events, services.feature.history.merge_history); known=False and no entries for an id never seen.
    Backends raise wren.core.errors.Unavailable when their storage cannot be reached.
    """

    kind: str = ""

    @property
    @abstractmethod
    def bundle_version(self) -> str: ...

    @abstractmethod
    async def get_user(self, user_id: int) -> UserProfile: ...

    @abstractmethod
    async def get_items(self, item_ids: np.ndarray) -> ItemBatch: ...

    @abstractmethod
    async def record_event(self, event: Event) -> int: ...

    @abstractmethod
    async def catalogue(self) -> Catalogue: ...

    @abstractmethod
    async def item_extras(self, item_id: int) -> ItemExtras | None: ...

    @abstractmethod
    async def user_history(self, user_id: int) -> UserHistory: ...

    @abstractmethod
    async def live_ratings(self, item_id: int) -> tuple[int, float]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Releases connections (nothing to do for in-memory stores)."""
