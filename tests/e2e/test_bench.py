"""`wren bench`: every suite at a tiny size through the CLI, checked for structure and honest figures."""
# Long: every bench suite runs against the same module-scoped tiny stack and artifacts.

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.loadgen import RunResult, closed_loop, open_loop
from benchmarks.report import non_finite, table, write_json
from benchmarks.scrape import hop_breakdown, parse
from benchmarks.stats import summarize
from benchmarks.targets import Outcome
from benchmarks.users import UserSampler, users_from_dataset, zipf_weights
from services.stack import LocalStack, StackConfig
from wren.cli.main import build_parser, main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SUITE_PNGS = {
    "stack": ["stack_latency_cdf.png", "stack_throughput_latency.png"],
    "cache": ["cache_hit_ratios.png", "cache_latency_cdf.png"],
    "index": ["index_latency.png", "index_recall_latency.png"],
    "ranking": ["ranking_latency.png"],
    "routing": ["routing_movement.png", "routing_balance.png"],
    "quality": ["quality_seeds.png"],
    "ladder": ["ladder_seconds.png", "ladder_memory.png"],
}


# -- helpers ------------------------------------------------------------------------------------------------


def numbers(value: Any) -> Iterator[float]:
    """Every number inside a JSON value (booleans excluded)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield float(value)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def check_latency(latency: dict[str, float]) -> None:
    order = [latency[name] for name in ("min", "p50", "p90", "p99", "p99.9", "max")]
    assert order == sorted(order) and order[0] > 0
    assert latency["min"] <= latency["mean"] <= latency["max"]


def check_run(run: dict[str, Any]) -> None:
    """One load-generator run: counts add up and every rate is computed from them."""
    assert run["requests"] > 0 and run["ok"] > 0
    assert run["ok"] + run["errors"] == run["requests"]
    assert sum(run["errors_by_code"].values()) == run["errors"]
    assert 0 <= run["degraded"] <= run["ok"] and 0 <= run["cached_responses"] <= run["ok"]
    assert close(run["error_rate"], run["errors"] / run["requests"])
    assert close(run["degraded_rate"], run["degraded"] / run["ok"])
    assert close(run["throughput_rps"], run["ok"] / run["elapsed_s"])
    assert close(run["goodput_rps"], (run["ok"] - run["degraded"]) / run["elapsed_s"])
    check_latency(run["latency_ms"])


def check_pngs(directory: Path, names: list[str]) -> None:
    for name in names:
        data = (directory / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2_000, name


class FakeTarget:
    """A target answering from a script: user ids divisible by 5 fail, by 3 are degraded, by 2 cached.
    With `stall_seconds`, the first call holds the event loop that long (as a CPU-bound handler would)."""

    name = "fake"
    protocol = "fake"

    def __init__(self, stall_seconds: float = 0.0) -> None:
        self.stall_seconds = stall_seconds
        self.calls = 0

    async def recommend(self, user_id: int, k: int) -> Outcome:
        self.calls += 1
        if self.calls == 1 and self.stall_seconds:
            time.sleep(self.stall_seconds)
        await asyncio.sleep(0)
        if user_id % 5 == 0:
            return Outcome("UNAVAILABLE")
        return Outcome("OK", degraded=user_id % 3 == 0, cached=user_id % 2 == 0)

    async def close(self) -> None:
        return None


# -- units ----------------------------------------------------------------------------------------------------


def test_zipf_sampler_draws_dataset_users_with_the_requested_skew() -> None:
    users = np.arange(100, 200, dtype=np.int64)
    assert np.allclose(zipf_weights(100, 0.0), 0.01)
    weights = zipf_weights(100, 1.2)
    assert close(weights.sum(), 1.0) and np.all(np.diff(weights) < 0)
    sampler = UserSampler(users, 1.2, seed=3)
    draws = np.array([sampler.next() for _ in range(20_000)])
    assert set(draws.tolist()) <= set(users.tolist())
    hottest = sampler.ranked[0]
    assert abs(np.mean(draws == hottest) - weights[0]) < 0.02
    again = UserSampler(users, 1.2, seed=3)
    assert [again.next() for _ in range(50)] == draws[:50].tolist()


def test_users_from_dataset_reads_the_user_column(tiny_data: Path) -> None:
    users = users_from_dataset(tiny_data)
    assert len(users) == 80 and np.all(np.diff(users) > 0)


async def test_closed_loop_counts_every_request_and_rates_come_from_them() -> None:
    target = FakeTarget()
    result = await closed_loop(target, UserSampler(np.arange(1, 31), 0.0, seed=1), concurrency=4, requests=60)
    assert target.calls == len(result.latencies) == 60
    summary = summarize(result)
    check_run(summary)
    assert summary["errors_by_code"] == {"UNAVAILABLE": summary["errors"]}
    assert close(summary["latency_ms"]["p99"], float(np.percentile(result.latencies * 1000, 99)))


async def test_open_loop_measures_latency_from_the_scheduled_send_time() -> None:
    """The first call stalls the event loop for 100 ms while a request is due every 10 ms; the others are
    answered at once. They could only be sent late, and that wait must show as their latency (measured from
    the actual send, it would be ~0: coordinated omission)."""
    n, rate, stall = 10, 100.0, 0.100
    result = await open_loop(
        FakeTarget(stall_seconds=stall), UserSampler(np.array([1, 7]), 0.0), rate=rate, requests=n, arrival="fixed"
    )
    assert len(result.latencies) == n
    # Request 1 was due at 10 ms but could not leave before the stall ended at >= 100 ms.
    assert result.send_lag.max() >= stall - 1 / rate
    assert np.sort(result.latencies)[-2] >= stall - 1 / rate
    check_run(summarize(result))


def test_summaries_refuse_runs_without_observations() -> None:
    empty = RunResult("empty", "closed", "fake", 10, 0.0, elapsed=1.0)
    with pytest.raises(RuntimeError, match="no request completed"):
        summarize(empty)


def test_json_writer_refuses_non_finite_figures(tmp_path: Path) -> None:
    assert non_finite({"a": [1.0, float("nan")], "b": {"c": None}, "d": 2}) == ["$.a[1]", "$.b.c"]
    with pytest.raises(ValueError, match="non-finite"):
        write_json(tmp_path / "x.json", {"p99": float("inf")})
    write_json(tmp_path / "ok.json", {"p99": 1.5})
    assert json.loads((tmp_path / "ok.json").read_text()) == {"p99": 1.5}


def test_tables_are_markdown() -> None:
    text = table(["setup", "rps"], [["a", 1234.7], ["b", None]], "title")
    assert text.splitlines()[2:4] == ["| setup |   rps |", "|:------|------:|"]
    assert "1,235" in text and "—" in text


def test_hop_breakdown_adds_up() -> None:
    page = """
# TYPE wren_grpc_server_latency_seconds histogram
wren_grpc_server_latency_seconds_count{service="gateway",method="Recommend"} 10
wren_grpc_server_latency_seconds_sum{service="gateway",method="Recommend"} 0.2
wren_grpc_server_latency_seconds_count{service="recall",method="Recall"} 10
wren_grpc_server_latency_seconds_sum{service="recall",method="Recall"} 0.08
wren_grpc_server_latency_seconds_count{service="feature",method="GetUserFeatures"} 10
wren_grpc_server_latency_seconds_sum{service="feature",method="GetUserFeatures"} 0.01
wren_grpc_server_latency_seconds_count{service="ranking",method="Rank"} 10
wren_grpc_server_latency_seconds_sum{service="ranking",method="Rank"} 0.02
# TYPE wren_upstream_latency_seconds histogram
wren_upstream_latency_seconds_count{tier="recall"} 10
wren_upstream_latency_seconds_sum{tier="recall"} 0.1
wren_upstream_latency_seconds_count{tier="feature"} 20
wren_upstream_latency_seconds_sum{tier="feature"} 0.03
wren_upstream_latency_seconds_count{tier="ranking"} 10
wren_upstream_latency_seconds_sum{tier="ranking"} 0.03
"""
    breakdown = hop_breakdown({"all": parse(page)}, client_mean_ms=25.0, protocol="grpc")
    assert breakdown["requests"] == 10 and close(breakdown["gateway_server_ms"], 20.0)
    assert close(breakdown["hops"]["recall"]["rpc_overhead_ms"], 2.0)
    assert close(breakdown["hops"]["feature"]["calls_per_request"], 2.0)
    assert close(breakdown["gateway_own_ms"], 20.0 - 10.0 - 3.0 - 3.0)
    assert close(breakdown["client_to_gateway_ms"], 5.0)


def test_bench_flags_are_on_the_cli() -> None:
    args = build_parser().parse_args(["bench", "--suite", "all", "--quick", "--artifacts", "a", "--out", "o"])
    assert args.suite == "all" and args.quick and args.out == Path("o")
    args = build_parser().parse_args(
        ["bench", "--target", "http://h:1", "--mode", "open", "--rate", "5,10", "--zipf", "1.2", "--duration", "3"]
    )
    assert (args.target, args.mode, args.rate, args.zipf, args.duration) == ("http://h:1", "open", "5,10", 1.2, 3.0)


def test_bench_without_a_target_or_suite_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--no-progress"]) == 2
    assert "--suite" in capsys.readouterr().err


# -- every suite through the CLI, at a tiny size ------------------------------------------------------------------


@pytest.fixture(scope="module")
def suites(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`wren bench --suite all --tiny`: one invocation, so the uncached stacks are shared between suites."""
    out = tmp_path_factory.mktemp("bench")
    assert (
        main(
            [
                "bench",
                "--suite",
                "all",
                "--tiny",
                "--artifacts",
                str(tiny_artifacts),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    return out


def load(out: Path, suite: str) -> dict[str, Any]:
    data = json.loads((out / f"{suite}.json").read_text())
    assert data["suite"] == suite and data["scale"] == "tiny" and data["machine"]["cpus"] >= 1
    assert all(math.isfinite(x) for x in numbers(data)) and not non_finite(data)
    check_pngs(out, SUITE_PNGS[suite])
    return data


@pytest.mark.e2e
def test_stack_suite(suites: Path) -> None:
    data = load(suites, "stack")
    for setup in ("inprocess", "stack_1x", "stack_2x"):
        entry = data[setup]
        for run in (*entry["closed"].values(), *entry["open"].values()):
            check_run(run)
        best = max(entry["closed"].values(), key=lambda run: run["goodput_rps"])
        assert entry["max_rps"] == best["goodput_rps"] > 0 and entry["max_rps_concurrency"] == best["concurrency"]
        assert entry["max_rps_any"] == max(run["throughput_rps"] for run in entry["closed"].values())
        assert entry["p99_ms_at_100rps"] == entry["open"]["100"]["latency_ms"]["p99"]
        assert set(entry["open"]) == {"50", "100"} and entry["open"]["100"]["offered_rps"] == 100
    processes = {
        "inprocess": set(),
        "stack_1x": {"gateway", "feature-1", "recall-1", "ranking-1"},
        "stack_2x": {"gateway"} | {f"{tier}-{i}" for tier in ("feature", "recall", "ranking") for i in (1, 2)},
    }
    for setup, names in processes.items():
        for run in data[setup]["closed"].values():
            cpu = run["cpu_ms_per_request"]
            assert names < set(cpu) and all(ms >= 0 for ms in cpu.values()) and cpu["total"] > 0
            assert close(cpu["total"], sum(ms for name, ms in cpu.items() if name != "total"))
            assert 0 <= run["machine_busy_cores"] <= data["machine"]["cpus"] + 0.5
    assert close(data["ratio_stack_to_inprocess"], data["stack_1x"]["max_rps"] / data["inprocess"]["max_rps"])
    assert close(data["ratio_2x_to_1x"], data["stack_2x"]["max_rps"] / data["stack_1x"]["max_rps"])

    breakdown = data["stack_1x"]["breakdown"]
    assert breakdown["requests"] == data["stack_1x"]["sequential"]["requests"] > 0
    assert close(breakdown["client_ms"], data["stack_1x"]["sequential"]["latency_ms"]["mean"])
    hops = breakdown["hops"]
    assert set(hops) == {"feature", "recall", "ranking"}
    # one call per tier: the user's features, the candidates, their scores (ranking reads item features itself)
    assert all(close(hop["calls_per_request"], 1.0) for hop in hops.values())
    for hop in hops.values():
        assert hop["server_ms"] > 0 and close(hop["rpc_overhead_ms"], hop["gateway_seen_ms"] - hop["server_ms"])
    assert close(
        breakdown["gateway_server_ms"],
        breakdown["gateway_own_ms"] + sum(hop["gateway_seen_ms"] for hop in hops.values()),
    )
    local = data["inprocess"]["sequential_hops_ms"]
    assert all(close(h["calls_per_request"], 1.0) and h["server_ms"] > 0 for h in local.values())
    profile = data["inprocess"]["profile"]
    assert profile["requests"] > 0 and profile["by_cumulative"] and profile["by_self"]
    assert any("recommender.py" in row["function"] for row in profile["by_cumulative"])


@pytest.mark.e2e
def test_cache_suite(suites: Path) -> None:
    data = load(suites, "cache")
    check_run(data["uncached"])
    assert data["uncached"]["cached_responses"] == 0
    assert set(data["runs"]) == {"uniform", "zipf 0.8", "zipf 1.2"}
    for run in data["runs"].values():
        check_run(run)
        check_run(run["unloaded"])
        caches = run["caches"]
        assert set(caches) == {"gateway_results", "gateway_coldstart", "recall_candidates", "feature_user"}
        for entry in caches.values():
            if entry["hits"] + entry["misses"]:
                assert close(entry["hit_ratio"], entry["hits"] / (entry["hits"] + entry["misses"]))
        results = caches["gateway_results"]
        assert results["hits"] + results["misses"] == run["requests"]  # one lookup per request of the run
        if run["errors"] == 0:
            assert run["cached_responses"] == results["hits"] + caches["gateway_coldstart"]["hits"]
        assert caches["gateway_coldstart"]["hits"] + caches["gateway_coldstart"]["misses"] > 0  # new users came
        assert close(run["goodput_gain"], run["goodput_rps"] / data["uncached"]["goodput_rps"])
        if run["cached_responses"]:
            check_latency(run["hit_latency_ms"])
    assert data["gateway_cache_hit_p50_ms"] == data["runs"]["zipf 1.2"]["unloaded_hit_latency_ms"]["p50"] > 0


@pytest.mark.e2e
def test_index_suite(suites: Path) -> None:
    data = load(suites, "index")
    assert list(data["sizes"]) == ["1000", "3000"]
    for by_backend in data["sizes"].values():
        assert set(by_backend) == {"exact", "hnsw", "lsh", "lsh_defaults"}
        assert by_backend["exact"]["recall_at_100"] == 1.0
        for entry in by_backend.values():
            assert entry["build_s"] > 0 and entry["memory_mb"] > 0 and 0 < entry["recall_at_100"] <= 1
            assert entry["queries_k300"] > 0 and entry["queries_k100"] > 0
            check_latency(entry["latency_ms_k300"])
    sweep = data["sizes"]["3000"]["hnsw"]["ef_sweep"]
    assert [s["ef"] for s in sweep] == [100, 200] and all(0 < s["recall_at_100"] <= 1 for s in sweep)


@pytest.mark.e2e
def test_ranking_suite(suites: Path) -> None:
    data = load(suites, "ranking")
    (name,) = data["models"]
    model = data["models"][name]
    assert model["parity_max_abs_diff"] < 1e-3  # the same weights in both runtimes
    assert set(model["batches"]) == {"50", "300", "1000"}
    for entry in model["batches"].values():
        for engine in ("onnxruntime", "pytorch", "onnxruntime_bundle"):
            check_latency(entry[engine])
        assert close(entry["pytorch_over_onnxruntime_p50"], entry["pytorch"]["p50"] / entry["onnxruntime"]["p50"])


@pytest.mark.e2e
def test_routing_suite(suites: Path) -> None:
    data = load(suites, "routing")
    rows = data["replicas"]
    assert list(rows) == ["2", "3", "4"]
    for n, row in rows.items():
        assert close(row["add_ideal_fraction"], 1 / (int(n) + 1)) and close(row["remove_ideal_fraction"], 1 / int(n))
        assert 0 < row["add_moved_fraction"] < 1 and 0 < row["remove_moved_fraction"] < 1
        assert row["remove_moved_only_its_keys"] is True  # consistent hashing: only the leaver's keys move
        assert row["keys_per_replica_max_over_mean"] >= 1 and row["zipf_1.2_requests_max_over_mean"] >= 1


# -- load test of a running gateway ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        StackConfig(
            artifacts=tiny_artifacts,
            grpc_port=0,
            http_port=0,
            grace_seconds=2.0,
            state_dir=tmp_path_factory.mktemp("bench-stack"),
        )
    )
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(stack.start())
        yield stack
    finally:
        loop.run_until_complete(stack.stop())
        loop.close()


@pytest.mark.e2e
def test_loadtest_closed_loop_over_http(running: LocalStack, tiny_artifacts: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{running.gateway.http_port}"
    assert (
        main(
            [
                "bench",
                "--target",
                url,
                "--artifacts",
                str(tiny_artifacts),
                "--requests",
                "40",
                "--concurrency",
                "4",
                "--zipf",
                "1.2",
                "--warmup",
                "0.2",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "loadtest.json").read_text())
    (run,) = data["runs"]
    assert data["protocol"] == "http" and run["requests"] == 40 and run["concurrency"] == 4
    check_run(run)
    results = run["caches"]["gateway_results"]
    assert results["hits"] + results["misses"] == 40  # the /metrics delta covers exactly this run
    assert not non_finite(data)
    check_pngs(tmp_path, ["loadtest_latency_cdf.png"])


@pytest.mark.e2e
def test_loadtest_open_loop_sweep_over_grpc(running: LocalStack, tiny_artifacts: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "bench",
                "--grpc",
                f"127.0.0.1:{running.gateway.port}",
                "--artifacts",
                str(tiny_artifacts),
                "--mode",
                "open",
                "--rate",
                "40,80",
                "--duration",
                "0.5",
                "--arrival",
                "fixed",
                "--warmup",
                "0",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "loadtest.json").read_text())
    assert data["protocol"] == "grpc" and [run["offered_rps"] for run in data["runs"]] == [40, 80]
    for run in data["runs"]:
        check_run(run)
        assert run["requests"] == run["offered_rps"] * 0.5  # fixed spacing: rate x duration sends
    check_pngs(tmp_path, ["loadtest_latency_cdf.png", "loadtest_throughput_latency.png"])


def test_quality_suite_retrains_with_each_seed_and_compares_each_run_with_its_own_baselines(
    tiny_artifacts: Path, tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "quality"
    assert (
        main(
            [
                "bench",
                "--suite",
                "quality",
                "--tiny",
                "--artifacts",
                str(tiny_artifacts),
                "--data",
                str(tiny_data),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    data = load(out, "quality")
    runs = data["runs"]
    assert [(run["protocol"], run["seed"]) for run in runs] == [("time", 1), ("time", 2), ("random", 1), ("random", 2)]
    for run in runs:
        baselines = {name: value for name, value in run["ndcg"].items() if name != "wren"}
        assert run["best_baseline"] == max(baselines, key=baselines.get)
        assert run["vs_best_baseline"] == pytest.approx(run["ndcg"]["wren"] / baselines[run["best_baseline"]], rel=1e-3)
    time_runs = [run["ndcg"]["wren"] for run in runs if run["protocol"] == "time"]
    summary = data["summary"]["time"]["ndcg"]["wren"]
    assert summary["mean"] == pytest.approx(np.mean(time_runs))
    assert summary["sd"] == pytest.approx(np.std(time_runs, ddof=1))
    assert not (out / ".quality").exists() or not any((out / ".quality").iterdir())  # the bundles are gone


def test_ladder_suite_trains_each_size_in_its_own_process_and_fits_the_slopes(
    tiny_artifacts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ladder"
    assert (
        main(
            [
                "bench",
                "--suite",
                "ladder",
                "--tiny",
                "--artifacts",
                str(tiny_artifacts),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    data = load(out, "ladder")
    runs = data["runs"]
    assert [run["ratings"] for run in runs] == pytest.approx([4_000, 8_000], rel=0.05)
    for run in runs:
        assert set(run["step_seconds"]) == set(run["step_peak_mb"]) and len(run["step_seconds"]) == 8
        assert run["peak_mb"] == max(run["step_peak_mb"].values()) > 50  # a fresh Python with numpy and torch
        assert sum(run["step_seconds"].values()) <= run["train_seconds"] + 0.05  # each figure rounded to 0.01 s
        assert 0.0 <= run["served_ndcg"] <= 1.0 and 0.0 <= run["hnsw_recall_at_100"] <= 1.0
    sizes = [run["ratings"] for run in runs]
    whole = [run["train_seconds"] for run in runs]
    expected = np.log(whole[1] / whole[0]) / np.log(sizes[1] / sizes[0])
    assert data["slopes"]["whole run"]["seconds"] == pytest.approx(expected)
    check_pngs(out, SUITE_PNGS["ladder"])
    assert not (out / ".ladder").exists()  # generated data and bundles are gone


def test_a_slope_needs_two_distinct_positive_sizes() -> None:
    from benchmarks.suites.ladder import slope

    assert slope([1e5, 1e6, 1e7], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
    assert slope([1e5, 1e6], [4.0, 400.0]) == pytest.approx(2.0)
    assert slope([1e5], [1.0]) is None and slope([1e5, 1e5], [1.0, 2.0]) is None
