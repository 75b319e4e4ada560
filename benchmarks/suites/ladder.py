"""Suite `ladder`: what training costs as the data grows. Synthetic MovieLens-layout data is written at each size
of the ladder (`wren datagen`'s generator) and trained in a fresh process; every step's wall time and peak
resident memory are recorded, with the log-log slope of each against the number of ratings (1 = linear)."""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import plots
from benchmarks.report import table
from benchmarks.suites import SuiteContext, SuiteReport
from wren.core.bundle import Bundle
from wren.core.manifest import Manifest


def _train_child(config: dict[str, Any], data: str, out: str, progress: bool) -> None:
    from pipeline.config import config_from_dict
    from pipeline.train import train
    from services.inprocess import served_lists

    train(Path(data), Path(out), config_from_dict(config), served_lists, progress=progress)


def _train_in_fresh_process(config: dict[str, Any], data: Path, out: Path, progress: bool) -> Manifest:
    """Trains in a spawned process, so that each size's peak memory is its own (its step lines go to stderr
    when `progress`); returns the manifest."""
    process = multiprocessing.get_context("spawn").Process(
        target=_train_child, args=(config, str(data), str(out), progress)
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"training on {data} failed with exit code {process.exitcode}")
    return Bundle(out).manifest


def _run_size(ctx: SuiteContext, config: dict[str, Any], ratings: int) -> dict[str, Any]:
    from pipeline.datagen import SyntheticSpec, write_synthetic

    root = ctx.out / ".ladder"
    data, out = root / f"data-{ratings}", root / f"bundle-{ratings}"
    spec = SyntheticSpec.for_ratings(ratings, seed=ctx.seed)
    started = time.perf_counter()
    counts = write_synthetic(data, spec, progress=False)
    generate_seconds = time.perf_counter() - started
    try:
        manifest = _train_in_fresh_process(config, data, out, ctx.progress)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # tens of GB at the top of the ladder; only the figures matter
    metrics = manifest.metrics
    served = metrics["served"]
    k = served["k"]
    return {
        "ratings": counts["ratings"],
        "users": counts["users"],
        "items": counts["items"],
        "generate_seconds": round(generate_seconds, 2),
        "train_seconds": metrics["train_seconds"],
        "peak_mb": max(metrics["step_peak_mb"].values()),
        "step_seconds": metrics["step_seconds"],
        "step_peak_mb": metrics["step_peak_mb"],
        "served_ndcg": served["systems"]["wren"][f"ndcg_at_{k}"],
        "vs_best_baseline": served["vs_best_baseline"],
        "evaluated_users": served["users"],
        "ndcg_ci95": served.get("ndcg_ci95", {}).get("wren", 0.0),
        "hnsw_recall_at_100": metrics["index"]["hnsw_recall_at_100"],
    }


def slope(sizes: list[float], costs: list[float]) -> float | None:
    """Least-squares slope of log(cost) against log(size): 1 means the cost grows as fast as the data."""
    points = [(s, c) for s, c in zip(sizes, costs, strict=True) if s > 0 and c > 0]
    if len(points) < 2 or len({s for s, _ in points}) < 2:
        return None
    x, y = np.log([s for s, _ in points]), np.log([c for _, c in points])
    return float(np.polyfit(x, y, 1)[0])


def _label(step: str) -> str:
    return step.split(" (")[0]


async def run(ctx: SuiteContext) -> SuiteReport:
    from pipeline.config import config_from_dict, load_config

    config = Bundle(ctx.artifacts).manifest.config if ctx.artifacts is not None else load_config(None).model_dump()
    config_from_dict(config)  # fails here, not in the child, if the bundle's config no longer parses
    runs = []
    for ratings in ctx.scale.ladder_ratings:
        ctx.say(f"  {ratings:,} ratings: generating and training")
        runs.append(await asyncio.to_thread(_run_size, ctx, config, ratings))
        run_ = runs[-1]
        ctx.say(
            f"    {run_['train_seconds']:.0f} s, peak {run_['peak_mb'] / 1024:.2f} GB, served NDCG "
            f"{run_['served_ndcg']:.4f}, HNSW recall@100 {run_['hnsw_recall_at_100']:.3f}"
        )
    sizes = [float(run["ratings"]) for run in runs]
    steps = list(runs[0]["step_seconds"])
    slopes = {
        step: {
            "seconds": slope(sizes, [run["step_seconds"][step] for run in runs]),
            "peak_mb": slope(sizes, [run["step_peak_mb"][step] for run in runs]),
        }
        for step in steps
    }
    slopes["whole run"] = {
        "seconds": slope(sizes, [run["train_seconds"] for run in runs]),
        "peak_mb": slope(sizes, [run["peak_mb"] for run in runs]),
    }
    size_rows = [
        [
            f"{run['ratings']:,}",
            f"{run['users']:,}",
            f"{run['items']:,}",
            run["train_seconds"],
            run["peak_mb"] / 1024,
            run["served_ndcg"],
            run["vs_best_baseline"],
            run["hnsw_recall_at_100"],
        ]
        for run in runs
    ]
    step_rows = [
        [_label(step), *[run["step_seconds"][step] for run in runs], slopes[step]["seconds"], slopes[step]["peak_mb"]]
        for step in steps
    ]
    size_headers = [f"{int(size):,}" for size in sizes]
    tables = [
        table(
            ["ratings", "users", "items", "train s", "peak GB", "served NDCG", "vs best baseline", "HNSW R@100"],
            size_rows,
            "Training cost by data size (synthetic MovieLens layout, one fresh process per size)",
        ),
        table(
            ["step", *[f"s @ {h}" for h in size_headers], "slope (time)", "slope (memory)"],
            step_rows,
            "Seconds per step and log-log slopes against the number of ratings (1 = linear)",
        ),
    ]
    pngs = [
        plots.lines(
            ctx.out / "ladder_seconds.png",
            sizes,
            {_label(step): [run["step_seconds"][step] for run in runs] for step in steps}
            | {"whole run": [run["train_seconds"] for run in runs]},
            xlabel="ratings (log)",
            ylabel="wall seconds (log)",
            title="Training time per step by data size",
            logx=True,
            logy=True,
        ),
        plots.lines(
            ctx.out / "ladder_memory.png",
            sizes,
            {_label(step): [run["step_peak_mb"][step] for run in runs] for step in steps},
            xlabel="ratings (log)",
            ylabel="peak resident MB (log)",
            title="Peak memory per step by data size",
            logx=True,
            logy=True,
        ),
    ]
    return SuiteReport(
        "ladder",
        {
            "settings": {
                "ratings": list(ctx.scale.ladder_ratings),
                "seed": ctx.seed,
                "config": "the bundle's" if ctx.artifacts else "defaults",
            },
            "runs": runs,
            "slopes": slopes,
        },
        tables,
        pngs,
    )
