"""The served list: never an already-rated item (normal and every fallback), and `wren evaluate` measures what
the HTTP API returns."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from pipeline.config import TrainConfig, config_from_dict
from pipeline.data.loaders import load_dataset
from pipeline.evaluate import bundle_split, served_metrics
from pipeline.evaluation.served import http_source, served_lists_http
from services.inprocess import served_lists
from tests.e2e.test_stack_e2e import NO_GATEWAY_CACHES, http_base, start_stack
from wren.core.bundle import Bundle

pytestmark = [pytest.mark.e2e]


def test_served_users_cover_every_rating_and_evaluation_users_the_training_part(
    tiny_artifacts: Path, tiny_data: Path
) -> None:
    served, evaluation = Bundle(tiny_artifacts), Bundle(tiny_artifacts, "evaluation")
    dataset = load_dataset(tiny_data)
    split = bundle_split(served, dataset)
    for table, ratings in ((served.users, dataset.ratings), (evaluation.users, split.train)):
        by_user = ratings.groupby("user_id")["item_id"].apply(set)
        assert set(table.ids.tolist()) == set(by_user.index)
        for row, user in enumerate(table.ids.tolist()):
            assert set(table.rated(row).tolist()) == by_user[user]
    newest_first = dataset.ratings.sort_values(["user_id", "timestamp", "item_id"], ascending=[True, False, False])
    order = newest_first.groupby("user_id")["item_id"].apply(list)
    for row, user in enumerate(served.users.ids.tolist()):
        assert served.users.rated(row).tolist() == order[user]


async def _lists(base: str, users: list[int], k: int) -> dict[int, dict]:
    """One request at a time, so that no answer is degraded by this test's own load."""
    answers = {}
    async with aiohttp.ClientSession() as session:
        for user in users:
            async with session.get(f"{base}/v1/recommendations?user_id={user}&k={k}") as response:
                assert response.status == 200, await response.text()
                answers[user] = await response.json()
    return answers


def _assert_unrated(answers: dict[int, dict], bundle: Bundle, reason: str) -> None:
    for user, body in answers.items():
        row = bundle.users.row(user)
        rated = set(bundle.users.rated(row).tolist()) if row is not None else set()
        ids = [item["item_id"] for item in body["items"]]
        assert ids and not set(ids) & rated, (reason, user, set(ids) & rated)
        if reason:
            assert reason in body["degraded_reason"], (reason, body["degraded_reason"])


async def test_no_rated_item_is_served_to_any_user_even_with_tiers_down(tiny_artifacts: Path, tmp_path: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    users = bundle.users.ids.tolist()
    stack = await start_stack(tiny_artifacts, tmp_path / "stack", 1, NO_GATEWAY_CACHES)
    try:
        base = http_base(stack)
        _assert_unrated(await _lists(base, users, 20), bundle, "")
        async with aiohttp.ClientSession() as session:  # an event's item is gone from the next list at once
            user = users[0]
            before = await _lists(base, [user], 20)
            item = before[user]["items"][0]["item_id"]
            async with session.post(f"{base}/v1/events", json={"user_id": user, "item_id": item, "type": "click"}):
                pass
            after = await _lists(base, [user], 20)
            assert item not in [i["item_id"] for i in after[user]["items"]]
        for tier, reason in (
            ("ranking", "ranking_unavailable"),
            ("recall", "recall_unavailable"),
            ("feature", "features_unavailable"),
        ):
            for member in stack.replicas(tier):
                stack.signal(member.name, signal.SIGKILL)
            await asyncio.sleep(0.5)
            answers = await _lists(base, users, 20)
            _assert_unrated(answers, bundle, reason)
            assert item not in [i["item_id"] for i in answers[user]["items"]]  # remembered by the gateway
    finally:
        await stack.stop()


async def test_evaluation_of_the_served_list_equals_what_the_http_api_returns(
    tiny_artifacts: Path, tiny_data: Path, tmp_path: Path
) -> None:
    bundle = Bundle(tiny_artifacts)
    dataset = load_dataset(tiny_data)
    users = sorted(bundle_split(bundle, dataset).test["user_id"].unique().tolist())
    # per-attempt timeouts sized for a busy CI machine: a degraded answer would not be the ranked list
    slow_ok = {"WREN_FEATURE_TIMEOUT_MS": "5000", "WREN_RECALL_TIMEOUT_MS": "5000", "WREN_RANKING_TIMEOUT_MS": "5000"}
    stack = await start_stack(
        tiny_artifacts, tmp_path / "stack", 1, {**NO_GATEWAY_CACHES, **slow_ok, "WREN_USER_STATE": "evaluation"}
    )
    try:
        base = http_base(stack)
        over_http = await asyncio.to_thread(served_lists_http, base, users, 10)
        in_process = await asyncio.to_thread(served_lists, bundle.path, users, 10)
        assert over_http.degraded == in_process.degraded == 0
        assert over_http.lists.keys() == in_process.lists.keys()
        for user in users:
            np.testing.assert_array_equal(over_http.lists[user], in_process.lists[user])
        config = config_from_dict(bundle.manifest.config)
        measured = await asyncio.to_thread(served_metrics, bundle, dataset, config, http_source(base))
        recorded = bundle.manifest.metrics["served"]["systems"]
        assert measured["systems"]["wren"] == pytest.approx({**recorded["wren"], "degraded_answers": 0})
        assert measured["systems"]["wren"]["rated_items_served"] == 0
        assert set(measured["systems"]) == {"wren", "popularity", "cooccurrence", "als", "bpr", "ease"}
    finally:
        await stack.stop()


def test_a_sampled_evaluation_agrees_with_the_full_one_within_its_interval(
    tiny_artifacts: Path, tiny_data: Path
) -> None:
    bundle = Bundle(tiny_artifacts)
    config = config_from_dict(bundle.manifest.config)
    dataset = load_dataset(tiny_data)

    def sampled_to(max_users: int) -> TrainConfig:
        return config.updated(evaluation={"max_users": max_users})

    full = served_metrics(bundle, dataset, sampled_to(0), served_lists)
    half = full["users"] // 2
    sampled = served_metrics(bundle, dataset, sampled_to(half), served_lists)
    assert full["population"] == full["users"] == sampled["population"] and sampled["users"] == half
    assert all(value == 0.0 for value in full["ndcg_ci95"].values())
    for system, row in sampled["systems"].items():
        interval = sampled["ndcg_ci95"][system]
        assert interval > 0.0, system
        key = f"ndcg_at_{full['k']}"
        assert abs(row[key] - full["systems"][system][key]) <= interval, system
