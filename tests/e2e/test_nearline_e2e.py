"""The learning loop end to end, as separate processes on a real redis-server: nearline exactly-once under
SIGKILL, trending into the popularity channel, invalidation across gateways, gated retrain with hot reload."""
# Long: the learning loop is one scenario over shared redis-server and stack processes (module fixtures).

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio
import redis

from pipeline.events import load_event_log
from services.common.nearline_keys import NearlineKeys
from services.common.redis_layout import stream_fields
from services.stack import LocalStack, StackConfig
from tests.support.deploy_helpers import dashboard_expressions, exported_metric_names, metric_names, rule_expressions
from tests.support.netutil import free_port, scrape, wait_serving
from tests.support.redis_server import RedisServer
from wren.core.bundle import Bundle
from wren.core.types import Event
from wren.v1 import feature_pb2, feature_pb2_grpc, recall_pb2, recall_pb2_grpc

pytestmark = [pytest.mark.e2e]
KEYS = NearlineKeys()
REPO = Path(__file__).resolve().parents[2]
FAST_CLAIMS = {"WREN_CLAIM_IDLE_MS": "500", "WREN_CLAIM_EVERY_SECONDS": "0.5", "WREN_BATCH": "200"}


def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


class NearlineProcess:
    """`wren nearline` as a child process on free ports."""

    def __init__(self, redis_url: str, log_dir: Path, logs: Path) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        env = {**os.environ, **FAST_CLAIMS, "WREN_REDIS_URL": redis_url, "WREN_EVENT_LOG_DIR": str(log_dir)}
        logs.parent.mkdir(parents=True, exist_ok=True)
        with open(logs, "ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wren.cli.main",
                    "nearline",
                    "--port",
                    str(self.port),
                    "--metrics-port",
                    str(self.metrics_port),
                    "--host",
                    "127.0.0.1",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        asyncio.run(wait_serving(f"127.0.0.1:{self.port}"))

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


def group_info(client: redis.Redis) -> dict:
    return next(g for g in client.xinfo_groups(KEYS.stream) if g["name"] == KEYS.group.encode())


def test_sigkill_mid_stream_loses_and_doubles_nothing(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    rng = random.Random(3)
    now = int(time.time())
    events = []
    for i in range(10_000):
        kind = rng.choice(["rating", "rating", "click", "view"])
        events.append(
            Event(
                rng.randint(1, 200),
                rng.randint(1, 60),
                kind,
                rng.choice([1.0, 2.5, 4.0, 5.0]) if kind == "rating" else None,
                now,
                f"ev-{i}",
            )
        )
    entries = [stream_fields(e) for e in events]
    entries.insert(5_000, stream_fields(events[4_321]))  # one event sent twice, the copy arriving much later
    log_dir = tmp_path / "events"

    def push(batch: list[dict]) -> None:
        with client.pipeline(transaction=False) as pipe:
            for fields in batch:
                pipe.xadd(KEYS.stream, fields)
            pipe.execute()

    first = NearlineProcess(redis_url, log_dir, tmp_path / "logs" / "first.log")
    try:
        push(entries[:3_000])
        eventually(lambda: group_info(client)["entries-read"] >= 500, 30, "the first consumer reads")
        push(entries[3_000:6_000])
        first.kill()  # in the middle: 4,000 entries are not even in the stream yet
    finally:
        first.stop()
    read_before = group_info(client)["entries-read"]
    assert read_before < len(entries)
    push(entries[6_000:])
    second = NearlineProcess(redis_url, log_dir, tmp_path / "logs" / "second.log")
    try:
        eventually(
            lambda: (lambda g: g["pending"] == 0 and g["lag"] == 0)(group_info(client)), 60, "every entry acknowledged"
        )
        metrics = scrape(second.metrics_port)
    finally:
        second.stop()

    items: Counter[int] = Counter(e.item_id for e in events)
    users: Counter[int] = Counter(e.user_id for e in events)
    rating_sums: Counter[int] = Counter()
    for e in events:
        rating_sums[e.item_id] += e.rating or 0.0
    for item, count in items.items():
        stats = client.hgetall(KEYS.item(item))
        assert int(stats[b"count"]) == count, f"item {item}"
        assert float(stats.get(b"rating_sum", 0)) == pytest.approx(rating_sums[item])
    for user, count in users.items():
        assert int(client.hget(KEYS.user(user), "events")) == count, f"user {user}"
    assert sum(int(client.hget(KEYS.item(i), "count")) for i in items) == 10_000
    assert client.xlen(KEYS.dead_letters) == 0
    consumers = client.xinfo_consumers(KEYS.stream, KEYS.group)
    assert all(c["pending"] == 0 for c in consumers) and len(consumers) >= 2
    logged = load_event_log(log_dir)
    assert len(logged.ratings) == sum(e.type == "rating" for e in events)
    assert 'wren_nearline_events_total{result="applied"}' in metrics
    assert "wren_nearline_event_to_feature_seconds_count" in metrics
    named = {
        name
        for item in rule_expressions() + dashboard_expressions()
        for name in metric_names(item.expr)
        if name.startswith("wren_nearline_")
    }
    assert named and named <= exported_metric_names(metrics), "the rules and dashboard name what nearline exports"


def copy_artifacts(source: Path, root: Path) -> Path:
    bundle = source.joinpath("current").resolve()
    root.mkdir(parents=True)
    shutil.copytree(bundle, root / bundle.name)
    (root / "current").symlink_to(bundle.name, target_is_directory=True)
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def loop_stack(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    from tests.conftest import require_redis_server

    require_redis_server()
    directory = tmp_path_factory.mktemp("learning-loop")
    server = RedisServer(directory / "redis").start()
    artifacts = copy_artifacts(tiny_artifacts, directory / "artifacts")
    env = {"WREN_RESULTS_CACHE_TTL_SECONDS": "600", "WREN_RELOAD_SECONDS": "0.5", **FAST_CLAIMS}
    stack = LocalStack(
        StackConfig(
            artifacts=artifacts,
            grpc_port=0,
            http_port=0,
            redis_url=server.url,
            state_dir=directory / "state",
            grace_seconds=3.0,
            env=env,
        )
    )
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
        server.stop()


def base(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def post_event(session: aiohttp.ClientSession, port: int, **event: object) -> None:
    async with session.post(f"{base(port)}/v1/events", json=event) as response:
        assert response.status == 200, await response.text()


async def recommend(session: aiohttp.ClientSession, port: int, user: int, k: int = 10) -> dict:
    async with session.get(f"{base(port)}/v1/recommendations", params={"user_id": user, "k": k}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def popularity_items(stack: LocalStack, user: int, k: int = 20) -> set[int]:
    """The items recall's popularity channel placed among the user's k candidates (real tiers over gRPC)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.replicas('feature')[0].port}") as channel:
        profile = await feature_pb2_grpc.FeatureServiceStub(channel).GetUserFeatures(
            feature_pb2.GetUserFeaturesRequest(user_id=user), timeout=5
        )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.replicas('recall')[0].port}") as channel:
        reply = await recall_pb2_grpc.RecallServiceStub(channel).Recall(
            recall_pb2.RecallRequest(user=profile, k=k), timeout=5
        )
    bit = 1 << list(reply.channels).index("popularity")
    return {item for item, mask in zip(reply.item_ids, reply.source_masks, strict=True) if mask & bit}


@pytest.mark.asyncio(loop_scope="module")
async def test_a_burst_on_one_item_puts_it_in_the_popularity_channel_without_retraining(
    loop_stack: LocalStack, tiny_artifacts: Path
) -> None:
    assert loop_stack.member("nearline").pid  # `wren up` with Redis starts the nearline tier
    targets = json.loads((loop_stack.config.directory / "prometheus_targets.json").read_text())
    assert any(group["labels"]["tier"] == "nearline" and group["targets"] for group in targets)
    bundle = Bundle(tiny_artifacts)
    popular = [int(i) for i in bundle.cold_start["popular"]]
    target = next(int(i) for i in reversed(bundle.items.ids.tolist()) if int(i) not in popular[:40])
    users = [int(u) for u in bundle.users.ids[:6]]
    for user in users:
        assert target not in await popularity_items(loop_stack, user)
    clickers = [int(u) for u in bundle.users.ids[-8:]]
    async with aiohttp.ClientSession() as session:
        for user in clickers:
            await post_event(session, loop_stack.gateway.http_port, user_id=user, item_id=target, type="click")
    deadline = time.monotonic() + 15
    missing = set(users)
    while missing and time.monotonic() < deadline:
        missing = {user for user in missing if target not in await popularity_items(loop_stack, user)}
        await asyncio.sleep(0.1)
    assert not missing, f"item {target} not in the popularity channel of users {sorted(missing)}"


@pytest.mark.asyncio(loop_scope="module")
async def test_ratings_move_an_items_catalogue_figures_within_seconds(
    loop_stack: LocalStack, tiny_artifacts: Path
) -> None:
    bundle = Bundle(tiny_artifacts)
    item_id = int(bundle.items.ids[len(bundle.items.ids) // 2])
    port = loop_stack.gateway.http_port
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base(port)}/v1/items/{item_id}") as response:
            before = (await response.json())["item"]
        raters = [int(u) for u in bundle.users.ids[10:16]]
        for user in raters:
            await post_event(session, port, user_id=user, item_id=item_id, type="rating", rating=5.0)
        want = before["rating_count"] + len(raters)
        deadline, now = time.monotonic() + 15, before
        while now["rating_count"] < want and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            async with session.get(f"{base(port)}/v1/items/{item_id}") as response:
                now = (await response.json())["item"]
    assert now["rating_count"] == want, (before, now)
    known = before["rating_count"] * (before["rating_mean"] or 0.0)
    assert now["rating_mean"] == pytest.approx((known + 5.0 * len(raters)) / want, abs=1e-4)


@pytest.mark.asyncio(loop_scope="module")
async def test_an_event_on_one_gateway_removes_the_item_from_the_other_gateways_lists(
    loop_stack: LocalStack, tiny_artifacts: Path, tmp_path: Path
) -> None:
    first = loop_stack.gateway
    second = await start_second_gateway(loop_stack, tmp_path)
    try:
        user = int(Bundle(tiny_artifacts).users.ids[20])
        async with aiohttp.ClientSession() as session:
            served = await recommend(session, second.http_port, user)
            again = await recommend(session, second.http_port, user)
            assert all(item["cached"] for item in again["items"])  # the second gateway's cache is in play
            rated = served["items"][0]["item_id"]
            await post_event(session, first.http_port, user_id=user, item_id=rated, type="rating", rating=4.0)
            deadline = time.monotonic() + 10
            while True:
                items = [item["item_id"] for item in (await recommend(session, second.http_port, user))["items"]]
                if rated not in items or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        assert rated not in items and len(items) == 10
    finally:
        second.process.terminate()
        second.process.wait(15)


class SecondGateway:
    def __init__(self, process: subprocess.Popen, http_port: int) -> None:
        self.process = process
        self.http_port = http_port


async def start_second_gateway(stack: LocalStack, tmp_path: Path) -> SecondGateway:
    port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        **stack.config.env,
        "WREN_REDIS_URL": stack.config.redis_url,
        "WREN_HTTP_PORT": str(http_port),
        **{
            f"WREN_{tier.upper()}_REPLICAS": ",".join(f"127.0.0.1:{m.port}" for m in stack.replicas(tier))
            for tier in ("feature", "recall", "ranking")
        },
    }
    with open(tmp_path / "gateway-2.log", "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wren.cli.main",
                "serve",
                "gateway",
                "--artifacts",
                str(stack.config.artifacts),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    await wait_serving(f"127.0.0.1:{port}")
    return SecondGateway(process, http_port)


def bundle_versions(stack: LocalStack) -> dict[str, str]:
    """The bundle each recall, ranking and gateway process says it serves (wren_bundle_info)."""
    versions = {}
    for member in stack.members:
        if member.tier in ("recall", "ranking", "gateway"):
            for line in scrape(member.metrics_port).splitlines():
                if line.startswith(f'wren_bundle_info{{service="{member.tier}"'):
                    versions[member.name] = line.split('version="', 1)[1].split('"', 1)[0]
    return versions


async def feature_version(stack: LocalStack, user: int) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.replicas('feature')[0].port}") as channel:
        profile = await feature_pb2_grpc.FeatureServiceStub(channel).GetUserFeatures(
            feature_pb2.GetUserFeaturesRequest(user_id=user), timeout=5
        )
    return profile.bundle_version


async def retrain(stack: LocalStack, tiny_data: Path, config: Path, metrics_file: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "wren.cli.main",
        "retrain",
        "--data",
        str(tiny_data),
        "--artifacts",
        str(stack.config.artifacts),
        "--events",
        str(stack.config.directory / "events"),
        "--config",
        str(config),
        "--tolerance",
        "0.05",
        "--redis-url",
        stack.config.redis_url,
        "--metrics-file",
        str(metrics_file),
        "--quiet",
    ]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    return subprocess.CompletedProcess(command, process.returncode or 0, out.decode(), "")


async def load(stack: LocalStack, users: list[int], stop: asyncio.Event) -> tuple[int, list[str]]:
    """Requests through the gateway until `stop`; (answers, failures)."""
    answers, failures = 0, []
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            for user in users:
                async with session.get(
                    f"{base(stack.gateway.http_port)}/v1/recommendations", params={"user_id": user, "k": 5}
                ) as response:
                    answers += 1
                    if response.status != 200:
                        failures.append(f"{response.status}: {await response.text()}")
            await asyncio.sleep(0.02)
    return answers, failures


@pytest.mark.asyncio(loop_scope="module")
async def test_retrain_publishes_a_bundle_every_tier_serves_and_refuses_a_worse_one(
    loop_stack: LocalStack, tiny_artifacts: Path, tiny_data: Path, tiny_config_file: Path, tmp_path: Path
) -> None:
    bundle = Bundle(tiny_artifacts)
    live = bundle.version
    users = [int(u) for u in bundle.users.ids[30:40]]
    items = [int(i) for i in bundle.items.ids[:30]]
    async with aiohttp.ClientSession() as session:
        for n, user in enumerate(users):
            for item in items[n::5]:
                await post_event(
                    session, loop_stack.gateway.http_port, user_id=user, item_id=item, type="rating", rating=4.5
                )
    events = loop_stack.config.directory / "events"
    sent = sum(len(items[n::5]) for n in range(len(users)))
    eventually(lambda: len(load_event_log(events).ratings) >= sent, 15, "the ratings are in the event log")

    stop = asyncio.Event()
    traffic = asyncio.create_task(load(loop_stack, users, stop))
    done = await retrain(loop_stack, tiny_data, tiny_config_file, tmp_path / "good.prom")
    assert done.returncode == 0 and "wren retrain: published" in done.stdout, done.stdout
    new = Bundle(loop_stack.config.artifacts).version
    assert new != live
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        versions = bundle_versions(loop_stack)
        if set(versions.values()) == {new} and await feature_version(loop_stack, users[0]) == new:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # a little traffic on the new bundle too
    stop.set()
    answers, failures = await traffic
    assert set(bundle_versions(loop_stack).values()) == {new} and await feature_version(loop_stack, users[0]) == new
    assert answers > 20 and failures == []
    report = json.loads(sorted((loop_stack.config.artifacts / "retrain-reports").glob("*.json"))[-1].read_text())
    assert report["decision"]["publish"] and report["decision"]["live_version"] == live
    assert report["decision"]["candidate_version"] == new and report["events"]
    written = (tmp_path / "good.prom").read_text()
    assert "wren_retrain_published 1.0" in written and 'wren_retrain_served_ndcg{bundle="live"}' in written
    named = {
        name
        for item in rule_expressions() + dashboard_expressions()
        for name in metric_names(item.expr)
        if name.startswith("wren_retrain_")
    }
    assert named and named <= exported_metric_names(written)

    worse = tmp_path / "worse.toml"  # a ranker that never learns and no prior: a much worse served list
    worse.write_text(
        tiny_config_file.read_text()
        .replace("learning_rate = 0.003", "learning_rate = 0.0\nprior = false\ntune_prior_scale = false")
        .replace("epochs = 8", "epochs = 1")
    )
    refused = await retrain(loop_stack, tiny_data, worse, tmp_path / "worse.prom")
    assert refused.returncode == 0 and "wren retrain: refused" in refused.stdout, refused.stdout
    assert Bundle(loop_stack.config.artifacts).version == new
    report = json.loads(sorted((loop_stack.config.artifacts / "retrain-reports").glob("*.json"))[-1].read_text())
    decision = report["decision"]
    assert not decision["publish"] and decision["candidate_ndcg"] < decision["live_ndcg"] - 0.05
    assert "wren_retrain_published 0.0" in (tmp_path / "worse.prom").read_text()
    await asyncio.sleep(1.5)  # several reload polls: nobody picks the refused bundle up
    assert set(bundle_versions(loop_stack).values()) == {new} and await feature_version(loop_stack, users[0]) == new
    async with aiohttp.ClientSession() as session:
        assert (await recommend(session, loop_stack.gateway.http_port, users[0]))["items"]
