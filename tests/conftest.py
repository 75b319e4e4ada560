"""Shared fixtures: a tiny synthetic dataset and one tiny trained bundle per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.datagen import TINY_CONFIG, write_movielens

REPO = Path(__file__).resolve().parents[1]
MOVIELENS_SMALL = REPO / "data" / "ml-latest-small"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_movielens(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny-config") / "tiny.toml"
    path.write_text(TINY_CONFIG)
    return path


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path, tiny_config_file: Path) -> Path:
    """An artifacts root whose `current` is a bundle trained on the tiny dataset (trained once)."""
    from pipeline.config import load_config
    from pipeline.train import train

    out = tmp_path_factory.mktemp("tiny-artifacts")
    train(tiny_data, out, load_config(tiny_config_file), progress=False)
    return out
