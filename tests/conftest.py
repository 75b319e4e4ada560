"""Shared fixtures: a tiny synthetic dataset and one tiny trained bundle per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.datagen import TINY_CONFIG, write_movielens
from tests.support.redis_server import REDIS_SERVER, RedisServer
from wren.core.bundle import Bundle

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
    from services.inprocess import served_lists

    out = tmp_path_factory.mktemp("tiny-artifacts")
    train(tiny_data, out, load_config(tiny_config_file), served_lists, progress=False)
    return out


def require_redis_server() -> None:
    """The Redis tests are part of the suite, never skipped: `make install` installs redis-server."""
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed; run `make install` (it installs it with apt-get)")


@pytest.fixture(scope="session")
def tiny_bundle(tiny_artifacts: Path) -> Bundle:
    return Bundle(tiny_artifacts)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for the session; tests take a flushed database through `redis_url`."""
    require_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's redis-server, emptied for this test."""
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, which it may stop, pause and start again on the same port."""
    require_redis_server()
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()
