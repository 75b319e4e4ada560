"""Suite `index`: exact vs HNSW vs LSH over synthetic clustered 64-d embeddings at growing catalog sizes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import plots
from benchmarks.report import table
from benchmarks.stats import latency_ms
from benchmarks.suites import SuiteContext, SuiteReport
from pipeline.config import IndexConfig
from wren.core.index.base import VectorIndex
from wren.core.index.factory import build_index

DIM = 64
SPREAD = 0.7  # within-cluster noise; cosine between members of a cluster ~0.67
ITEMS_PER_CLUSTER = 1_000
K_LATENCY = 300  # what the recall tier asks its index for
K_RECALL = 100
TRUTH_BATCH = 16


def clustered(n: int, seed: int) -> np.ndarray:
    """float32 [n, DIM]: N(0, I) cluster centres (one per ~1,000 items) plus N(0, SPREAD^2 I) noise."""
    rng = np.random.default_rng(seed)
    clusters = max(10, n // ITEMS_PER_CLUSTER)
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, n)]
    vectors += SPREAD * rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors


def backends(seed: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """name -> (kind, params): HNSW and LSH as the training pipeline builds them (pipeline.config.IndexConfig),
    plus LSH with its own class defaults."""
    config = IndexConfig()
    return {
        "exact": ("exact", {}),
        "hnsw": (
            "hnsw",
            {"m": config.m, "ef_construction": config.ef_construction, "ef_search": config.ef_search, "seed": seed},
        ),
        "lsh": ("lsh", {"n_tables": config.lsh_tables, "n_projections": config.lsh_projections, "seed": seed}),
        "lsh_defaults": ("lsh", {"seed": seed}),
    }


def label(name: str) -> str:
    """How a backend is shown in tables and plots (its JSON key stays short)."""
    config = IndexConfig()
    return {
        "hnsw": f"hnsw (pipeline: M={config.m}, ef={config.ef_search})",
        "lsh": f"lsh (pipeline: {config.lsh_tables}x{config.lsh_projections})",
        "lsh_defaults": "lsh (class defaults)",
    }.get(name, name)


def single_queries(index: VectorIndex, queries: np.ndarray, k: int, budget: float) -> tuple[np.ndarray, np.ndarray]:
    """One query at a time, until all are done or `budget` seconds have passed (at least 10 queries).
    Returns (latencies in seconds, found ids [done, k])."""
    latencies, found = [], []
    began = time.perf_counter()
    for row in range(len(queries)):
        if row >= 10 and time.perf_counter() - began > budget:
            break
        started = time.perf_counter()
        ids, _ = index.search(queries[row : row + 1], k)
        latencies.append(time.perf_counter() - started)
        found.append(ids[0])
    return np.asarray(latencies), np.asarray(found)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's exact top-k found (rows of `found` match the first rows of `truth`)."""
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=False)]))


def _measure(index: VectorIndex, queries: np.ndarray, truth: np.ndarray, budget: float) -> dict[str, Any]:
    latencies, _ = single_queries(index, queries, K_LATENCY, budget / 2)
    recall_latencies, found = single_queries(index, queries, K_RECALL, budget / 2)
    return {
        f"latency_ms_k{K_LATENCY}": latency_ms(latencies),
        f"queries_k{K_LATENCY}": len(latencies),
        f"recall_at_{K_RECALL}": recall_at(found, truth),
        f"latency_ms_k{K_RECALL}": latency_ms(recall_latencies),
        f"queries_k{K_RECALL}": len(found),
    }


def _size(ctx: SuiteContext, n: int, sweep: bool) -> dict[str, Any]:
    scale = ctx.scale
    vectors = clustered(n + scale.index_queries, ctx.seed)
    queries, vectors = vectors[n:], vectors[:n]  # held out: same clusters, not in the index
    ids = np.arange(n, dtype=np.int64) * 7 + 3
    results: dict[str, Any] = {}
    truth = None
    for name, (kind, params) in backends(ctx.seed).items():
        ctx.say(f"  {n:,} items: building {name}")
        started = time.perf_counter()
        index = build_index(kind, DIM, ids, vectors, **params)
        built = time.perf_counter() - started
        if truth is None:  # exact comes first: the ground truth, computed in small batches
            truth = np.concatenate(
                [index.search(queries[i : i + TRUTH_BATCH], K_RECALL)[0] for i in range(0, len(queries), TRUTH_BATCH)]
            )
        entry = {
            "kind": kind,
            "params": params,
            "build_s": built,
            "memory_mb": index.memory_bytes() / 1e6,
            **_measure(index, queries, truth, scale.index_query_budget),
        }
        if sweep and kind == "hnsw":
            entry["ef_sweep"] = _ef_sweep(ctx, index, queries, truth)
        results[name] = entry
        del index
    return results


def _ef_sweep(ctx: SuiteContext, index: Any, queries: np.ndarray, truth: np.ndarray) -> list[dict[str, Any]]:
    """Recall@100 and latency at k=100 for each search breadth (the index searches with max(ef, k))."""
    ctx.say("  HNSW ef sweep")
    sweep = []
    default = index.ef_search
    for ef in ctx.scale.ef_sweep:
        index.ef_search = ef
        latencies, found = single_queries(index, queries, K_RECALL, ctx.scale.index_query_budget / 2)
        sweep.append(
            {
                "ef": max(ef, K_RECALL),
                f"recall_at_{K_RECALL}": recall_at(found, truth),
                "latency_ms": latency_ms(latencies),
                "queries": len(found),
            }
        )
    index.ef_search = default
    return sweep


def _tables(sizes: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    for n, by_backend in sizes.items():
        for name, entry in by_backend.items():
            lat, rec = entry[f"latency_ms_k{K_LATENCY}"], entry[f"latency_ms_k{K_RECALL}"]
            rows.append(
                [
                    f"{int(n):,}",
                    label(name),
                    entry["build_s"],
                    entry["memory_mb"],
                    lat["p50"],
                    lat["p99"],
                    entry[f"recall_at_{K_RECALL}"],
                    rec["p50"],
                    entry[f"queries_k{K_LATENCY}"],
                ]
            )
    tables = [
        table(
            [
                "items",
                "index",
                "build s",
                "memory MB",
                f"p50 ms k={K_LATENCY}",
                f"p99 ms k={K_LATENCY}",
                f"recall@{K_RECALL}",
                f"p50 ms k={K_RECALL}",
                "queries",
            ],
            rows,
            "Vector indexes on clustered 64-d embeddings, one query at a time",
        )
    ]
    for n, by_backend in sizes.items():
        sweep = by_backend["hnsw"].get("ef_sweep")
        if sweep:
            tables.append(
                table(
                    ["ef", f"recall@{K_RECALL}", "p50 ms", "p99 ms", "queries"],
                    [
                        [
                            s["ef"],
                            s[f"recall_at_{K_RECALL}"],
                            s["latency_ms"]["p50"],
                            s["latency_ms"]["p99"],
                            s["queries"],
                        ]
                        for s in sweep
                    ],
                    f"HNSW search breadth at {int(n):,} items (k={K_RECALL})",
                )
            )
    return tables


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1_000}k"


def plot(out: Path, sizes: dict[str, dict[str, Any]]) -> list[Path]:
    """Latency vs catalog size per backend; recall vs latency per backend (points = sizes) and the ef sweep."""
    names = list(next(iter(sizes.values())))
    largest = max(sizes, key=int)
    x = [float(n) for n in sizes]
    return [
        plots.lines(
            out / "index_latency.png",
            x,
            {label(name): [sizes[n][name][f"latency_ms_k{K_LATENCY}"]["p50"] for n in sizes] for name in names},
            xlabel="items in the index",
            ylabel=f"p50 query latency at k={K_LATENCY} (ms)",
            title="Single-query latency vs catalog size",
            logx=True,
            logy=True,
        ),
        plots.scatter_labeled(
            out / "index_recall_latency.png",
            {
                label(name): [
                    (
                        sizes[n][name][f"latency_ms_k{K_RECALL}"]["p50"],
                        sizes[n][name][f"recall_at_{K_RECALL}"],
                        _short(int(n)),
                    )
                    for n in sizes
                ]
                for name in names
                if name != "exact"
            }
            | {
                f"hnsw at {_short(int(largest))}, ef sweep": [
                    (s["latency_ms"]["p50"], s[f"recall_at_{K_RECALL}"], f"ef={s['ef']}")
                    for s in sizes[largest]["hnsw"].get("ef_sweep", [])
                ]
            },
            xlabel=f"p50 latency at k={K_RECALL} (ms, log)",
            ylabel=f"recall@{K_RECALL} vs exact",
            title="Recall vs latency (points: catalog sizes)",
            logx=True,
        ),
    ]


async def run(ctx: SuiteContext) -> SuiteReport:
    sizes: dict[str, dict[str, Any]] = {}
    largest = max(ctx.scale.index_sizes)
    for n in ctx.scale.index_sizes:
        sizes[str(n)] = _size(ctx, n, sweep=n == largest)
    png = plot(ctx.out, sizes)
    data = {
        "settings": {
            "dim": DIM,
            "spread": SPREAD,
            "items_per_cluster": ITEMS_PER_CLUSTER,
            "queries": ctx.scale.index_queries,
            "query_budget_s": ctx.scale.index_query_budget,
            "k_latency": K_LATENCY,
            "k_recall": K_RECALL,
            "index_config": IndexConfig().model_dump(),
        },
        "sizes": sizes,
    }
    if "1000000" in sizes:
        hnsw = sizes["1000000"]["hnsw"]
        data["hnsw_1m"] = {
            "recall_at_100": hnsw[f"recall_at_{K_RECALL}"],
            "p50_ms_k100": hnsw[f"latency_ms_k{K_RECALL}"]["p50"],
        }
    return SuiteReport("index", data, _tables(sizes), png)
