"""Redis backend specifics: record layout, atomic bundle switches, pruning, fail-fast outages, the event stream."""
# Long: every case shares the real redis-server and the published tiny bundle (module fixtures).

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from services.common.redis_layout import (
    Keys,
    Meta,
    decode_events,
    decode_item,
    decode_user,
    encode_event,
    encode_items,
    encode_users,
)
from services.feature.memory import MemoryFeatureStore
from services.feature.publish import publish_bundle
from services.feature.redis_store import RedisFeatureStore, RedisFeatureStoreConfig
from tests.support.redis_server import RedisServer, free_port
from wren.core.bundle import Bundle
from wren.core.errors import FailedPrecondition, Unavailable
from wren.core.types import Event

KEYS = Keys("wren")
RELAXED = {"timeout_ms": 1000}


def derive_bundle(source: Bundle, root: Path, version: str, shift: float) -> Bundle:
    """A copy of `source` under another version whose user counts and item dense features are shifted,
    so every record tells which version it came from."""
    target = root / version
    target.mkdir(parents=True)
    for name in ("items.json", "embeddings.npy", "coldstart.json"):
        shutil.copy(source.path / name, target / name)
    (target / "manifest.json").write_text(json.dumps({**source.manifest.to_json(), "version": version}))
    with np.load(source.path / "users.npz") as data:
        users = {key: data[key] for key in data.files}
    users["counters"] = users["counters"] + [shift, 0, 0, 0]
    np.savez(target / "users.npz", **users)
    with np.load(source.path / "items.npz") as data:
        items = {key: data[key] for key in data.files}
    items["dense"] = items["dense"] + np.float32(shift)
    np.savez(target / "items.npz", **items)
    return Bundle(target)


@pytest.fixture(scope="module")
def other_bundles(tiny_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory) -> list[Bundle]:
    root = tmp_path_factory.mktemp("derived-bundles")
    return [
        derive_bundle(tiny_bundle, root, f"{tiny_bundle.version}-{tag}", shift)
        for tag, shift in (("b", 5.0), ("c", 9.0))
    ]


async def connect(url: str, **overrides: float) -> RedisFeatureStore:
    return await RedisFeatureStore.connect(RedisFeatureStoreConfig(url=url, **overrides))


def version_keys(client: redis.Redis, version: str) -> int:
    return sum(1 for _ in client.scan_iter(match=KEYS.version_pattern(version), count=1000))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_records_round_trip(tiny_bundle: Bundle) -> None:
    meta = Meta.from_bundle(tiny_bundle)
    assert Meta.from_json(meta.to_json()) == meta
    users = tiny_bundle.users
    for row, (user_id, record) in enumerate(encode_users(users, meta)):
        one = decode_user(record, user_id, meta)
        assert user_id == users.ids[row] and one.ids[0] == user_id
        for name in ("counters", "genre_counts", "genre_rated", "genre_rating_sum", "recent", "segment"):
            np.testing.assert_array_equal(getattr(one, name)[0], getattr(users, name)[row], err_msg=name)
        np.testing.assert_array_equal(one.rated(0), users.rated(row))
    items, embeddings = tiny_bundle.items, tiny_bundle.embeddings
    for row, (item_id, record) in enumerate(encode_items(items, embeddings, meta)):
        item = decode_item(record, meta)
        assert item_id == items.ids[row] and item.title == items.titles[row] and item.year == items.years[row]
        np.testing.assert_array_equal(item.dense, items.dense[row])
        np.testing.assert_array_equal(item.genres, items.genres[row])
        np.testing.assert_array_equal(item.embedding, embeddings[row] * items.has_embedding[row])
        assert item.genre_names.split("|") == [g for g, on in zip(meta.genres, items.genres[row], strict=True) if on]
    events = [Event(1, 2, "rating", 4.5, 100), Event(3, 4, "click", None, 101), Event(5, 6, "view", None, 102)]
    assert decode_events([encode_event(event) for event in events]) == events
    assert decode_events([]) == []


def test_record_layout_is_checked(tiny_bundle: Bundle) -> None:
    meta = Meta.from_bundle(tiny_bundle)
    with pytest.raises(ValueError, match="layout"):
        Meta.from_json(json.dumps(dict(json.loads(meta.to_json()), layout=99)))
    with pytest.raises(ValueError, match="user record"):
        decode_user(b"\0" * 7, 1, meta)
    assert Keys("w").version_pattern("v[1]*") == r"w:v:v\[1\]\*:*"


async def test_publish_switch_is_atomic_for_readers(
    tiny_bundle: Bundle, other_bundles: list[Bundle], redis_url: str
) -> None:
    bundles = {bundle.version: bundle for bundle in (tiny_bundle, other_bundles[0])}
    oracles = {version: MemoryFeatureStore(bundle) for version, bundle in bundles.items()}
    publish_bundle(tiny_bundle, redis_url, progress=False)
    store = await connect(redis_url, live_check_seconds=0.0, **RELAXED)
    user_ids = [int(u) for u in tiny_bundle.users.ids[:3]]
    item_ids = np.append(tiny_bundle.items.ids[:6], 10**9)
    seen: Counter[str] = Counter()
    publishing = True

    async def read_continuously() -> None:
        while publishing or len(seen) < 2:
            for user_id in user_ids:
                profile = await store.get_user(user_id)
                want = await oracles[profile.bundle_version].get_user(user_id)
                np.testing.assert_allclose(profile.dense, want.dense, atol=1e-6)
                np.testing.assert_array_equal(profile.recent_items, want.recent_items)
                seen[profile.bundle_version] += 1
            batch = await store.get_items(item_ids)
            want_items = await oracles[batch.bundle_version].get_items(item_ids)
            np.testing.assert_array_equal(batch.dense, want_items.dense)
            seen[batch.bundle_version] += 1
            await asyncio.sleep(0)

    reader = asyncio.create_task(read_continuously())
    try:
        for bundle in (other_bundles[0], tiny_bundle, other_bundles[0]):
            await asyncio.to_thread(publish_bundle, bundle, redis_url, progress=False, batch=10)
            await asyncio.sleep(0.01)
        publishing = False
        await asyncio.wait_for(reader, 10)
    finally:
        publishing = False
        reader.cancel()
        await store.close()
    assert set(seen) == set(bundles) and store.bundle_version == other_bundles[0].version


def test_old_versions_beyond_keep_are_deleted(tiny_bundle: Bundle, other_bundles: list[Bundle], redis_url: str) -> None:
    a, b, c = tiny_bundle, *other_bundles
    client = redis.Redis.from_url(redis_url)
    per_version = 2 * (len(a.users.ids) + len(a.items.ids)) + 2  # user + history, item + extras; meta, catalogue
    for bundle in (a, b, c):
        assert publish_bundle(bundle, redis_url, keep=2, progress=False) == bundle.version
    assert [version_keys(client, bundle.version) for bundle in (a, b, c)] == [0, per_version, per_version]
    assert client.zrange(KEYS.versions, 0, -1) == [b.version.encode(), c.version.encode()]
    publish_bundle(c, redis_url, keep=2, progress=False)
    assert client.get(KEYS.live) == c.version.encode()
    assert [version_keys(client, bundle.version) for bundle in (a, b, c)] == [0, per_version, per_version]
    publish_bundle(a, redis_url, keep=1, progress=False)
    assert [version_keys(client, bundle.version) for bundle in (a, b, c)] == [per_version, 0, 0]
    client.close()


async def test_events_survive_a_bundle_switch(tiny_bundle: Bundle, other_bundles: list[Bundle], redis_url: str) -> None:
    publish_bundle(tiny_bundle, redis_url, progress=False)
    store = await connect(redis_url, **RELAXED)
    user_id, item_id = int(tiny_bundle.users.ids[2]), int(tiny_bundle.items.ids[-1])
    await store.record_event(Event(user_id, item_id, "click", None, tiny_bundle.data_cutoff + 1))
    publish_bundle(other_bundles[0], redis_url, progress=False)
    profile = await store.get_user(user_id)
    oracle = MemoryFeatureStore(other_bundles[0])
    await oracle.record_event(Event(user_id, item_id, "click", None, tiny_bundle.data_cutoff + 1))
    want = await oracle.get_user(user_id)
    assert profile.bundle_version == other_bundles[0].version and profile.version == 1
    assert profile.recent_items[0] == item_id
    np.testing.assert_allclose(profile.dense, want.dense, atol=1e-6)
    np.testing.assert_array_equal(profile.recent_items, want.recent_items)
    await store.close()


async def test_events_already_in_the_bundle_are_not_applied_twice(tiny_bundle: Bundle, redis_url: str) -> None:
    publish_bundle(tiny_bundle, redis_url, progress=False)
    store = await connect(redis_url, **RELAXED)
    user_id, item_id = int(tiny_bundle.users.ids[4]), int(tiny_bundle.items.ids[-2])
    before = await store.get_user(user_id)
    assert await store.record_event(Event(user_id, item_id, "rating", 5.0, tiny_bundle.data_cutoff)) == 1
    after = await store.get_user(user_id)
    assert after.version == 1
    np.testing.assert_array_equal(after.recent_items, before.recent_items)
    np.testing.assert_array_equal(after.dense, before.dense)
    await store.close()


async def test_round_trips_per_read(tiny_bundle: Bundle, redis_url: str) -> None:
    class CountingRedis(aioredis.Redis):
        calls = 0

        async def execute_command(self, *args, **options):
            CountingRedis.calls += 1
            return await super().execute_command(*args, **options)

    publish_bundle(tiny_bundle, redis_url, progress=False)
    store = RedisFeatureStore(CountingRedis.from_url(redis_url), RedisFeatureStoreConfig(url=redis_url, **RELAXED))
    await store.get_items(tiny_bundle.items.ids[:1])
    await store.get_user(int(tiny_bundle.users.ids[1]))
    store.item_cache.clear()

    async def round_trips(call) -> int:
        CountingRedis.calls = 0
        await call
        return CountingRedis.calls

    user_id, item_ids = int(tiny_bundle.users.ids[0]), tiny_bundle.items.ids[:40]
    assert await round_trips(store.get_user(user_id)) == 2
    assert await round_trips(store.get_user(user_id)) == 1
    assert await round_trips(store.get_items(item_ids)) == 1
    assert await round_trips(store.get_items(item_ids[::-1])) == 0
    await store.close()


async def test_outage_fails_fast_then_recovers_by_itself(tiny_bundle: Bundle, own_redis_server: RedisServer) -> None:
    publish_bundle(tiny_bundle, own_redis_server.url, progress=False)
    store = await connect(own_redis_server.url)
    user_id = int(tiny_bundle.users.ids[0])
    await store.get_user(user_id)
    errors_before = metric("wren_feature_store_errors_total", op="get_user")

    own_redis_server.stop()
    latencies = []
    for _ in range(10):
        started = time.perf_counter()
        with pytest.raises(Unavailable, match="feature store unavailable"):
            await store.get_user(user_id)
        latencies.append(time.perf_counter() - started)
    assert statistics.median(latencies) < 0.1 and max(latencies) < 0.5
    assert store.circuit_state == "opened" and metric("wren_redis_circuit_open") == 1
    assert metric("wren_feature_store_errors_total", op="get_user") - errors_before == 10
    with pytest.raises(Unavailable):
        await store.record_event(Event(user_id, 1, "click", None, tiny_bundle.data_cutoff + 1))

    own_redis_server.start()
    publish_bundle(tiny_bundle, own_redis_server.url, progress=False)
    deadline = time.monotonic() + 5
    while True:
        try:
            profile = await store.get_user(user_id)
            break
        except Unavailable:
            assert time.monotonic() < deadline, "the store did not recover after Redis came back"
            await asyncio.sleep(0.05)
    assert profile.known and store.circuit_state == "closed" and metric("wren_redis_circuit_open") == 0
    assert await store.record_event(Event(user_id, 1, "click", None, tiny_bundle.data_cutoff + 1)) == 1
    await store.close()


async def test_a_hung_redis_fails_fast_too(tiny_bundle: Bundle, own_redis_server: RedisServer) -> None:
    publish_bundle(tiny_bundle, own_redis_server.url, progress=False)
    store = await connect(own_redis_server.url)
    item_ids = tiny_bundle.items.ids[:5]
    await store.get_items(item_ids)
    own_redis_server.pause()
    latencies = []
    for _ in range(10):
        started = time.perf_counter()
        with pytest.raises(Unavailable):
            await store.get_user(int(tiny_bundle.users.ids[0]))
        latencies.append(time.perf_counter() - started)
    assert statistics.median(latencies) < 0.1 and store.circuit_state == "opened"
    own_redis_server.resume()
    deadline = time.monotonic() + 5
    while store.circuit_state != "closed":
        assert time.monotonic() < deadline, "the store did not recover after Redis resumed"
        try:
            await store.get_items(item_ids)
        except Unavailable:
            await asyncio.sleep(0.05)
    await store.close()


async def test_connect_explains_what_is_missing(redis_url: str) -> None:
    with pytest.raises(Unavailable, match="cannot reach Redis"):
        await connect(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(FailedPrecondition, match="no feature bundle published"):
        await connect(redis_url)


async def test_events_go_to_the_stream_for_consumer_groups(tiny_bundle: Bundle, redis_url: str) -> None:
    publish_bundle(tiny_bundle, redis_url, progress=False)
    store = await connect(redis_url, **RELAXED)
    events = [
        Event(7, 11, "rating", 4.5, 2_000_000_000, "e-1"),
        Event(7, 12, "click", None, 2_000_000_001, "e-2"),
        Event(8, 13, "view", None, 2_000_000_002),
    ]
    for event in events:
        await store.record_event(event)
    await store.close()

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    entries = [fields for _, fields in client.xrange(KEYS.stream)]
    assert entries == [
        {"user": "7", "item": "11", "type": "rating", "rating": "4.5", "ts": "2000000000", "id": "e-1"},
        {"user": "7", "item": "12", "type": "click", "rating": "", "ts": "2000000001", "id": "e-2"},
        {"user": "8", "item": "13", "type": "view", "rating": "", "ts": "2000000002", "id": ""},
    ]
    client.xgroup_create(KEYS.stream, "trainer", id="0")
    [(_, messages)] = client.xreadgroup("trainer", "worker-1", {KEYS.stream: ">"}, count=10)
    assert [fields["item"] for _, fields in messages] == ["11", "12", "13"]
    assert client.xack(KEYS.stream, "trainer", *[message_id for message_id, _ in messages]) == 3
    assert client.xpending(KEYS.stream, "trainer")["pending"] == 0
    client.close()
