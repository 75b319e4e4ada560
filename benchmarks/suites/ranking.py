"""Suite `ranking`: scoring latency of 50/300/1000-candidate batches, onnxruntime vs PyTorch eager, 1 thread each.

The bundle holds ONNX files only, no PyTorch weights. So each model is rebuilt with the pipeline's
`build_model` at the bundle's dimensions (its item vectors as the embedding table) and exported with the
pipeline's `export_onnx`; onnxruntime and PyTorch then run the very same weights (their parity is
reported). The bundle's own trained ONNX model is timed alongside, as the check that the rebuilt
architecture costs what the served one does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import plots
from benchmarks.report import table
from benchmarks.stats import latency_ms
from benchmarks.suites import SuiteContext, SuiteReport
from services.feature.memory import MemoryFeatureStore
from services.ranking.model import OnnxModel, SessionSettings
from services.ranking.ranker import ModelSet, RankerOptions, request_inputs
from wren.core.bundle import Bundle

Scorer = Callable[[dict[str, np.ndarray]], np.ndarray]
WARMUP = 3
ENGINES = ("onnxruntime", "pytorch", "onnxruntime_bundle")


def torch_scorer(model: Any) -> Scorer:
    import torch

    def score(inputs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            return model(**{name: torch.from_numpy(array) for name, array in inputs.items()}).numpy()

    return score


async def fitted_scaler(bundle: Bundle, store: MemoryFeatureStore, users: int = 200) -> Any:
    """Standardisation fitted on serving features (the first `users` users' dense rows, every item's), so the
    rebuilt model's scores are not saturated and the parity figure means something."""
    from pipeline.models.dims import FeatureScaler

    dense = [(await store.get_user(int(user))).dense for user in bundle.users.ids[:users]]
    return FeatureScaler.fit({"user_dense": np.stack(dense), "item_dense": bundle.items.dense})


def rebuilt_model(bundle: Bundle, name: str, scaler: Any, seed: int) -> Any:
    """The bundle model's architecture, freshly initialised by the pipeline at the bundle's dimensions."""
    from pipeline.models.dims import ModelDims
    from pipeline.models.registry import build_model
    from services.ranking.model import schema_dims

    dims = ModelDims(vocab_size=len(bundle.items.ids) + 1, **schema_dims(bundle))
    vectors = bundle.embeddings * bundle.items.has_embedding[:, None]
    pretrained = np.vstack([np.zeros((1, vectors.shape[1]), np.float32), vectors]).astype(np.float32)
    return build_model(name, dims, scaler, pretrained=pretrained, seed=seed).eval()


def interleaved(engines: dict[str, Scorer], inputs: dict[str, np.ndarray], iterations: int) -> dict[str, np.ndarray]:
    """Seconds per call of each engine; engines take turns (rotating order) so noise hits all alike."""
    names = list(engines)
    times: dict[str, list[float]] = {name: [] for name in names}
    for iteration in range(WARMUP + iterations):
        shift = iteration % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            engines[name](inputs)
            elapsed = time.perf_counter() - started
            if iteration >= WARMUP:
                times[name].append(elapsed)
    return {name: np.asarray(values) for name, values in times.items()}


async def _batches(
    bundle: Bundle, store: MemoryFeatureStore, models: ModelSet, sizes: tuple[int, ...], seed: int
) -> dict[int, dict]:
    """Serving inputs (the user's features from the embedded feature store, the items' from the bundle,
    assembled as the ranking tier does) for one known user and `size` random catalog items."""
    profile = await store.get_user(int(bundle.users.ids[0]))
    rng = np.random.default_rng(seed)
    batches = {}
    for size in sizes:
        ids = rng.choice(bundle.items.ids, size, replace=size > len(bundle.items.ids))
        batches[size] = request_inputs(models, profile, models.items.gather(ids))
    return batches


def _model(
    ctx: SuiteContext, bundle: Bundle, models: ModelSet, name: str, batches: dict[int, dict], scaler: Any
) -> dict[str, Any]:
    from pipeline.models.export import export_onnx

    ctx.say(f"  {name}: rebuilding and exporting to ONNX")
    model = rebuilt_model(bundle, name, scaler, ctx.seed)
    path = ctx.out / "ranking_models" / f"{name}.onnx"
    started = time.perf_counter()
    smallest = batches[min(batches)]
    export_onnx(model, {key: value[:8] for key, value in smallest.items()}, path)
    exported = time.perf_counter() - started
    engines = {
        "onnxruntime": OnnxModel(name, path, "bench", models.dims, SessionSettings(1, 1)).score,
        "pytorch": torch_scorer(model),
        "onnxruntime_bundle": models.models[name].score,
    }
    largest = batches[max(batches)]
    parity = float(
        np.max(
            np.abs(engines["onnxruntime"](largest).astype(np.float64) - engines["pytorch"](largest).astype(np.float64))
        )
    )
    result: dict[str, Any] = {"export_s": exported, "parity_max_abs_diff": parity, "batches": {}}
    for size, inputs in batches.items():
        ctx.say(f"  {name}: {size} candidates x {ctx.scale.ranking_iterations}")
        times = interleaved(engines, inputs, ctx.scale.ranking_iterations)
        entry: dict[str, Any] = {engine: latency_ms(times[engine]) for engine in ENGINES}
        entry["pytorch_over_onnxruntime_p50"] = entry["pytorch"]["p50"] / entry["onnxruntime"]["p50"]
        entry["iterations"] = ctx.scale.ranking_iterations
        result["batches"][str(size)] = entry
    return result


async def run(ctx: SuiteContext) -> SuiteReport:
    import torch

    bundle = Bundle(ctx.require_artifacts("ranking"))
    models = ModelSet.load(bundle, RankerOptions(session=SessionSettings(1, 1), workers=0))
    store = MemoryFeatureStore(bundle)
    batches = await _batches(bundle, store, models, ctx.scale.ranking_batches, ctx.seed)
    scaler = await fitted_scaler(bundle, store)
    names = bundle.model_names if ctx.scale.ranking_all_models else [bundle.default_model]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = {name: _model(ctx, bundle, models, name, batches, scaler) for name in names}
    finally:
        torch.set_num_threads(threads)
    rows = []
    for name, result in results.items():
        for size, entry in result["batches"].items():
            rows.append(
                [
                    name,
                    int(size),
                    entry["onnxruntime"]["p50"],
                    entry["onnxruntime"]["p99"],
                    entry["pytorch"]["p50"],
                    entry["pytorch"]["p99"],
                    entry["pytorch_over_onnxruntime_p50"],
                    entry["onnxruntime_bundle"]["p50"],
                    1000 * entry["onnxruntime"]["p50"] / int(size),
                ]
            )
    tables = [
        table(
            [
                "model",
                "candidates",
                "ORT p50 ms",
                "ORT p99 ms",
                "PyTorch p50 ms",
                "PyTorch p99 ms",
                "PyTorch / ORT",
                "bundle ORT p50 ms",
                "ORT µs/candidate",
            ],
            rows,
            "Ranking model scoring, 1 thread each (same weights in onnxruntime and PyTorch eager; "
            "parity max |diff| " + ", ".join(f"{n} {r['parity_max_abs_diff']:.1e}" for n, r in results.items()) + ")",
        )
    ]
    sizes = [float(size) for size in ctx.scale.ranking_batches]
    png = [
        plots.lines(
            ctx.out / "ranking_latency.png",
            sizes,
            {
                f"{name} {engine}": [results[name]["batches"][f"{int(s)}"][engine]["p50"] for s in sizes]
                for name in results
                for engine in ENGINES
            },
            xlabel="candidates per call",
            ylabel="p50 latency (ms)",
            logx=True,
            logy=True,
            title="Ranking model latency: onnxruntime vs PyTorch eager (1 thread)",
        )
    ]
    data = {
        "settings": {
            "bundle": bundle.version,
            "threads": 1,
            "iterations": ctx.scale.ranking_iterations,
            "batches": list(ctx.scale.ranking_batches),
            "models": names,
            "method": "PyTorch model rebuilt with pipeline build_model at the bundle's dims and exported "
            "with export_onnx; onnxruntime runs that export; the bundle's trained ONNX is "
            "timed alongside",
        },
        "models": results,
    }
    return SuiteReport("ranking", data, tables, png)
