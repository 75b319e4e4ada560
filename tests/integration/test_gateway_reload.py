"""A running gateway over the three real tiers on loopback gRPC: request ids reach every tier, and a bundle
published under it is followed (its info metric, its cache keys) while it keeps answering."""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.common.caches import MISSING
from services.common.logs import request_id
from services.feature.core import FeatureCore
from services.feature.main import FeatureSettings
from services.feature.main import start as start_feature
from services.gateway.main import Gateway, GatewaySettings
from services.gateway.main import start as start_gateway
from services.ranking.main import RankingSettings
from services.ranking.main import start as start_ranking
from services.ranking.ranker import Ranker
from services.recall.core import RecallCore
from services.recall.main import RecallSettings
from services.recall.main import start as start_recall
from wren.core.bundle import CURRENT, MANIFEST, Bundle

RELOAD_SECONDS = 0.1
K = 10


@dataclass
class Stack:
    root: Path
    gateway: Gateway


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail("condition not met in time")


@pytest.fixture
async def stack(tiny_artifacts: Path, tmp_path: Path) -> AsyncIterator[Stack]:
    root = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, root, symlinks=True)
    common: dict[str, Any] = {"artifacts": str(root), "host": "127.0.0.1", "port": 0, "reload_seconds": RELOAD_SECONDS}
    async with AsyncExitStack() as stack:
        ports = {}
        for name, start, settings in (
            ("feature", start_feature, FeatureSettings(**common)),
            ("recall", start_recall, RecallSettings(**common)),
            ("ranking", start_ranking, RankingSettings(**common)),
        ):
            running = await start(settings)
            stack.push_async_callback(running.stop)
            ports[name] = running.service.port
        gateway = await start_gateway(
            GatewaySettings(
                **common,
                http_port=0,
                health_check_seconds=0.05,
                **{f"{name}_replicas": f"127.0.0.1:{port}" for name, port in ports.items()},
            )
        )
        stack.push_async_callback(gateway.stop, 0)
        await eventually(gateway.ready)
        yield Stack(root, gateway)


def publish_copy(root: Path, suffix: str) -> str:
    """Publishes a copy of the current bundle under a new version, the way `wren train` switches `current`."""
    old = Bundle(root)
    new = root / f"{old.version}-{suffix}"
    shutil.copytree(old.path, new)
    manifest = json.loads((new / MANIFEST).read_text())
    manifest["version"] = new.name
    (new / MANIFEST).write_text(json.dumps(manifest))
    (root / "tmp-link").symlink_to(new.name)
    (root / "tmp-link").replace(root / CURRENT)
    return new.name


def bundle_info(version: str) -> float | None:
    return REGISTRY.get_sample_value("wren_bundle_info", {"service": "gateway", "version": version})


async def test_every_tier_logs_the_request_id_of_the_gateway_request(
    stack: Stack, tiny_artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, list[str]] = {"feature": [], "recall": [], "ranking": []}

    def spy(tier: str, original: Any) -> Any:
        """`original` (a tier core's method, sync or async) noting the request id its call runs under: what
        the tier's log lines carry (its interceptor sets it from the x-request-id metadata)."""
        if inspect.iscoroutinefunction(original):

            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                seen[tier].append(request_id.get())
                return await original(*args, **kwargs)

            return wrapped_async

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            seen[tier].append(request_id.get())
            return original(*args, **kwargs)

        return wrapped

    for tier, cls, method in (
        ("feature", FeatureCore, "user"),
        ("recall", RecallCore, "recall"),
        ("ranking", Ranker, "rank"),
    ):
        monkeypatch.setattr(cls, method, spy(tier, getattr(cls, method)))
    user = int(Bundle(tiny_artifacts).users.ids[2])
    token = request_id.set("trace-me-42")
    try:
        result = await stack.gateway.recommender.recommend(user, K)
    finally:
        request_id.reset(token)
    assert not result.degraded, result.degraded_reason
    assert seen == {"feature": ["trace-me-42"], "recall": ["trace-me-42"], "ranking": ["trace-me-42"]}


async def test_the_gateway_follows_a_new_bundle_in_its_info_metric_and_cache_keys(
    stack: Stack, tiny_artifacts: Path
) -> None:
    recommender = stack.gateway.recommender
    old = recommender.bundle.version
    user = int(Bundle(tiny_artifacts).users.ids[4])
    first = await recommender.recommend(user, K)
    assert not first.degraded, first.degraded_reason
    assert recommender.results.get(user, (K, old, "control")) is not MISSING
    assert bundle_info(old) == 1

    new = publish_copy(stack.root, "next")
    await eventually(lambda: bundle_info(new) == 1)
    assert bundle_info(old) is None
    assert recommender.bundle.version == new and recommender.bundle.catalog.version == new

    await eventually(lambda: stack.gateway.ready())
    again = await recommender.recommend(user, K)
    assert not again.degraded and not again.items[0].cached, "the old bundle's cached list is not served"
    assert recommender.results.get(user, (K, new, "control")) is not MISSING
    assert [item.item_id for item in again.items] == [item.item_id for item in first.items]
