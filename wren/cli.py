"""The `wren` command: train, evaluate, publish, serve, up and bench, each a thin layer over a module."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path


def _train(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.train import train

    config = load_config(args.config, seed=args.seed)
    train(args.data, args.out, config, progress=not args.quiet)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pipeline.config import config_from_dict
    from pipeline.data.loaders import load_dataset
    from pipeline.evaluate import evaluate_bundle
    from services.common.bundle import Bundle

    bundle = Bundle(args.artifacts)
    config = config_from_dict(bundle.manifest["config"])
    metrics = evaluate_bundle(bundle, load_dataset(args.data), config)
    if args.json:
        print(json.dumps(metrics, indent=1))
    else:
        from pipeline.report import summary_table

        print(summary_table({**bundle.manifest, "metrics": {**bundle.manifest["metrics"], **metrics}}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wren", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train on MovieLens-format data and publish an artifact bundle")
    train.add_argument("--data", type=Path, required=True, help="dataset directory (any MovieLens layout)")
    train.add_argument("--out", type=Path, required=True, help="artifacts root; the bundle lands in OUT/<version>")
    train.add_argument("--seed", type=int, default=None, help="random seed (default 42, or the config's)")
    train.add_argument("--config", type=Path, default=None, help="TOML file overriding training settings")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="recompute the metrics of an existing bundle")
    evaluate.add_argument("--artifacts", type=Path, required=True, help="bundle directory or artifacts root")
    evaluate.add_argument("--data", type=Path, required=True, help="the dataset the bundle was trained on")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a CLI prints the problem, not a traceback
        from pipeline.data.errors import DataValidationError
        from services.common.errors import WrenError

        if isinstance(exc, DataValidationError | WrenError | ValueError | FileNotFoundError):
            print(f"wren {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
