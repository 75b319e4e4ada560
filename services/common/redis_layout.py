"""Redis key names and the fixed binary record layouts shared by the Redis feature store and the publisher."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from wren.core.bundle import Bundle, ItemTable, UserTable
from wren.core.schema import EVENT_TYPES, USER_COUNTERS
from wren.core.types import Event, ItemExtras

LAYOUT_VERSION = 1

EVENT_DTYPE = np.dtype([("ts", "<i8"), ("user", "<i8"), ("item", "<i8"), ("rating", "<f8"), ("type", "u1")])
"""One real-time event: rating is NaN for clicks and views, type indexes wren.core.schema.EVENT_TYPES."""


@dataclass(frozen=True)
class Keys:
    """Every key under one namespace prefix.

    Versioned (immutable once published): `{p}:v:{version}:meta` JSON Meta, `{p}:v:{version}:u:{user}`
    user records, `{p}:v:{version}:i:{item}` item records, `{p}:v:{version}:h:{user}` the ratings and
    timestamps of a user's rated items, `{p}:v:{version}:x:{item}` an item's tags and links (JSON),
    `{p}:v:{version}:catalogue` every item's summary (Catalogue.to_bytes). Pointers: `{p}:live` the served version,
    `{p}:versions` sorted set of published versions scored by publish time. Real time (survives bundle
    switches): `{p}:rt:{user}:events` list of packed events, newest last; `{p}:rt:{user}:version` INCR
    counter; `{p}:events` the event stream.
    """

    prefix: str = "wren"

    @property
    def live(self) -> str:
        return f"{self.prefix}:live"

    @property
    def versions(self) -> str:
        return f"{self.prefix}:versions"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:events"

    def meta(self, version: str) -> str:
        return f"{self.prefix}:v:{version}:meta"

    def user(self, version: str, user_id: int) -> str:
        return f"{self.prefix}:v:{version}:u:{user_id}"

    def item(self, version: str, item_id: int) -> str:
        return f"{self.prefix}:v:{version}:i:{item_id}"

    def history(self, version: str, user_id: int) -> str:
        return f"{self.prefix}:v:{version}:h:{user_id}"

    def extras(self, version: str, item_id: int) -> str:
        return f"{self.prefix}:v:{version}:x:{item_id}"

    def catalogue(self, version: str) -> str:
        return f"{self.prefix}:v:{version}:catalogue"

    def version_pattern(self, version: str) -> str:
        """SCAN MATCH pattern for every key of one version (glob characters escaped)."""
        return re.sub(r"([\\*?\[\]])", r"\\\1", f"{self.prefix}:v:{version}:") + "*"

    def user_events(self, user_id: int) -> str:
        return f"{self.prefix}:rt:{user_id}:events"

    def user_version(self, user_id: int) -> str:
        return f"{self.prefix}:rt:{user_id}:version"


@dataclass(frozen=True)
class Meta:
    """What a reader needs to decode one version's records and build profiles with the bundle's rules."""

    version: str
    genres: list[str]
    segments: list[str]
    default_segment: str
    recent_len: int
    positive_threshold: float
    data_cutoff: int
    embedding_dim: int
    item_dense_dim: int
    item_count: int
    user_count: int
    layout: int = LAYOUT_VERSION

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> Meta:
        return cls(
            version=bundle.version,
            genres=list(bundle.genres),
            segments=list(bundle.users.segment_names),
            default_segment=bundle.cold_start["default_segment"],
            recent_len=bundle.schema.recent_len,
            positive_threshold=bundle.positive_threshold,
            data_cutoff=bundle.data_cutoff,
            embedding_dim=int(bundle.embeddings.shape[1]),
            item_dense_dim=int(bundle.items.dense.shape[1]),
            item_count=len(bundle.items.ids),
            user_count=len(bundle.users.ids),
        )

    def to_json(self) -> str:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Meta:
        fields = json.loads(raw)
        if fields.get("layout") != LAYOUT_VERSION:
            raise ValueError(f"feature records of layout {fields.get('layout')!r}, this Wren reads {LAYOUT_VERSION}")
        return cls(**fields)

    @cached_property
    def user_dtype(self) -> np.dtype:
        """Fixed head of a user record; the rated item ids follow as int64."""
        g = len(self.genres)
        return np.dtype(
            [
                ("counters", "<f8", (len(USER_COUNTERS),)),
                ("genre_counts", "<f4", (g,)),
                ("genre_rated", "<f4", (g,)),
                ("genre_rating_sum", "<f4", (g,)),
                ("recent", "<i8", (self.recent_len,)),
                ("segment", "<i4"),
            ]
        )

    @cached_property
    def item_dtype(self) -> np.dtype:
        """Fixed head of an item record; the UTF-8 title (title_len bytes) and genre names follow."""
        return np.dtype(
            [
                ("dense", "<f4", (self.item_dense_dim,)),
                ("genres", "u1", (len(self.genres),)),
                ("embedding", "<f4", (self.embedding_dim,)),
                ("year", "<i4"),
                ("has_embedding", "u1"),
                ("title_len", "<u4"),
            ]
        )


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """One catalog item as stored: dense float32 [len(ITEM_DENSE)], genres uint8 [G] multi-hot,
    embedding float32 [D] (zeros when the item has none), year (0 = unknown), title, "A|B" genre names."""

    dense: np.ndarray
    genres: np.ndarray
    embedding: np.ndarray
    year: int
    title: str
    genre_names: str


def encode_users(users: UserTable, meta: Meta) -> Iterator[tuple[int, bytes]]:
    """(user id, record) for every row of the table: Meta.user_dtype head, then rated ids int64."""
    head = np.zeros(len(users.ids), meta.user_dtype)
    head["counters"] = users.counters
    head["genre_counts"] = users.genre_counts
    head["genre_rated"] = users.genre_rated
    head["genre_rating_sum"] = users.genre_rating_sum
    head["recent"] = users.recent
    head["segment"] = users.segment
    for row, user_id in enumerate(users.ids.tolist()):
        yield user_id, head[row].tobytes() + users.rated(row).astype("<i8").tobytes()


def decode_user(data: bytes, user_id: int, meta: Meta) -> UserTable:
    """A user record as a one-row UserTable, so the bundle's snapshot rules apply unchanged."""
    dtype = meta.user_dtype
    if len(data) < dtype.itemsize or (len(data) - dtype.itemsize) % 8:
        raise ValueError(f"user record of {len(data)} bytes does not match layout {LAYOUT_VERSION}")
    head = np.frombuffer(data, dtype, count=1)
    rated = np.frombuffer(data, "<i8", offset=dtype.itemsize).astype(np.int64)
    return UserTable(
        ids=np.array([user_id], np.int64),
        counters=head["counters"].astype(np.float64),
        genre_counts=head["genre_counts"].astype(np.float32),
        genre_rated=head["genre_rated"].astype(np.float32),
        genre_rating_sum=head["genre_rating_sum"].astype(np.float32),
        recent=head["recent"].astype(np.int64),
        rated_indptr=np.array([0, len(rated)], np.int64),
        rated_ids=rated,
        segment=head["segment"].astype(np.int32),
        segment_names=list(meta.segments),
    )


def encode_histories(users: UserTable) -> Iterator[tuple[int, bytes]]:
    """(user id, record) for every row: the ratings (float32, NaN when unknown) then the timestamps (int64) of
    the user's rated items, in the order of the rated ids of their user record."""
    for row, user_id in enumerate(users.ids.tolist()):
        _, ratings, stamps = users.history(row)
        yield user_id, ratings.astype("<f4").tobytes() + stamps.astype("<i8").tobytes()


def decode_history(data: bytes | None, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(ratings float32, timestamps int64) of `count` rated items; NaN and 0 when the record is absent (a
    version published before history records existed) or does not match."""
    if data is None or len(data) != 12 * count:
        return np.full(count, np.nan, np.float32), np.zeros(count, np.int64)
    return (
        np.frombuffer(data, "<f4", count).astype(np.float32),
        np.frombuffer(data, "<i8", count, offset=4 * count).astype(np.int64),
    )


def encode_extras(items: ItemTable) -> Iterator[tuple[int, bytes]]:
    """(item id, JSON {"tags": [...], "links": [imdb id, tmdb id]}) for every catalogue item."""
    for row, item_id in enumerate(items.ids.tolist()):
        tags = items.tags[row] if items.tags else []
        links = items.links[row] if items.links else [None, None]
        yield item_id, json.dumps({"tags": tags, "links": links}, separators=(",", ":")).encode()


def decode_extras(data: bytes) -> ItemExtras:
    fields = json.loads(data)
    imdb, tmdb = fields["links"]
    return ItemExtras(list(fields["tags"]), imdb, tmdb)


def encode_items(items: ItemTable, embeddings: np.ndarray, meta: Meta) -> Iterator[tuple[int, bytes]]:
    """(item id, record) for every catalog item: Meta.item_dtype head, title, genre names (UTF-8)."""
    head = np.zeros(len(items.ids), meta.item_dtype)
    head["dense"] = items.dense
    head["genres"] = items.genres
    head["embedding"] = embeddings * items.has_embedding[:, None]
    head["year"] = items.years
    head["has_embedding"] = items.has_embedding
    titles = [title.encode() for title in items.titles]
    head["title_len"] = [len(title) for title in titles]
    names = np.array(meta.genres)
    for row, item_id in enumerate(items.ids.tolist()):
        genre_names = "|".join(names[items.genres[row].astype(bool)]).encode()
        yield item_id, head[row].tobytes() + titles[row] + genre_names


def decode_item(data: bytes, meta: Meta) -> ItemRecord:
    dtype = meta.item_dtype
    if len(data) < dtype.itemsize:
        raise ValueError(f"item record of {len(data)} bytes does not match layout {LAYOUT_VERSION}")
    head = np.frombuffer(data, dtype, count=1)[0]
    split = dtype.itemsize + int(head["title_len"])
    return ItemRecord(
        dense=head["dense"].astype(np.float32),
        genres=head["genres"].astype(np.uint8),
        embedding=head["embedding"].astype(np.float32),
        year=int(head["year"]),
        title=data[dtype.itemsize : split].decode(),
        genre_names=data[split:].decode(),
    )


def stream_fields(event: Event) -> dict[str, str | int]:
    """An event as the fields of its entry in the event stream (`Keys.stream`); rating "" for clicks and views."""
    return {
        "user": event.user_id,
        "item": event.item_id,
        "type": event.type,
        "rating": "" if event.rating is None else repr(float(event.rating)),
        "ts": event.timestamp,
        "id": event.event_id,
    }


def encode_event(event: Event) -> bytes:
    rating = np.nan if event.rating is None else event.rating
    row = (event.timestamp, event.user_id, event.item_id, rating, EVENT_TYPES.index(event.type))
    return np.array([row], EVENT_DTYPE).tobytes()


def decode_events(records: list[bytes]) -> list[Event]:
    """Packed events (oldest first) back to Events, in the same order."""
    rows = np.frombuffer(b"".join(records), EVENT_DTYPE)
    return [
        Event(
            user_id=int(user),
            item_id=int(item),
            type=EVENT_TYPES[int(kind)],
            rating=None if np.isnan(rating) else float(rating),
            timestamp=int(ts),
        )
        for ts, user, item, rating, kind in rows.tolist()
    ]
