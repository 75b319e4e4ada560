"""A real Prometheus server with Wren's rules scraping a `wren up` stack under load: the autoscaling series
exist and make sense, every query the rules, dashboard and adapter hold runs, every metric they name exists."""

from __future__ import annotations

import asyncio
import json
import math
import random
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import yaml

from services.stack import LocalStack, StackConfig
from tests.support.deploy_helpers import (
    PROMETHEUS_DIR,
    RULE_FILES,
    TIERS,
    adapter_expressions,
    dashboard_expressions,
    exported_metric_names,
    metric_names,
    require_tool,
    rule_expressions,
)
from tests.support.netutil import free_port, scrape
from wren.core.bundle import Bundle

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

REPLICAS = 2
LOAD_SECONDS = 12.0
CONCURRENCY = 16
PROMETHEUS_BUILTINS = {"up"}
# Exported by processes this (embedded-store) stack does not run: the nearline tier, which needs Redis, and the
# `wren retrain` batch job; tests/e2e/test_nearline_e2e.py checks that they export what the rules and dashboard name.
NOT_IN_THIS_STACK = ("wren_nearline_", "wren_retrain_")
# Every request reaches the tiers (no gateway result caches), so each tier's utilization moves.
STACK_ENV = {"WREN_RESULTS_CACHE_TTL_SECONDS": "0", "WREN_COLDSTART_CACHE_TTL_SECONDS": "0"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalStack]:
    running = LocalStack(
        StackConfig(
            artifacts=tiny_artifacts,
            replicas=REPLICAS,
            grpc_port=0,
            http_port=0,
            state_dir=tmp_path_factory.mktemp("prom-stack"),
            grace_seconds=2.0,
            env=STACK_ENV,
        )
    )
    try:
        await running.start()
    except BaseException:
        await running.stop()
        raise
    yield running
    await running.stop()


@pytest.fixture(scope="module")
def prometheus(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """deploy/prometheus/prometheus.yml with 1 s intervals, the repository's rules and the stack's targets."""
    binary = require_tool("prometheus")
    directory = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(path) for path in RULE_FILES]
    (job,) = config["scrape_configs"]
    (sd,) = job["file_sd_configs"]
    sd["files"] = [str(stack.config.directory / "prometheus_targets.json")]
    sd["refresh_interval"] = "1s"
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = directory / "prometheus.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus not ready after 30 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api(prometheus: str, path: str, **params: str) -> dict:
    query = urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(f"{prometheus}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = json.loads(error.read())
    return body


def instant(prometheus: str, expr: str, at: float | None = None) -> list[dict]:
    params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
    body = api(prometheus, "query", **params)
    assert body["status"] == "success", f"{expr}: {body.get('error')}"
    return body["data"]["result"]


def by_service(result: list[dict]) -> dict[str, float]:
    return {sample["metric"]["service"]: float(sample["value"][1]) for sample in result}


async def drive_load(base_url: str, users: list[int], seconds: float, concurrency: int) -> Counter[int]:
    """GET /v1/recommendations for random known users from `concurrency` workers for `seconds`."""
    statuses: Counter[int] = Counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def worker(session: aiohttp.ClientSession, seed: int) -> None:
        rng = random.Random(seed)
        while loop.time() < deadline:
            params = {"user_id": str(rng.choice(users)), "k": "10"}
            async with session.get(f"{base_url}/v1/recommendations", params=params) as response:
                await response.read()
                statuses[response.status] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session, seed) for seed in range(concurrency)))
    return statuses


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def loaded(stack: LocalStack, prometheus: str, tiny_artifacts: Path) -> Counter[int]:
    """The stack after LOAD_SECONDS of concurrent HTTP traffic, scraped by Prometheus all along."""
    deadline = time.monotonic() + 20
    while True:  # every process scraped at least once before the load starts
        targets = api(prometheus, "targets")["data"]["activeTargets"]
        if len(targets) == 3 * REPLICAS + 1 and all(t["health"] == "up" for t in targets):
            break
        assert time.monotonic() < deadline, f"targets not all up: {[(t['scrapeUrl'], t['health']) for t in targets]}"
        await asyncio.sleep(0.25)
    users = [int(user) for user in Bundle(tiny_artifacts).users.ids[:200]]
    return await drive_load(f"http://127.0.0.1:{stack.gateway.http_port}", users, LOAD_SECONDS, CONCURRENCY)


async def test_prometheus_derives_utilization_and_desired_replicas_for_every_tier(
    loaded: Counter[int], prometheus: str
) -> None:
    served = sum(loaded.values())
    assert loaded[200] >= 0.99 * served and served > 100, f"load went wrong: {dict(loaded)}"
    deadline = time.monotonic() + 20
    while True:
        at = time.time()
        utilization = by_service(instant(prometheus, "service:wren_utilization:avg1m", at))
        if set(utilization) == set(TIERS) and all(value > 0 for value in utilization.values()):
            break
        assert time.monotonic() < deadline, f"utilization per tier never above 0 for all tiers: {utilization}"
        await asyncio.sleep(0.5)
    replicas = by_service(instant(prometheus, "service:wren_replicas:count", at))
    desired = by_service(instant(prometheus, "service:wren_replicas:desired", at))
    (target_sample,) = instant(prometheus, "wren:hpa_utilization:target", at)
    target = float(target_sample["value"][1])
    per_process = instant(prometheus, "instance:wren_utilization:ratio_rate1m", at)
    print(f"\n{served} requests ({dict(loaded)}) in {LOAD_SECONDS:.0f}s; target {target}")
    for tier in TIERS:
        print(
            f"  {tier:8} replicas {replicas[tier]:.0f}  utilization {utilization[tier]:.5f}"
            f"  desired {desired[tier]:.0f}"
        )
    assert replicas == {"feature": REPLICAS, "recall": REPLICAS, "ranking": REPLICAS, "gateway": 1}
    assert set(desired) == set(TIERS)
    for tier in TIERS:
        assert math.isfinite(utilization[tier]) and 0 < utilization[tier] <= 1, (tier, utilization[tier])
        assert math.isfinite(desired[tier]) and desired[tier] >= 1, (tier, desired[tier])
        assert desired[tier] == math.ceil(replicas[tier] * utilization[tier] / target)
    assert len(per_process) == 3 * REPLICAS + 1
    assert all(math.isfinite(float(sample["value"][1])) for sample in per_process)


async def test_the_adapter_queries_give_every_process_a_value(loaded: Counter[int], prometheus: str) -> None:
    # What prometheus-adapter would send, with the local stack's `instance` standing in for the pod.
    for item in adapter_expressions(group_by="instance", matchers='job=~"wren-.+"'):
        values = {sample["metric"]["instance"]: float(sample["value"][1]) for sample in instant(prometheus, item.expr)}
        assert len(values) == 3 * REPLICAS + 1, f"{item.source}: {values}"
        assert all(math.isfinite(v) and v >= 0 for v in values.values()), f"{item.source}: {values}"
        assert any(v > 0 for v in values.values()), f"{item.source}: all zero under load"


async def test_every_rule_dashboard_and_adapter_query_runs_on_the_live_server(
    loaded: Counter[int], prometheus: str
) -> None:
    expressions = rule_expressions() + dashboard_expressions() + adapter_expressions()
    failures = []
    for item in expressions:
        body = api(prometheus, "query", query=item.expr)
        if body["status"] != "success":
            failures.append(f"{item.source}: {body.get('error')}")
    assert not failures, "\n".join(failures)
    rule_health = [
        rule
        for group in api(prometheus, "rules")["data"]["groups"]
        for rule in group["rules"]
        if rule["health"] != "ok"
    ]
    assert not rule_health, [(r["name"], r.get("lastError")) for r in rule_health]


async def test_every_metric_the_rules_dashboard_and_adapter_name_is_exported(
    loaded: Counter[int], stack: LocalStack
) -> None:
    exported: set[str] = set()
    for member in stack.members:
        exported |= exported_metric_names(await asyncio.to_thread(scrape, member.metrics_port))
    referenced: dict[str, str] = {}
    for item in rule_expressions() + dashboard_expressions() + adapter_expressions():
        for name in metric_names(item.expr):
            if ":" not in name:  # recording rules are checked against the rule files elsewhere
                referenced.setdefault(name, item.source)
    missing = {
        name: source
        for name, source in referenced.items()
        if name not in exported and name not in PROMETHEUS_BUILTINS and not name.startswith(NOT_IN_THIS_STACK)
    }
    assert not missing, f"not exported by any Wren process: {missing}"
    assert len(referenced) >= 15
