"""The training config: TOML and manifest dicts validated by pydantic, errors that name the key, copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import ConfigError, IndexConfig, TrainConfig, config_from_dict, load_config
from wren.core.index.hnsw import HnswIndex

OLD_MANIFEST_CONFIG = Path(__file__).with_name("old_manifest_config.json")  # written by the dataclass config


def test_unknown_keys_are_rejected_with_their_path_and_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[ranking]\nepochs = 3\nepoch = 4\n")
    with pytest.raises(ConfigError, match=r"config\.ranking\.epoch: unknown setting; known: .*\bepochs\b"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"config\.learning_rate: unknown setting"):
        config_from_dict({"learning_rate": 1e-3})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ranking": {"epochs": "20"}}, r"config\.ranking\.epochs: input should be a valid integer, got '20'"),
        ({"ranking": {"prior": 1}}, r"config\.ranking\.prior: input should be a valid boolean, got 1"),
        ({"seed": 1.5}, r"config\.seed: input should be a valid integer, got 1\.5"),
        ({"ranking": {"models": ["ncf", 3]}}, r"config\.ranking\.models\.1: input should be a valid string"),
        ({"evaluation": {"baselines": "ease"}}, r"config\.evaluation\.baselines: input should be a valid tuple"),
        ({"index": 16}, r"config\.index: must be a table, got 16"),
    ],
)
def test_wrong_types_are_rejected_naming_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_an_int_is_a_valid_float_and_arrays_become_tuples(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text("[ranking]\nlearning_rate = 1\nmodels = ['ncf']\n[recall]\neval_ks = [5, 10]\n")
    config = load_config(path, seed=5)
    assert (config.seed, config.ranking.learning_rate, config.ranking.models) == (5, 1.0, ("ncf",))
    assert isinstance(config.ranking.learning_rate, float) and config.recall.eval_ks == (5, 10)


def test_a_manifest_config_round_trips_through_json() -> None:
    config = config_from_dict({"seed": 3, "embedding": {"dim": 8}, "ranking": {"models": ["ncf", "deepfm"]}})
    stored = json.loads(json.dumps({"config": config.model_dump()}))  # what the bundle writer keeps
    assert config_from_dict(stored["config"]) == config


def test_a_manifest_from_the_dataclass_config_still_loads() -> None:
    stored = json.loads(OLD_MANIFEST_CONFIG.read_text())
    config = config_from_dict(stored)
    assert (config.seed, config.embedding.dim, config.ranking.models) == (7, 16, ("deepfm", "widedeep"))
    assert config.evaluation.baselines == ("popularity", "cooccurrence", "als", "bpr", "ease")
    assert json.loads(json.dumps(config.model_dump())) == stored


def test_configs_are_frozen_and_updated_copies_are_validated() -> None:
    config = TrainConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 1
    copy = config.updated(seed=3, evaluation={"protocol": "random"})
    assert (copy.seed, copy.evaluation.protocol, copy.evaluation.k) == (3, "random", config.evaluation.k)
    assert (config.seed, config.evaluation.protocol) == (42, "time")
    with pytest.raises(ConfigError, match=r"config\.evaluation\.protocl: unknown setting"):
        config.updated(evaluation={"protocl": "random"})


def test_index_defaults_are_the_index_constructors() -> None:
    index, hnsw = IndexConfig(), HnswIndex(4)
    assert (index.m, index.ef_search, index.full_scan_share) == (16, 128, 1 / 16)
    assert (hnsw.ef_search, hnsw.full_scan_share) == (index.ef_search, index.full_scan_share)


def test_wren_train_prints_the_bad_key_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wren.cli.main import main

    path = tmp_path / "bad.toml"
    path.write_text("[embedding]\ndim = 'wide'\n")
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"wren train: error: {path}: config.embedding.dim: input should be a valid integer")
    assert "Traceback" not in error and not (tmp_path / "out").exists()
