"""The Ray engine (a local cluster) gives the same evaluation as the local engine, from the same bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import config_from_dict
from pipeline.data.loaders import load_dataset
from pipeline.engine import LocalEngine, RayEngine, make_engine
from pipeline.evaluate import served_metrics
from services.inprocess import served_lists
from wren.core.bundle import Bundle


def test_ray_and_local_engines_score_the_same_served_lists_and_baselines(tiny_artifacts: Path, tiny_data: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    config = config_from_dict(bundle.manifest.config)
    dataset = load_dataset(tiny_data)
    local = served_metrics(bundle, dataset, config, served_lists, engine=LocalEngine())
    engine = RayEngine(num_cpus=2)
    try:
        assert engine.parallelism == 2  # the served lists come back from two shards
        on_ray = served_metrics(bundle, dataset, config, served_lists, engine=engine)
    finally:
        engine.close()
    assert on_ray["users"] == local["users"] > 0
    assert set(on_ray["systems"]) == set(local["systems"]) == {"wren", *config.evaluation.baselines}
    for name, row in local["systems"].items():
        assert on_ray["systems"][name] == pytest.approx(row, rel=1e-9, abs=1e-12), name
    recorded = bundle.manifest.metrics["served"]["systems"]  # what `wren train` measured with the local engine
    for name, row in on_ray["systems"].items():
        assert row == pytest.approx(recorded[name], rel=1e-9, abs=1e-12), name


def test_an_unknown_engine_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="engine must be one of local, ray, got 'spark'"):
        make_engine("spark")
