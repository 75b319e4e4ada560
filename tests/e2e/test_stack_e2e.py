"""The whole stack as separate processes (`wren up` machinery): API, read-your-writes, faults, metrics."""
# Long: the API, fault and metrics cases share one module-scoped `wren up` stack.

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from services.stack import LocalStack, StackConfig
from tests.support.netutil import scrape
from wren.core.bundle import Bundle
from wren.v1 import (
    common_pb2,
    feature_pb2,
    feature_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    recall_pb2,
    recall_pb2_grpc,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
NO_GATEWAY_CACHES = {"WREN_RESULTS_CACHE_TTL_SECONDS": "0", "WREN_COLDSTART_CACHE_TTL_SECONDS": "0"}


async def start_stack(
    artifacts: Path, state_dir: Path, replicas: int, env: dict[str, str], redis_url: str = ""
) -> LocalStack:
    stack = LocalStack(
        StackConfig(
            artifacts=artifacts,
            replicas=replicas,
            grpc_port=0,
            http_port=0,
            state_dir=state_dir,
            grace_seconds=3.0,
            env=env,
            redis_url=redis_url,
        )
    )
    try:
        await stack.start()
    except BaseException:
        await stack.stop()
        raise
    return stack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    running = await start_stack(tiny_artifacts, tmp_path_factory.mktemp("stack"), 1, {})
    yield running
    await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def resilient(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    running = await start_stack(tiny_artifacts, tmp_path_factory.mktemp("stack3"), 3, NO_GATEWAY_CACHES)
    yield running
    await running.stop()


def http_base(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.gateway.http_port}"


async def get_json(session: aiohttp.ClientSession, url: str, **kwargs: object) -> tuple[int, dict]:
    async with session.get(url, **kwargs) as response:
        return response.status, await response.json()


async def test_http_recommendations_are_ranked_unseen_and_explained(stack: LocalStack, tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    user = int(bundle.users.ids[10])
    rated = set(bundle.users.rated(10).tolist())
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(session, f"{http_base(stack)}/v1/recommendations?user_id={user}&k=8")
    assert status == 200 and body["user_id"] == user and not body["degraded"]
    items = body["items"]
    assert len(items) == 8 == len({item["item_id"] for item in items})
    assert not {item["item_id"] for item in items} & rated
    for item in items:
        assert set(item) >= {"item_id", "title", "genres", "score", "sources", "rank_score", "cached"}
        assert item["title"] and item["sources"] and item["rank_score"] is not None
    assert body["model_version"].startswith(bundle.default_model + "@")


async def test_unknown_user_gets_a_cold_start_list_and_bad_input_gets_400(stack: LocalStack) -> None:
    async with aiohttp.ClientSession() as session:
        status, body = await get_json(session, f"{http_base(stack)}/v1/recommendations?user_id=987654&k=5")
        assert status == 200 and len(body["items"]) == 5
        assert {s for item in body["items"] for s in item["sources"]} <= {"popularity", "segment"}
        for query, message in [
            ("user_id=abc", "user_id must be an integer"),
            ("k=5", "user_id is required"),
            ("user_id=1&k=0", "k must be between 1 and 500"),
            ("user_id=1&k=501", "k must be between 1 and 500"),
            ("user_id=-3", "user_id must be a positive"),
        ]:
            status, body = await get_json(session, f"{http_base(stack)}/v1/recommendations?{query}")
            assert status == 400 and message in body["error"]["message"], (query, body)
        status, body = await get_json(session, f"{http_base(stack)}/v1/items/123456/similar?k=3")
        assert status == 404 and "unknown item" in body["error"]["message"]
        async with session.post(f"{http_base(stack)}/v1/events", data=b"{not json") as response:
            assert response.status == 400 and "not valid JSON" in (await response.json())["error"]["message"]
        async with session.post(
            f"{http_base(stack)}/v1/events", json={"user_id": 1, "item_id": 2, "type": "rating", "rating": 9}
        ) as response:
            assert response.status == 400 and "rating must be between" in (await response.json())["error"]["message"]
        async with session.post(f"{http_base(stack)}/v1/events", data=b"x" * 20_000) as response:
            assert response.status in (400, 413)


HOSTILE_EVENT_BODIES = [
    (b'{"user_id": 1, "item_id": 2, "type": "click", "timestamp": 99999999999999999999}', "timestamp is out of range"),
    (b'{"user_id": 1, "item_id": 2, "type": "rating", "rating": 1e400}', "rating must be"),
    (b'{"user_id": 1' + b"0" * 5000 + b', "item_id": 2, "type": "click"}', "a number with more than"),
    (b'{"a": ' * 1000 + b"1" + b"}" * 1000, "nested more than"),
    (b'{"user_id": 1, "item_id": 2, "type": "\\ud800"}', "type must be"),
    (b'{"user_id": 1, "item_id": 2, "type": "click", "event_id": "\\udfff"}', "event_id must be"),
]


async def test_hostile_event_bodies_get_400_with_a_message_and_no_exception_text(stack: LocalStack) -> None:
    url = f"{http_base(stack)}/v1/events"
    async with aiohttp.ClientSession() as session:
        for body, message in HOSTILE_EVENT_BODIES:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                answer = await response.json()
                assert response.status == 400 and message in answer["error"]["message"], (body[:60], answer)
                assert "Error" not in answer["error"]["message"] and "Traceback" not in answer["error"]["message"]
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        async with session.post(url, data=b"not gzip at all", headers=headers) as response:
            answer = await response.json()
            assert response.status == 400 and "compressed" in answer["error"]["message"], answer
        for query in ("user_id=%D9%A7", "user_id=%EF%BC%97", "user_id=+7", "user_id=7_0"):  # ٧, fullwidth 7
            status, answer = await get_json(session, f"{http_base(stack)}/v1/recommendations?{query}")
            assert status == 400 and "user_id must be an integer" in answer["error"]["message"], (query, answer)


async def test_grpc_api(stack: LocalStack) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway.port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        reply = await stub.Recommend(gateway_pb2.RecommendRequest(user_id=4, k=6), timeout=5)
        assert len(reply.items) == 6 and all(item.sources for item in reply.items)
        assert all(item.HasField("rank_score") for item in reply.items) and reply.served_by["ranking"]
        similar = await stub.SimilarItems(gateway_pb2.GatewaySimilarItemsRequest(item_id=3, k=4), timeout=5)
        assert len(similar.items) == 4 and similar.item_id == 3
        event = await stub.RecordEvent(common_pb2.Event(user_id=4, item_id=similar.items[0].item_id, type="click"))
        assert event.user_version >= 1
        for request in (gateway_pb2.RecommendRequest(user_id=0, k=5), gateway_pb2.RecommendRequest(user_id=4, k=900)):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.Recommend(request, timeout=5)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details()


async def test_a_huge_event_type_gets_a_bounded_invalid_argument_and_the_replica_stays_healthy(
    stack: LocalStack,
) -> None:
    huge = "x" * 12_000  # quoted whole, its message would outgrow gRPC's status header
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway.port}") as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.RecordEvent(common_pb2.Event(user_id=4, item_id=5, type=huge), timeout=5)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.value.details().startswith("type must be one of") and len(error.value.details()) <= 300
        reply = await stub.Recommend(gateway_pb2.RecommendRequest(user_id=4, k=5), timeout=5)
        assert len(reply.items) == 5 and not reply.degraded  # no replica was ejected
    async with aiohttp.ClientSession() as session:
        body = {"user_id": 4, "item_id": 5, "type": huge}
        async with session.post(f"{http_base(stack)}/v1/events", json=body) as response:
            answer = await response.json()
        assert response.status == 400 and len(answer["error"]["message"]) <= 300


async def test_read_your_writes_through_every_cache(stack: LocalStack, tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    user = int(bundle.users.ids[20])
    base = http_base(stack)
    async with aiohttp.ClientSession() as session:
        _, before = await get_json(session, f"{base}/v1/recommendations?user_id={user}&k=20")
        _, again = await get_json(session, f"{base}/v1/recommendations?user_id={user}&k=20")
        assert all(item["cached"] for item in again["items"])  # the gateway's result cache is warm
        liked = before["items"][0]["item_id"]
        _, similar = await get_json(session, f"{base}/v1/items/{liked}/similar?k=10")
        async with session.post(
            f"{base}/v1/events", json={"user_id": user, "item_id": liked, "type": "rating", "rating": 5.0}
        ) as response:
            assert response.status == 200
        _, after = await get_json(session, f"{base}/v1/recommendations?user_id={user}&k=20")
    after_ids = [item["item_id"] for item in after["items"]]
    assert liked not in after_ids
    assert not any(item["cached"] for item in after["items"])
    # the tiers behind the gateway now see the rating: newest positive first, and recall seeds from it
    feature, recall = stack.replicas("feature")[0], stack.replicas("recall")[0]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{feature.port}") as channel:
        profile = await feature_pb2_grpc.FeatureServiceStub(channel).GetUserFeatures(
            feature_pb2.GetUserFeaturesRequest(user_id=user)
        )
    assert profile.recent_items[0] == liked and liked in profile.rated_items
    async with grpc.aio.insecure_channel(f"127.0.0.1:{recall.port}") as channel:
        stub = recall_pb2_grpc.RecallServiceStub(channel)
        candidates = await stub.Recall(recall_pb2.RecallRequest(user=profile, k=100))
    item2item_bit = 1 << list(candidates.channels).index("item2item")
    proposed = {
        item for item, mask in zip(candidates.item_ids, candidates.source_masks, strict=True) if mask & item2item_bit
    }
    neighbours = {item["item_id"] for item in similar["items"]}
    assert proposed & neighbours, "item-to-item recall should now seed from the newly liked item"


async def test_metrics_expose_routing_caches_and_utilization(stack: LocalStack) -> None:
    families = {f.name: f for f in text_string_to_metric_families(scrape(stack.gateway.http_port))}
    for name in (
        "wren_upstream_requests",
        "wren_upstream_latency_seconds",
        "wren_ring_members",
        "wren_ring_routable",
        "wren_cache_requests",
        "wren_http_requests",
        "wren_utilization",
        "wren_capacity",
    ):
        assert name in families, name
    tiers = {s.labels["tier"] for s in families["wren_ring_members"].samples}
    assert tiers == {"feature", "recall", "ranking"}
    caches = {s.labels["cache"] for s in families["wren_cache_requests"].samples}
    assert {"gateway_results", "gateway_coldstart"} <= caches
    for member in stack.members:
        if member.tier == "gateway":
            continue
        tier_families = {f.name: f for f in text_string_to_metric_families(scrape(member.metrics_port))}
        utilization = [s for s in tier_families["wren_utilization"].samples if s.labels["service"] == member.tier]
        assert utilization and 0.0 <= utilization[0].value <= 1.0
        served = [s for s in tier_families["wren_grpc_server_requests"].samples if s.name.endswith("_total")]
        assert sum(s.value for s in served) > 0, member.name


class Load:
    """Keeps `concurrency` clients requesting recommendations for a rotating set of users."""

    def __init__(self, base: str, users: list[int], concurrency: int = 4) -> None:
        self.base, self.users, self.concurrency = base, users, concurrency
        self.failures: list[str] = []
        self.degraded = 0
        self.done = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def _worker(self, offset: int, session: aiohttp.ClientSession) -> None:
        index = offset
        while not self._stop.is_set():
            user = self.users[index % len(self.users)]
            index += self.concurrency
            try:
                status, body = await get_json(
                    session,
                    f"{self.base}/v1/recommendations?user_id={user}&k=5",
                    headers={"X-Request-Timeout-Ms": "1000"},
                )
                if status != 200 or not body.get("items"):
                    self.failures.append(f"{status} {body}")
                self.degraded += bool(body.get("degraded"))
            except (aiohttp.ClientError, TimeoutError) as error:
                self.failures.append(repr(error))
            self.done += 1

    async def __aenter__(self) -> Load:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._tasks = [asyncio.create_task(self._worker(i, self.session)) for i in range(self.concurrency)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        await self.session.close()


async def recall_owner(session: aiohttp.ClientSession, base: str, users: list[int]) -> dict[int, str]:
    owners = {}
    for user in users:
        _, body = await get_json(session, f"{base}/v1/recommendations?user_id={user}&k=3")
        owners[user] = body["served_by"]["recall"]
    return owners


async def test_sigkill_of_one_recall_replica_fails_no_request_and_moves_only_its_users(resilient: LocalStack) -> None:
    base = http_base(resilient)
    users = list(range(1, 301))
    async with aiohttp.ClientSession() as session:
        before = await recall_owner(session, base, users)
        shares = {m.name: sum(o.endswith(f":{m.port}") for o in before.values()) for m in resilient.replicas("recall")}
        victim = resilient.member(sorted(shares, key=shares.get)[1])  # the replica with the median share
        async with Load(base, users) as load:
            await asyncio.sleep(0.5)
            resilient.signal(victim.name, signal.SIGKILL)
            await asyncio.sleep(2.0)
        after = await recall_owner(session, base, users)
    assert load.done > 50 and load.failures == []
    moved = {u for u in users if before[u] != after[u]}
    owned_by_victim = {u for u in users if before[u].endswith(f":{victim.port}")}
    assert moved == owned_by_victim
    assert 0.25 <= len(moved) / len(users) <= 0.42
    await resilient.restart(victim.name)


async def test_sigterm_of_a_replica_under_load_fails_no_request(resilient: LocalStack) -> None:
    base = http_base(resilient)
    async with Load(base, list(range(1, 200))) as load:
        await asyncio.sleep(0.5)
        for tier in ("recall", "feature", "ranking"):
            victim = resilient.replicas(tier)[-1]
            resilient.signal(victim.name, signal.SIGTERM)
            await asyncio.sleep(1.0)
    assert load.done > 50 and load.failures == []
    for tier in ("recall", "feature", "ranking"):
        victim = resilient.replicas(tier)[-1]
        resilient.processes[victim.name].wait(timeout=15)
        assert resilient.processes[victim.name].returncode == 0
        await resilient.restart(victim.name)


async def test_ranking_outage_degrades_within_the_deadline_and_recovers(resilient: LocalStack) -> None:
    base = http_base(resilient)
    rankers = resilient.replicas("ranking")
    for member in rankers:
        resilient.signal(member.name, signal.SIGKILL)
    for member in rankers:
        resilient.processes[member.name].wait(timeout=10)
    async with aiohttp.ClientSession() as session:
        for user in range(1, 21):
            started = time.monotonic()
            status, body = await get_json(
                session, f"{base}/v1/recommendations?user_id={user}&k=5", headers={"X-Request-Timeout-Ms": "300"}
            )
            elapsed = time.monotonic() - started
            assert status == 200 and body["degraded"] and "ranking" in body["degraded_reason"], body
            assert len(body["items"]) == 5 and all(item["rank_score"] is None for item in body["items"])
            assert elapsed < 1.0, f"degraded answer took {elapsed:.3f}s for a 300 ms deadline"
        for member in rankers:
            await resilient.restart(member.name)
        deadline = time.monotonic() + 30
        while True:
            _, body = await get_json(session, f"{base}/v1/recommendations?user_id=5&k=5")
            if not body["degraded"]:
                break
            assert time.monotonic() < deadline, "degraded answers did not stop after ranking returned"
            await asyncio.sleep(0.2)
    families = {f.name: f for f in text_string_to_metric_families(scrape(resilient.gateway.http_port))}
    reasons = {s.labels["reason"] for s in families["wren_degraded_responses"].samples if s.value > 0}
    assert "ranking_unavailable" in reasons
    failovers = [s for s in families["wren_upstream_failovers"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in failovers) > 0
    assert any(s.value > 0 for s in families["wren_upstream_ejections"].samples if s.name.endswith("_total"))
