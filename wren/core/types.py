"""Transport-free domain types the tiers' core classes exchange (protos are converted at the edge)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wren.core.schema import recall_feature_width


@dataclass(slots=True)
class UserProfile:
    """A user's features at request time.

    dense: float32 [len(USER_DENSE)]; genre_affinity: float32 [G] share of positives per genre;
    genre_ratings: float32 [G] per-genre rating deviation (schema.genre_rating_deviation);
    recent_items: int64, newest first, positives only; rated_items: int64, every item the user
    interacted with, newest first; embedding: float32 [D] or None when no recent positive item has an embedding.
    """

    user_id: int
    known: bool
    segment: str
    version: int
    dense: np.ndarray
    genre_affinity: np.ndarray
    genre_ratings: np.ndarray
    recent_items: np.ndarray
    rated_items: np.ndarray
    embedding: np.ndarray | None
    bundle_version: str = ""


@dataclass(slots=True)
class ItemBatch:
    """Features of many items; row i of every array belongs to item_ids[i]. Unknown ids have zero rows."""

    item_ids: np.ndarray  # int64 [n]
    known: np.ndarray  # bool [n]
    dense: np.ndarray  # float32 [n, len(ITEM_DENSE)]
    genres: np.ndarray  # float32 [n, G] multi-hot
    embedding: np.ndarray  # float32 [n, D]
    titles: list[str] = field(default_factory=list)
    genre_names: list[str] = field(default_factory=list)  # "Action|Comedy"
    years: np.ndarray | None = None  # int32 [n], 0 = unknown
    bundle_version: str = ""


@dataclass(slots=True)
class Event:
    """One interaction. rating is None for clicks and views; timestamp is epoch seconds; event_id is the
    idempotency key the nearline tier applies each event once by ("" until the gateway assigns one)."""

    user_id: int
    item_id: int
    type: str
    rating: float | None
    timestamp: int
    event_id: str = ""


@dataclass(slots=True)
class Candidates:
    """Recall output, best first. Bit j of source_masks[i] says channels[j] proposed item_ids[i];
    recall_features[i] are item i's recall features (schema.RECALL_FEATURES blocks over the channels; the
    ranking models take them as inputs)."""

    item_ids: np.ndarray  # int64 [n]
    scores: np.ndarray  # float32 [n]
    source_masks: np.ndarray  # uint32 [n]
    channels: tuple[str, ...]
    recall_features: np.ndarray  # float32 [n, recall_feature_width(len(channels))]

    @classmethod
    def empty(cls, channels: tuple[str, ...]) -> Candidates:
        return cls(
            np.empty(0, np.int64),
            np.empty(0, np.float32),
            np.empty(0, np.uint32),
            channels,
            np.zeros((0, recall_feature_width(len(channels))), np.float32),
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    def sources(self, i: int) -> list[str]:
        mask = int(self.source_masks[i])
        return [name for bit, name in enumerate(self.channels) if mask >> bit & 1]


@dataclass(frozen=True, slots=True)
class RankResult:
    """The ranking tier's answer for n candidates, in request order.

    scores: float32 [n]; known: bool [n], false for an item the ranking bundle does not know (it was scored
    with zero item features and the padding index); model_version: "<model_name>@<bundle_version>";
    variant: the user's A/B variant, or "forced" when the request named the model.
    """

    scores: np.ndarray
    known: np.ndarray
    model_name: str
    model_version: str
    variant: str


@dataclass(slots=True)
class ItemSummary:
    """What a list of items shows of each: year None when unknown, rating_mean None when nobody rated it."""

    item_id: int
    title: str
    year: int | None
    genres: list[str]
    rating_count: int
    rating_mean: float | None


@dataclass(slots=True)
class ItemExtras:
    """What a store keeps of an item beyond its summary: tags (most applied first), IMDb and TMDB ids or None."""

    tags: list[str]
    imdb_id: str | None
    tmdb_id: str | None


@dataclass(slots=True)
class ItemLinks:
    """URLs of the item's pages elsewhere; None where the data has no id for that site."""

    movielens: str
    imdb: str | None
    tmdb: str | None


@dataclass(slots=True)
class ItemDetails:
    summary: ItemSummary
    tags: list[str]
    links: ItemLinks


@dataclass(slots=True)
class ItemList:
    """Items of a search (query set) or of a genre row (genre and sort set), best first."""

    items: list[ItemSummary]
    query: str = ""
    genre: str = ""
    sort: str = ""


@dataclass(slots=True)
class RatedEntry:
    """One item a user interacted with: their latest rating of it (None when they only clicked or viewed it)
    and the time of the latest interaction (epoch seconds; 0 when the bundle predates timestamps)."""

    item_id: int
    rating: float | None
    timestamp: int


@dataclass(slots=True)
class UserHistory:
    """A user's stored state for the catalogue: counters float64 [len(USER_COUNTERS)], event_count events
    recorded since the bundle, entries newest first (bundle ratings and recorded events, one per item)."""

    user_id: int
    known: bool
    segment: str
    counters: np.ndarray
    event_count: int
    entries: list[RatedEntry]


@dataclass(slots=True)
class RatedItem:
    item: ItemSummary
    rating: float | None
    timestamp: int


@dataclass(slots=True)
class UserRatings:
    """One page of a user's rated items, newest first, with their segment and counters."""

    user_id: int
    segment: str
    rating_count: int
    rating_mean: float | None
    positive_count: int
    event_count: int
    ratings: list[RatedItem]
    total: int
    offset: int
    limit: int
