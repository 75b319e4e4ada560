"""Redis feature store: published bundle records plus real-time events, shared by every replica."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT, FieldT

from services.common.caches import MISSING, MeteredCache
from services.common.nearline_keys import NearlineKeys
from services.common.redis_layout import (
    ItemRecord,
    Keys,
    Meta,
    decode_events,
    decode_extras,
    decode_history,
    decode_item,
    decode_user,
    encode_event,
    stream_fields,
)
from services.feature.breaker import OUTAGE_ERRORS, CircuitBreaker
from services.feature.catalogue import Catalogue
from services.feature.history import merge_history
from services.feature.items import records_batch
from services.feature.live_ratings import ratings_after
from services.feature.redis_config import RedisFeatureStoreConfig
from services.feature.redis_scripts import ITEMS_SCRIPT, SCRIPTS, USER_SCRIPT, VERSIONED_SCRIPT
from services.feature.store import FeatureStore
from wren.core.errors import FailedPrecondition, Unavailable
from wren.core.profiles import ItemLookup, ProfileBuilder, UserState
from wren.core.types import Event, ItemBatch, ItemExtras, UserHistory, UserProfile


@dataclass(frozen=True)
class VersionView:
    """One published version as this process reads it: its meta and profile rules."""

    meta: Meta
    builder: ProfileBuilder

    @classmethod
    def from_meta(cls, meta: Meta) -> VersionView:
        builder = ProfileBuilder(
            genre_count=len(meta.genres),
            recent_len=meta.recent_len,
            positive_threshold=meta.positive_threshold,
            new_user_segment=meta.default_segment,
            bundle_version=meta.version,
        )
        return cls(meta, builder)


class RecordLookup:
    """ItemLookup over item records fetched for one request; absent ids give zero rows."""

    def __init__(self, records: dict[int, ItemRecord | None], meta: Meta) -> None:
        self.records = records
        self.meta = meta

    def genres(self, item_ids: np.ndarray) -> np.ndarray:
        out = np.zeros((len(item_ids), len(self.meta.genres)), np.uint8)
        for row, item_id in enumerate(np.asarray(item_ids).tolist()):
            record = self.records.get(item_id)
            if record is not None:
                out[row] = record.genres
        return out

    def vectors(self, item_ids: np.ndarray) -> np.ndarray:
        out = np.zeros((len(item_ids), self.meta.embedding_dim), np.float32)
        for row, item_id in enumerate(np.asarray(item_ids).tolist()):
            record = self.records.get(item_id)
            if record is not None:
                out[row] = record.embedding
        return out


class RedisFeatureStore(FeatureStore):
    """FeatureStore over records published by services.feature.publish, with real-time events applied
    on read. Every read takes the live pointer and that version's records in one Lua call, so a reply is
    never a mix of two versions. Round trips: get_user 1 (+1 when recent/event items miss the item
    cache); get_items 1, or 0 when every id is cached under a live version confirmed within
    live_check_seconds; record_event 1 (MULTI/EXEC). Redis outages raise Unavailable, fast."""

    kind = "redis"

    def __init__(self, client: aioredis.Redis, config: RedisFeatureStoreConfig) -> None:
        self.config = config
        self.keys = Keys(config.prefix)
        self.nearline = NearlineKeys(config.prefix)
        self.breaker = CircuitBreaker(config.breaker_threshold, config.breaker_reset_seconds)
        self.item_cache = MeteredCache("feature_item", config.item_cache_size, config.item_cache_ttl_seconds)
        self._redis = client
        self._user_script = client.register_script(USER_SCRIPT)
        self._items_script = client.register_script(ITEMS_SCRIPT)
        self._versioned_script = client.register_script(VERSIONED_SCRIPT)
        self._catalogues: dict[str, Catalogue] = {}
        self._views: dict[str, VersionView] = {}
        self._live = ""
        self._live_seen = 0.0

    @classmethod
    async def connect(cls, config: RedisFeatureStoreConfig) -> RedisFeatureStore:
        """A store whose Redis answers and holds a published bundle (Unavailable / FailedPrecondition)."""
        client = aioredis.Redis.from_url(
            config.url,
            socket_timeout=config.timeout_ms / 1000,
            socket_connect_timeout=config.timeout_ms / 1000,
            retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        )
        store = cls(client, config)
        try:
            await client.ping()
            for script in SCRIPTS:
                await client.script_load(script)
            live = cast(bytes | None, await client.get(store.keys.live))  # replies are bytes: no decode_responses
            if live is None:
                raise FailedPrecondition(
                    f"no feature bundle published in Redis at {config.url} under prefix {config.prefix!r}"
                )
            await store._load_view(live.decode())
        except OUTAGE_ERRORS as exc:
            await client.aclose()
            raise Unavailable(f"feature store unavailable: cannot reach Redis at {config.url}: {exc}") from exc
        except BaseException:
            await client.aclose()
            raise
        return store

    @property
    def bundle_version(self) -> str:
        """The live version this process saw last."""
        return self._live

    @property
    def circuit_state(self) -> str:
        """closed, opened or half-opened."""
        return self.breaker.state

    async def close(self) -> None:
        await self._redis.aclose()

    async def get_user(self, user_id: int) -> UserProfile:
        view, state, lookup, _, _ = await self._read_user(user_id, with_history=False)
        return view.builder.profile(user_id, state, lookup)

    async def user_history(self, user_id: int) -> UserHistory:
        """One round trip more than get_user only when event items miss the item cache (same script)."""
        view, state, _, events, reply = await self._read_user(user_id, with_history=True)
        record, history = reply[2], reply[5]
        rated = decode_user(record, user_id, view.meta).rated_ids if record else np.empty(0, np.int64)
        entries = merge_history(rated, *decode_history(history, len(rated)), events)
        return UserHistory(
            user_id, state.known or bool(entries), state.segment, state.counters.copy(), state.version, entries
        )

    async def _read_user(
        self, user_id: int, with_history: bool
    ) -> tuple[VersionView, UserState, ItemLookup, list[Event], list]:
        """(version read, the user's state with events applied, item lookup, every recorded event, script reply)."""
        keys = [self.keys.live, self.keys.user_events(user_id), self.keys.user_version(user_id)]
        args: list[str | int] = [self.config.prefix, self._live, user_id, "1" if with_history else "0"]
        reply = await self.breaker.call("get_user", lambda: self._user_script(keys=keys, args=args))
        view = await self._view(reply)
        _, _, record, counter, packed, _ = reply
        builder, meta = view.builder, view.meta
        state = builder.snapshot_state(decode_user(record, user_id, meta), 0) if record else builder.empty_state()
        recorded = decode_events(packed)
        events = [event for event in recorded if event.timestamp > meta.data_cutoff]
        needed = set(state.recent) | {event.item_id for event in events}
        lookup = RecordLookup(await self._item_records(meta, needed), meta)
        for event in events:
            builder.apply(state, event, lookup)
        state.version = int(counter or 0)
        return view, state, lookup, recorded, reply

    async def catalogue(self) -> Catalogue:
        """The live version's catalogue, fetched once per version (one small round trip checks the version)."""
        held = self._live if self._live in self._catalogues else ""
        reply = await self._versioned("catalogue", held)
        view = await self._view(reply)
        version = view.meta.version
        if version not in self._catalogues:
            if not reply[2]:
                raise FailedPrecondition(
                    f"feature bundle {version} was published without its catalogue; "
                    "publish it again with `wren publish`"
                )
            self._catalogues = {version: Catalogue.from_bytes(version, reply[2], view.meta.genres)}
        return self._catalogues[version]

    async def live_ratings(self, item_id: int) -> tuple[int, float]:
        """What the nearline tier summed for the item after the live version's data cutoff ((0, 0.0) without a
        nearline tier); services.feature.live_ratings."""
        view = self._views.get(self._live) or await self._load_view(self._live)
        buckets = await self.breaker.call(
            "get_live_ratings", lambda: self._redis.hgetall(self.nearline.item_ratings(item_id))
        )
        return ratings_after(buckets, view.meta.data_cutoff)

    async def item_extras(self, item_id: int) -> ItemExtras | None:
        """None for an item without an extras record (unknown, or published before extras existed: the caller
        tells the two apart with the catalogue)."""
        reply = await self._versioned(f"x:{item_id}", "")
        await self._view(reply)
        return decode_extras(reply[2]) if reply[2] else None

    async def _versioned(self, suffix: str, held: str) -> list:
        args = [self.config.prefix, held or self._live, suffix, "1" if held else "0"]
        return await self.breaker.call(
            "get_catalogue", lambda: self._versioned_script(keys=[self.keys.live], args=args)
        )

    async def get_items(self, item_ids: np.ndarray) -> ItemBatch:
        item_ids = np.asarray(item_ids, np.int64)
        unique = list(dict.fromkeys(item_ids.tolist()))
        version = self._live
        records = {item_id: self.item_cache.get((version, item_id)) for item_id in unique}
        missing = [item_id for item_id, record in records.items() if record is MISSING]
        known_view = self._views.get(version)
        if not missing and known_view and time.monotonic() - self._live_seen < self.config.live_check_seconds:
            return records_batch(item_ids, records, known_view.meta)
        cached = [item_id for item_id in unique if records[item_id] is not MISSING]
        args = [self.config.prefix, version, len(missing), *missing, *cached]
        reply = await self.breaker.call("get_items", lambda: self._items_script(keys=[self.keys.live], args=args))
        view = await self._view(reply)
        fetched = missing if view.meta.version == version else unique
        if view.meta.version != version:
            records = {}
        for item_id, raw in zip(fetched, reply[2], strict=True):
            records[item_id] = self._remember(view.meta, item_id, raw)
        return records_batch(item_ids, records, view.meta)

    async def record_event(self, event: Event) -> int:
        events_key = self.keys.user_events(event.user_id)
        fields: dict[FieldT, EncodableT] = {name: value for name, value in stream_fields(event).items()}

        async def transaction() -> list:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(events_key, encode_event(event))
                pipe.ltrim(events_key, -self.config.events_per_user, -1)
                pipe.incr(self.keys.user_version(event.user_id))
                pipe.xadd(self.keys.stream, fields, maxlen=self.config.stream_maxlen, approximate=True)
                return await pipe.execute()

        return int((await self.breaker.call("record_event", transaction))[2])

    async def _view(self, reply: list) -> VersionView:
        """The version a script read (caching its meta when the reply carries it); live tracking updated."""
        if not reply or reply[0] is None:
            raise FailedPrecondition(f"no feature bundle published in Redis under prefix {self.config.prefix!r}")
        version = reply[0].decode()
        view = self._views.get(version)
        if view is None:
            view = self._cache_view(Meta.from_json(reply[1])) if reply[1] else await self._load_view(version)
        self._live, self._live_seen = version, time.monotonic()
        return view

    async def _load_view(self, version: str) -> VersionView:
        raw = await self.breaker.call("get_meta", lambda: self._redis.get(self.keys.meta(version)))
        if raw is None:
            raise FailedPrecondition(f"feature bundle {version} has no meta in Redis (deleted or half published)")
        view = self._cache_view(Meta.from_json(raw))
        self._live, self._live_seen = version, time.monotonic()
        return view

    def _cache_view(self, meta: Meta) -> VersionView:
        view = self._views[meta.version] = VersionView.from_meta(meta)
        while len(self._views) > 4:
            del self._views[next(iter(self._views))]
        return view

    async def _item_records(self, meta: Meta, item_ids: set[int]) -> dict[int, ItemRecord | None]:
        """Records of the given items under one version: item cache first, one MGET for the rest."""
        records = {item_id: self.item_cache.get((meta.version, item_id)) for item_id in item_ids}
        missing = [item_id for item_id, record in records.items() if record is MISSING]
        if missing:
            keys = [self.keys.item(meta.version, item_id) for item_id in missing]
            raws = cast(list[bytes | None], await self.breaker.call("get_items", lambda: self._redis.mget(keys)))
            for item_id, raw in zip(missing, raws, strict=True):
                records[item_id] = self._remember(meta, item_id, raw)
        return records

    def _remember(self, meta: Meta, item_id: int, raw: bytes | None) -> ItemRecord | None:
        record = None if raw is None else decode_item(raw, meta)
        self.item_cache.put((meta.version, item_id), record)
        return record
