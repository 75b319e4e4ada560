"""Quality bars of a full training run on the bundled MovieLens data (issue acceptance, not timing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import TrainConfig
from pipeline.train import train
from services.inprocess import served_lists
from tests.conftest import MOVIELENS_SMALL
from wren.core.bundle import Bundle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def movielens_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("movielens-artifacts")
    train(MOVIELENS_SMALL, out, TrainConfig(), served_lists, progress=False)
    return Bundle(out)


def test_the_served_list_beats_every_baseline_and_popularity_by_half(movielens_bundle: Bundle) -> None:
    served = movielens_bundle.manifest.metrics["served"]  # the default (time) protocol
    assert served["protocol"] == "time" and served["users"] == 610
    assert served["vs_best_baseline"] >= 1.0, served
    assert served["vs_popularity"] >= 1.5, served
    assert served["systems"]["wren"]["rated_items_served"] == 0


def test_deep_ranking_model_beats_the_logistic_regression_baseline_on_rating_auc(movielens_bundle: Bundle) -> None:
    ranking = movielens_bundle.manifest.metrics["ranking"]  # secondary: the rankers learn to rank candidates
    assert ranking["auc"] > ranking["baseline_auc"], ranking


def test_hnsw_matches_exact_search(movielens_bundle: Bundle) -> None:
    assert movielens_bundle.manifest.metrics["index"]["hnsw_recall_at_100"] >= 0.99


def test_onnx_parity_holds_for_every_model(movielens_bundle: Bundle) -> None:
    for name, entry in movielens_bundle.manifest.models.items():
        assert entry.parity_rows == 1000, name
        assert entry.parity_max_abs_diff <= 1e-4, name


def test_merged_candidates_beat_popularity_at_300(movielens_bundle: Bundle) -> None:
    recall = movielens_bundle.manifest.metrics["recall"]
    assert recall["merged"]["recall_at_300"] > recall["popularity"]["recall_at_300"], recall


def test_counts_and_drops_are_reported(movielens_bundle: Bundle) -> None:
    manifest = movielens_bundle.manifest
    assert manifest.counts["ratings"] == 100_836
    assert manifest.counts["items"] == 9_742
    assert manifest.data["dropped"] == {"ratings: unknown item": 1}
    assert manifest.metrics["train_seconds"] > 0
    assert Path(movielens_bundle.path / "report" / "summary.txt").read_text().startswith("Wren bundle")
