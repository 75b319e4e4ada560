"""The `wren` command: train, evaluate, datagen, publish, serve, up and bench, each a thin layer over a module."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.engine import Engine

from services.common.tiers import PROCESSES


def _train(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.train import train
    from services.inprocess import served_lists

    config = load_config(args.config, seed=args.seed)
    if args.protocol:
        config = config.updated(evaluation={"protocol": args.protocol})
    with _engine(args) as engine:
        train(args.data, args.out, config, served_lists, progress=not args.quiet, events=args.events, engine=engine)
    return 0


@contextlib.contextmanager
def _engine(args: argparse.Namespace) -> Iterator[Engine]:
    """The engine --engine names (pipeline.engine), closed afterwards."""
    from pipeline.engine import make_engine

    engine = make_engine(args.engine, args.ray_address)
    try:
        yield engine
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    from pipeline.engine import ENGINES

    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="where the evaluation's served-list shards and baselines run: here (default) or on Ray",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join (e.g. ray://head:10001 or auto); default: start a local one",
    )


def _evaluate(args: argparse.Namespace) -> int:
    from pipeline.config import config_from_dict
    from pipeline.data.loaders import load_dataset
    from pipeline.evaluate import evaluate_bundle
    from services.inprocess import served_lists
    from wren.core.bundle import Bundle

    bundle = Bundle(args.artifacts)
    config = config_from_dict(bundle.manifest.config)
    dataset = load_dataset(args.data)
    if args.events:
        from pipeline.events import merge_events

        dataset = merge_events(dataset, args.events)
    if args.target:
        from pipeline.evaluate import served_metrics
        from pipeline.evaluation.report import comparison_table
        from pipeline.evaluation.served import http_source

        served = served_metrics(bundle, dataset, config, http_source(args.target), progress=not args.json)
        print(json.dumps(served, indent=1) if args.json else comparison_table(served["systems"], served["k"]))
        return 0
    with _engine(args) as engine:
        metrics = evaluate_bundle(bundle, dataset, config, served_lists, progress=not args.json, engine=engine)
    if args.json:
        print(json.dumps(metrics, indent=1))
    else:
        from pipeline.report import summary_table

        print(summary_table(bundle.manifest.model_copy(update={"metrics": {**bundle.manifest.metrics, **metrics}})))
    return 0


def _datagen(args: argparse.Namespace) -> int:
    from pipeline.datagen import SyntheticSpec, write_synthetic

    spec = SyntheticSpec.for_ratings(args.ratings, seed=args.seed, users=args.users, items=args.items)
    counts = write_synthetic(args.out, spec, progress=not args.quiet)
    print(
        f"wrote {counts['ratings']:,} ratings by {counts['users']:,} users over {counts['items']:,} items "
        f"({counts['tags']:,} tags) to {args.out}"
    )
    return 0


# Each process's entry module and settings class: services/<name>/main.py defines <Name>Settings and serve().
TIERS = {name: (f"services.{name}.main", f"{name.capitalize()}Settings") for name in PROCESSES}


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import importlib

    from services.common.config import load_settings

    module_name, settings_name = TIERS[args.tier]
    module = importlib.import_module(module_name)
    overrides = {"artifacts": args.artifacts, "port": args.port, "metrics_port": args.metrics_port, "host": args.host}
    settings = load_settings(getattr(module, settings_name), **overrides)
    asyncio.run(module.serve(settings))
    return 0


def _publish(args: argparse.Namespace) -> int:
    from services.feature.publish import publish_bundle
    from wren.core.bundle import Bundle

    version = publish_bundle(
        Bundle(args.artifacts), args.redis_url, prefix=args.prefix, keep=args.keep, progress=not args.quiet
    )
    print(f"published bundle {version} to {args.redis_url} (prefix {args.prefix!r}); it is now live")
    return 0


def _up(args: argparse.Namespace) -> int:
    import asyncio

    from services.stack import StackConfig, run
    from wren.core.bundle import resolve_bundle_dir

    resolve_bundle_dir(args.artifacts)  # fail fast, before any process starts
    config = StackConfig(
        artifacts=args.artifacts.resolve(),
        replicas=args.replicas,
        host=args.host,
        grpc_port=args.grpc_port,
        http_port=args.http_port,
        redis_url=args.redis_url or "",
        state_dir=args.state_dir,
        env={"WREN_USER_STATE": args.user_state},
    )
    return asyncio.run(run(config))


def _retrain(args: argparse.Namespace) -> int:
    from wren.cli.retrain import RetrainJob, run

    job = RetrainJob(
        data=args.data,
        artifacts=args.artifacts,
        events=args.events,
        config=args.config,
        seed=args.seed,
        tolerance=args.tolerance,
        redis_url=args.redis_url or "",
        prefix=args.prefix,
        progress=not args.quiet,
    )
    return run(job, args.every, args.metrics_file, args.metrics_port, args.metrics_host)


def _bench(args: argparse.Namespace) -> int:
    from benchmarks.command import run

    return run(args)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """`wren bench` runs from the root of a source checkout: benchmarks/ is not part of the installed package."""
    if (Path.cwd() / "benchmarks" / "__init__.py").is_file() and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        from benchmarks.command import add_arguments
    except ImportError:
        parser.set_defaults(handler=_no_benchmarks)
        return
    add_arguments(parser)
    parser.set_defaults(handler=_bench)


def _no_benchmarks(args: argparse.Namespace) -> int:
    print(
        "wren bench: error: the benchmarks/ package is not importable; run it from a source checkout "
        "root (python -m benchmarks, or make bench)",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wren", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on MovieLens-format data and publish an artifact bundle")
    train.add_argument("--data", type=Path, required=True, help="dataset directory (any MovieLens layout)")
    train.add_argument("--out", type=Path, required=True, help="artifacts root; the bundle lands in OUT/<version>")
    train.add_argument("--seed", type=int, default=None, help="random seed (default 42, or the config's)")
    train.add_argument("--config", type=Path, default=None, help="TOML file overriding training settings")
    train.add_argument(
        "--protocol",
        choices=["time", "random"],
        default=None,
        help="evaluation split: each user's newest 20%% (time, the default) or a seeded random 25%% "
        "(random, the public benchmark protocol); overrides [evaluation] protocol",
    )
    train.add_argument(
        "--events",
        type=Path,
        default=None,
        metavar="DIR",
        help="nearline event log directory (*.jsonl) whose rating events are merged with the data",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    _add_engine_arguments(train)
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="recompute the metrics of an existing bundle")
    evaluate.add_argument("--artifacts", type=Path, required=True, help="bundle directory or artifacts root")
    evaluate.add_argument("--data", type=Path, required=True, help="the dataset the bundle was trained on")
    evaluate.add_argument(
        "--events",
        type=Path,
        default=None,
        metavar="DIR",
        help="the event log the bundle was trained with (`wren train --events`)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_engine_arguments(evaluate)
    evaluate.add_argument(
        "--target",
        default=None,
        metavar="URL",
        help="score the lists a running gateway serves over HTTP (start it with "
        "`wren up --user-state evaluation`) instead of the in-process serving code",
    )
    evaluate.set_defaults(handler=_evaluate)

    datagen = commands.add_parser("datagen", help="write synthetic MovieLens-layout data of a chosen size")
    datagen.add_argument("--ratings", type=int, required=True, help="number of ratings to write (about)")
    datagen.add_argument("--out", type=Path, required=True, help="directory for ratings.csv, movies.csv, ...")
    datagen.add_argument("--users", type=int, default=None, help="default: ratings / 155, as in MovieLens")
    datagen.add_argument("--items", type=int, default=None, help="default: 9,700 x (ratings / 100k)^0.34")
    datagen.add_argument("--seed", type=int, default=0)
    datagen.add_argument("--quiet", action="store_true", help="no progress output")
    datagen.set_defaults(handler=_datagen)

    serve = commands.add_parser(
        "serve", help="run one service; settings come from WREN_* environment variables, flags override them"
    )
    serve.add_argument("tier", choices=sorted(TIERS), help="which service to run")
    serve.add_argument("--artifacts", default=None, help="bundle directory or artifacts root (WREN_ARTIFACTS)")
    serve.add_argument("--port", type=int, default=None, help="gRPC port (WREN_PORT; 0 = any free port)")
    serve.add_argument("--metrics-port", type=int, default=None, help="Prometheus /metrics port (WREN_METRICS_PORT)")
    serve.add_argument("--host", default=None, help="address to bind (WREN_HOST, default 0.0.0.0)")
    serve.set_defaults(handler=_serve)

    nearline = commands.add_parser("nearline", help="run the nearline tier (the same as `wren serve nearline`)")
    nearline.add_argument("--port", type=int, default=None, help="gRPC health port (WREN_PORT)")
    nearline.add_argument("--metrics-port", type=int, default=None, help="Prometheus /metrics port (WREN_METRICS_PORT)")
    nearline.add_argument("--host", default=None, help="address to bind (WREN_HOST, default 0.0.0.0)")
    nearline.set_defaults(handler=_serve, tier="nearline", artifacts=None)

    publish = commands.add_parser("publish", help="load a bundle into Redis and make it the live version atomically")
    publish.add_argument("--artifacts", type=Path, required=True, help="bundle directory or artifacts root")
    publish.add_argument("--redis-url", required=True, help="e.g. redis://localhost:6379/0")
    publish.add_argument("--prefix", default="wren", help="key namespace (default: wren)")
    publish.add_argument("--keep", type=int, default=2, help="published versions to keep (default: 2)")
    publish.add_argument("--quiet", action="store_true", help="no progress bar")
    publish.set_defaults(handler=_publish)

    up = commands.add_parser("up", help="run the whole stack locally: N replicas per tier and the gateway")
    up.add_argument("--artifacts", type=Path, required=True, help="bundle directory or artifacts root")
    up.add_argument("--replicas", type=int, default=1, help="processes per tier (default 1)")
    up.add_argument("--redis-url", default=None, help="publish the bundle to this Redis and serve features from it")
    up.add_argument("--http-port", type=int, default=8080, help="gateway HTTP port (default 8080; 0 = any free)")
    up.add_argument("--grpc-port", type=int, default=50051, help="gateway gRPC port (default 50051; 0 = any free)")
    up.add_argument("--host", default="127.0.0.1", help="address every process binds (default 127.0.0.1)")
    up.add_argument(
        "--user-state",
        choices=["served", "evaluation"],
        default="served",
        help="serve every rating (default) or the training part only, for `wren evaluate --target`",
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where state.json, Prometheus targets and logs go (default ARTIFACTS/.wren-up)",
    )
    up.set_defaults(handler=_up)

    retrain = commands.add_parser(
        "retrain",
        help="train on the data plus the nearline event log and publish only if served quality holds",
        description="Trains a candidate bundle on --data plus the --events log, compares its served NDCG@10 with "
        "the live bundle's and publishes it (ARTIFACTS/current, and Redis with --redis-url) only if it is "
        "not worse beyond --tolerance; writes ARTIFACTS/retrain-reports/<time>-<version>.json.",
    )
    retrain.add_argument("--data", type=Path, required=True, help="base dataset directory (any MovieLens layout)")
    retrain.add_argument("--artifacts", type=Path, required=True, help="the served artifacts root")
    retrain.add_argument("--events", type=Path, default=None, metavar="DIR", help="nearline event log directory")
    retrain.add_argument("--config", type=Path, default=None, help="TOML file overriding training settings")
    retrain.add_argument("--seed", type=int, default=None, help="random seed (default 42, or the config's)")
    retrain.add_argument(
        "--tolerance",
        type=float,
        default=0.005,
        help="how much lower (absolute served NDCG@10) the candidate may score (default 0.005)",
    )
    retrain.add_argument("--redis-url", default=None, help="also publish the new bundle's features to this Redis")
    retrain.add_argument("--prefix", default="wren", help="Redis key namespace (default: wren)")
    retrain.add_argument(
        "--every", type=float, default=0.0, metavar="SECONDS", help="run on a schedule, every SECONDS (default: once)"
    )
    retrain.add_argument(
        "--metrics-file",
        type=Path,
        default=None,
        help="write the retrain metrics here after each run (Prometheus text format)",
    )
    retrain.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on this port (0 = no)")
    retrain.add_argument(
        "--metrics-host", default="127.0.0.1", help="address the /metrics listener binds (default 127.0.0.1)"
    )
    retrain.add_argument("--quiet", action="store_true", help="no progress output")
    retrain.set_defaults(handler=_retrain)

    bench = commands.add_parser(
        "bench",
        help="load-test a running gateway (--target/--grpc), or run benchmark suites side by side (--suite)",
        description="Load-test a running gateway, or run the benchmark suites; writes JSON and PNGs to --out.",
    )
    add_bench_arguments(bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.handler is not _no_benchmarks:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a CLI prints the problem, not a traceback
        from pipeline.data.errors import DataValidationError
        from wren.core.errors import WrenError

        if isinstance(exc, DataValidationError | WrenError | ValueError | FileNotFoundError):
            print(f"wren {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
