"""`python -m benchmarks`: the same as `wren bench` (see benchmarks/command.py)."""

from __future__ import annotations

import argparse
import logging
import sys

from benchmarks.command import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Load-test a running gateway, or run the benchmark suites."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
