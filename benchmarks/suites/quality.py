"""Suite `quality`: how much the served list's quality moves with the seed. The bundle's training configuration
is retrained on --data with several seeds under both evaluation protocols; each run's served NDCG@k is set
against the baselines of that same run (same split, same metric code)."""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks import plots
from benchmarks.report import table
from benchmarks.suites import SuiteContext, SuiteReport
from wren.core.bundle import Bundle

if TYPE_CHECKING:
    from pipeline.config import TrainConfig

PROTOCOLS = ("time", "random")


def _run_one(ctx: SuiteContext, config: TrainConfig, protocol: str, seed: int) -> dict[str, Any]:
    from pipeline.train import train
    from services.inprocess import served_lists

    run_config = config.updated(seed=seed, evaluation={"protocol": protocol})
    out = ctx.out / ".quality" / f"{protocol}-{seed}"
    try:
        manifest = train(ctx.require_data("quality"), out, run_config, served_lists, progress=False).manifest
    finally:
        shutil.rmtree(out, ignore_errors=True)  # a bundle per run is large, and only its figures matter
    served = manifest.metrics["served"]
    k = served["k"]
    return {
        "protocol": protocol,
        "seed": seed,
        "users": served["users"],
        "ndcg": {name: values[f"ndcg_at_{k}"] for name, values in served["systems"].items()},
        "best_baseline": served["best_baseline"],
        "vs_best_baseline": served["vs_best_baseline"],
        "vs_popularity": served["vs_popularity"],
        "default_model": manifest.default_model,
        "train_seconds": manifest.metrics["train_seconds"],
    }


def _spread(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, np.float64)
    return {
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
        "min": float(array.min()),
        "max": float(array.max()),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per protocol: mean, sd, min and max over the seeds of every system's NDCG and of Wren's ratios, and
    how many seeds put Wren at or above the best baseline of their run."""
    out: dict[str, Any] = {}
    for protocol in dict.fromkeys(run["protocol"] for run in runs):
        mine = [run for run in runs if run["protocol"] == protocol]
        systems = list(mine[0]["ndcg"])
        out[protocol] = {
            "seeds": [run["seed"] for run in mine],
            "ndcg": {name: _spread([run["ndcg"][name] for run in mine]) for name in systems},
            "vs_best_baseline": _spread([run["vs_best_baseline"] for run in mine]),
            "vs_popularity": _spread([run["vs_popularity"] for run in mine]),
            "seeds_at_or_above_best_baseline": sum(run["vs_best_baseline"] >= 1.0 for run in mine),
        }
    return out


async def run(ctx: SuiteContext) -> SuiteReport:
    from pipeline.config import config_from_dict

    config = config_from_dict(Bundle(ctx.require_artifacts("quality")).manifest.config)
    runs = []
    for protocol in PROTOCOLS:
        for seed in ctx.scale.quality_seeds:
            ctx.say(f"  training seed {seed}, {protocol} protocol")
            runs.append(await asyncio.to_thread(_run_one, ctx, config, protocol, seed))  # training runs its own loop
            ctx.say(
                f"    served NDCG {runs[-1]['ndcg']['wren']:.4f}, {runs[-1]['vs_best_baseline']:.3f}x "
                f"{runs[-1]['best_baseline']}"
            )
    summary = summarise(runs)
    tables = []
    for protocol, figures in summary.items():
        rows = [[name, s["mean"], s["sd"], s["min"], s["max"]] for name, s in figures["ndcg"].items()]
        ratio = figures["vs_best_baseline"]
        rows.append(["wren / best baseline", ratio["mean"], ratio["sd"], ratio["min"], ratio["max"]])
        tables.append(
            table(
                ["system", "NDCG mean", "sd", "min", "max"],
                rows,
                f"Served NDCG over seeds {figures['seeds']}, {protocol} protocol (each seed its own "
                f"split and baselines); Wren at or above the best baseline in "
                f"{figures['seeds_at_or_above_best_baseline']} of {len(figures['seeds'])}",
            )
        )
    systems = list(next(iter(summary.values()))["ndcg"])
    png = plots.grouped_bars(
        ctx.out / "quality_seeds.png",
        list(summary),
        {name: [summary[p]["ndcg"][name]["mean"] for p in summary] for name in systems},
        ylabel="served NDCG (mean over seeds)",
        title=f"Served list vs baselines over {len(ctx.scale.quality_seeds)} seeds",
    )
    return SuiteReport(
        "quality",
        {
            "settings": {"seeds": list(ctx.scale.quality_seeds), "protocols": list(PROTOCOLS), "data": str(ctx.data)},
            "runs": runs,
            "summary": summary,
        },
        tables,
        [png],
    )
