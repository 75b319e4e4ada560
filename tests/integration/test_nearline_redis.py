"""Nearline consumer, trending feed and gateway invalidations against a real redis-server (in process)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from services.common.nearline_keys import NearlineKeys
from services.common.redis_layout import stream_fields
from services.feature.catalogue_core import CatalogueCore
from services.feature.publish import publish_bundle
from services.feature.redis_store import RedisFeatureStore, RedisFeatureStoreConfig
from services.gateway.invalidation import Invalidations
from services.nearline.apply import Applier, ApplyConfig, parse_entry
from services.nearline.consumer import ConsumerConfig, NearlineConsumer
from services.nearline.eventlog import EventLog
from services.recall.trending import TrendingFeed
from wren.core.bundle import Bundle
from wren.core.types import Event

KEYS = NearlineKeys()


@pytest_asyncio.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    await connection.aclose()


def consumer(client: aioredis.Redis, name: str, log_dir: Path | None = None) -> NearlineConsumer:
    event_log = EventLog(log_dir, name) if log_dir else None
    return NearlineConsumer(client, KEYS, Applier(client, KEYS), event_log, ConsumerConfig(name, claim_idle_ms=0))


async def add(client: aioredis.Redis, *events: Event) -> None:
    for event in events:
        await client.xadd(KEYS.stream, stream_fields(event))


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_poison_entries_go_to_the_dead_letter_stream_and_are_acknowledged(client: aioredis.Redis) -> None:
    worker = consumer(client, "c1")
    await worker.ensure_group()
    before = sample("wren_nearline_dead_letters_total", {"reason": "invalid"})
    now = int(time.time())
    await add(client, Event(1, 5, "click", None, now, "ok-1"))
    await client.xadd(KEYS.stream, {"user": "1", "item": "5", "type": "rating", "rating": "11", "ts": "1"})
    await client.xadd(KEYS.stream, {"garbage": "yes"})
    assert await worker.read() == 3
    dead = await client.xrange(KEYS.dead_letters)
    assert [fields["reason"] for _, fields in dead] == [
        "rating must be between 0.5 and 5.0, got 11.0",
        "field 'user' is missing",
    ]
    assert dead[1][1]["garbage"] == "yes" and dead[0][1]["entry"]
    assert sample("wren_nearline_dead_letters_total", {"reason": "invalid"}) == before + 2
    assert await client.hget(KEYS.item(5), "count") == "1"
    assert await worker.refresh_lag() == 0


async def test_a_dead_consumers_pending_entries_are_claimed_and_applied_once(
    client: aioredis.Redis, tmp_path: Path
) -> None:
    survivor = consumer(client, "survivor", tmp_path)
    await survivor.ensure_group()
    now = int(time.time())
    await add(client, *[Event(u, 7, "rating", 4.0, now, f"r{u}") for u in range(1, 11)])
    delivered = await client.xreadgroup(KEYS.group, "dead", {KEYS.stream: ">"}, count=4)  # then it dies
    assert len(delivered[0][1]) == 4
    assert await survivor.refresh_lag() == 10
    # the dead consumer had applied its first two before dying, without acknowledging them
    dead_worker = consumer(client, "dead")
    assert await dead_worker.applier.apply([parse_entry(*e) for e in delivered[0][1][:2]]) == [True, True]
    assert await survivor.claim() == 4
    assert await survivor.read() == 6
    stats = await client.hgetall(KEYS.item(7))
    assert stats["count"] == "10" and stats["ratings"] == "10" and float(stats["rating_sum"]) == 40.0
    assert stats["positives"] == "10"
    assert await client.hget(KEYS.user(3), "events") == "1"
    assert await survivor.refresh_lag() == 0
    pending = await client.xpending(KEYS.stream, KEYS.group)
    assert pending["pending"] == 0
    survivor.event_log.close()
    lines = [line for path in tmp_path.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert len(lines) == 10


async def test_an_event_sent_twice_counts_once(client: aioredis.Redis) -> None:
    worker = consumer(client, "c1")
    await worker.ensure_group()
    now = int(time.time())
    twice = Event(2, 8, "rating", 2.0, now, "same-id")
    await add(client, twice, twice, Event(3, 8, "rating", 5.0, now, "other"))
    assert await worker.read() == 3
    stats = await client.hgetall(KEYS.item(8))
    assert stats["count"] == "2" and float(stats["rating_sum"]) == 7.0 and stats["positives"] == "1"


async def test_the_trending_feed_lists_items_with_enough_recent_positives(client: aioredis.Redis) -> None:
    worker = consumer(client, "c1")
    await worker.ensure_group()
    half_life = ApplyConfig().half_life_seconds
    await client.set(KEYS.half_life, repr(half_life))
    now = int(time.time())
    await add(
        client,
        *[Event(u, 42, "click", None, now, f"c{u}") for u in range(1, 6)],
        Event(1, 43, "click", None, now, "lonely"),
        Event(1, 44, "rating", 1.0, now, "disliked"),
    )
    await worker.read()
    feed = TrendingFeed(client, KEYS, size=10, min_count=2.0)
    assert await feed.refresh()
    assert feed.ids.tolist() == [42] and feed.generation == 1
    assert not await feed.refresh()
    old = TrendingFeed(client, KEYS, size=10, min_count=2.0, clock=lambda: now + 4 * half_life)  # 5 / 16 left
    await old.refresh()
    assert old.ids.tolist() == []


async def test_an_invalidation_reaches_every_other_gateway(redis_url: str) -> None:
    received: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    replicas = {
        name: Invalidations(
            aioredis.Redis.from_url(redis_url),
            KEYS.invalidations,
            lambda user, item, name=name: received[name].append((user, item)),
        )
        for name in received
    }
    for replica in replicas.values():
        replica.start()
        await asyncio.wait_for(replica.subscribed.wait(), 5)
    try:
        await replicas["a"].publish(11, 99)
        deadline = time.monotonic() + 5
        while not received["b"] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert received == {"a": [], "b": [(11, 99)]}
        replicas["b"].receive(b"not a message")
        assert received["b"] == [(11, 99)]
    finally:
        for replica in replicas.values():
            await replica.stop()


async def test_the_feature_tier_reads_ratings_the_consumer_applied_after_the_bundle(
    client: aioredis.Redis, redis_url: str, tiny_bundle: Bundle
) -> None:
    publish_bundle(tiny_bundle, redis_url, progress=False)
    store = await RedisFeatureStore.connect(RedisFeatureStoreConfig(url=redis_url, timeout_ms=1000))
    catalogue = CatalogueCore(lambda: store)
    item_id = int(tiny_bundle.items.ids[5])
    before = (await catalogue.item(item_id)).summary
    after_cutoff = (tiny_bundle.data_cutoff // 60 + 1) * 60  # the first minute wholly after the bundle's data
    worker = consumer(client, "live")
    await worker.ensure_group()
    users = [int(u) for u in tiny_bundle.users.ids[:4]]
    await add(
        client,
        *[Event(u, item_id, "rating", 4.5, after_cutoff + i, f"live-{u}") for i, u in enumerate(users)],
        Event(users[0], item_id, "rating", 1.0, tiny_bundle.data_cutoff, "in-bundle"),  # a retrain holds it
        Event(users[1], item_id, "click", None, after_cutoff, "live-click"),
    )
    await add(client, Event(users[0], item_id, "rating", 4.5, after_cutoff, f"live-{users[0]}"))  # sent twice
    assert await worker.read() == 7
    assert await store.live_ratings(item_id) == (4, 18.0)
    after = (await catalogue.item(item_id)).summary
    assert after.rating_count == before.rating_count + 4
    assert after.rating_mean == round(
        (before.rating_count * (before.rating_mean or 0.0) + 18.0) / after.rating_count, 4
    )
    assert await store.live_ratings(int(tiny_bundle.items.ids[6])) == (0, 0.0)
    await store.close()
