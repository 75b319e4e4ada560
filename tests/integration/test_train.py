"""`wren train` end to end on a tiny dataset: bundle contract, determinism, atomic publish, parity gate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pipeline.config import load_config
from pipeline.models.export import ParityError
from pipeline.train import train
from services.inprocess import served_lists
from tests.conftest import REPO
from wren.core.bundle import Bundle, resolve_bundle_dir
from wren.core.bundle_writer import STAGING_PREFIX, BundleWriter
from wren.core.model_inputs import MODEL_INPUTS

REQUIRED_METRICS = [
    ("ranking", "auc"),
    ("ranking", "logloss"),
    ("ranking", "baseline_auc"),
    ("index", "hnsw_recall_at_100"),
    ("train_seconds",),
]


def dig(mapping: dict, *keys: str) -> object:
    for key in keys:
        mapping = mapping[key]
    return mapping


def test_bundle_holds_every_artifact_and_the_manifest_contract(tiny_artifacts: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    manifest = bundle.manifest
    assert (tiny_artifacts / "current").is_symlink()
    assert resolve_bundle_dir(tiny_artifacts) == (tiny_artifacts / manifest.version).resolve()
    for key in (
        "format_version",
        "version",
        "created_at",
        "data_fingerprint",
        "config",
        "counts",
        "signature",
        "embedding_dim",
    ):
        assert key in manifest.to_json(), key
    for path in REQUIRED_METRICS:
        assert np.isfinite(dig(manifest.metrics, *path)), path
    for name in bundle.model_names:
        assert np.isfinite(manifest.metrics["models"][name]["auc"])
        assert manifest.models[name].parity_max_abs_diff <= 1e-4
        prior = manifest.models[name].prior  # the served scale is the best on validation
        by_scale = prior["valid_candidate_ndcg_by_scale"]
        assert by_scale[f"{prior['scale']:g}"] == max(by_scale.values()) == manifest.models[name].valid_candidate_ndcg
    for channel in ("embedding", "content", "popularity", "merged", "item2item", "segment"):
        for k in (10, 50, 100, 300):
            for metric in ("recall", "ndcg"):
                assert 0.0 <= manifest.metrics["recall"][channel][f"{metric}_at_{k}"] <= 1.0
    assert [i["name"] for i in manifest.signature["inputs"]] == list(MODEL_INPUTS)
    assert manifest.signature["inputs"][0]["shape"][0] == "batch"
    assert len(manifest.data_fingerprint) == 64
    assert (bundle.path / "report" / "training_curves.png").stat().st_size > 10_000


def test_bundle_files_load_without_pickle(tiny_artifacts: Path) -> None:
    bundle_dir = resolve_bundle_dir(tiny_artifacts)
    arrays = list(bundle_dir.rglob("*.npz")) + list(bundle_dir.rglob("*.npy"))
    assert len(arrays) >= 5
    for path in arrays:
        loaded = np.load(path, allow_pickle=False)
        if hasattr(loaded, "files"):
            for key in loaded.files:
                assert loaded[key].dtype != object, (path, key)
    assert not list(bundle_dir.rglob("*.pkl")) and not list(bundle_dir.rglob("*.pickle"))


def test_a_fresh_process_loads_the_bundle(tiny_artifacts: Path) -> None:
    script = (
        "import sys, numpy as np\n"
        "from wren.core.bundle import Bundle\n"
        "from wren.core.recall.recaller import Recaller\n"
        "import onnxruntime as ort\n"
        "b = Bundle(sys.argv[1])\n"
        "r = Recaller.from_bundle(b)\n"
        "s = ort.InferenceSession(str(b.model_path(b.default_model)))\n"
        "print(b.version, len(r.catalog.ids), len(b.users.ids), [i.name for i in s.get_inputs()][0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tiny_artifacts)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    version, items, users, first_input = result.stdout.split()
    assert version == Bundle(tiny_artifacts).version and int(items) > 100 and int(users) == 80
    assert first_input == "user_dense"


def test_onnx_outputs_match_the_recorded_parity_on_test_rows(tiny_artifacts: Path, tiny_data: Path) -> None:
    from pipeline.data.loaders import load_dataset
    from pipeline.evaluate import bundle_split, onnx_scores, ranking_metrics, test_rows
    from wren.core.onnx import cpu_session

    bundle = Bundle(tiny_artifacts, "evaluation")
    rows = test_rows(bundle, bundle_split(bundle, load_dataset(tiny_data)).test)
    scores = onnx_scores(cpu_session(bundle.model_path("deepfm")), rows.inputs)
    assert scores.shape == rows.labels.shape and np.all((scores > 0) & (scores < 1))
    assert ranking_metrics(rows.labels, scores)["auc"] == pytest.approx(
        bundle.manifest.metrics["models"]["deepfm"]["auc"], abs=1e-9
    )


def train_copy(data: Path, config_file: Path, out: Path, seed: int | None = None) -> Bundle:
    train(data, out, load_config(config_file, seed=seed), served_lists, progress=False)
    return Bundle(out)


def test_training_is_deterministic_for_a_seed(
    tiny_data: Path, tiny_config_file: Path, tmp_path: Path, tiny_artifacts: Path
) -> None:
    first = Bundle(tiny_artifacts)
    second = train_copy(tiny_data, tiny_config_file, tmp_path / "again")
    for name in ("embeddings.npy", "items.npz", "users.npz", "content.npz", "index/hnsw/index.bin"):
        assert (first.path / name).read_bytes() == (second.path / name).read_bytes(), name
    feeds = {name: np.asarray(value) for name, value in _sample_inputs(first).items()}
    for model in first.model_names:
        a = ort.InferenceSession(str(first.model_path(model))).run(None, feeds)[0]
        b = ort.InferenceSession(str(second.model_path(model))).run(None, feeds)[0]
        np.testing.assert_array_equal(a, b)
    assert first.manifest.metrics["models"] == second.manifest.metrics["models"]
    assert first.manifest.metrics["recall"] == second.manifest.metrics["recall"]
    other = train_copy(tiny_data, tiny_config_file, tmp_path / "other-seed", seed=8)
    assert (first.path / "embeddings.npy").read_bytes() != (other.path / "embeddings.npy").read_bytes()


def _sample_inputs(bundle: Bundle) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    schema, n = bundle.schema, 16
    genres, dim = len(schema.genres), bundle.embedding_dim
    return {
        "user_dense": rng.normal(size=(n, len(schema.user_dense))).astype(np.float32),
        "user_genres": rng.normal(size=(n, genres)).astype(np.float32),
        "user_embedding": rng.normal(size=(n, dim)).astype(np.float32),
        "recent_items": rng.integers(0, len(bundle.items.ids), (n, schema.recent_len)),
        "item_index": rng.integers(0, len(bundle.items.ids), n),
        "item_dense": rng.normal(size=(n, len(schema.item_dense))).astype(np.float32),
        "item_genres": rng.integers(0, 2, (n, genres)).astype(np.float32),
        "item_embedding": rng.normal(size=(n, dim)).astype(np.float32),
        "recall_features": rng.random(size=(n, 2 * len(schema.recall_channels))).astype(np.float32),
    }


def test_a_failure_mid_write_leaves_current_untouched(
    tiny_data: Path, tiny_config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "artifacts"
    before = train_copy(tiny_data, tiny_config_file, out)

    def broken(*args: object, **kwargs: object) -> None:
        raise ParityError("injected: ONNX differs from PyTorch")

    monkeypatch.setattr("pipeline.train.train_rankers", broken)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # not the config's 1: training sets its own count and gives this one back
    try:
        with pytest.raises(ParityError):
            train(tiny_data, out, load_config(tiny_config_file), served_lists, progress=False)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    assert Bundle(out).version == before.version
    assert not list(out.glob(f"{STAGING_PREFIX}*"))
    assert sorted(p.name for p in out.iterdir()) == sorted(["current", before.version])


def test_parity_failure_fails_training(
    tiny_data: Path, tiny_config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.ranking_training as ranking_training

    real = ranking_training.check_parity
    monkeypatch.setattr(
        ranking_training,
        "check_parity",
        lambda model, path, inputs, tolerance: real(model, path, inputs, tolerance=-1.0),
    )
    with pytest.raises(ParityError, match="differs from PyTorch"):
        train(tiny_data, tmp_path / "out", load_config(tiny_config_file), served_lists, progress=False)
    assert not (tmp_path / "out" / "current").exists()


def test_killed_training_keeps_current_and_the_next_run_cleans_up(
    tiny_data: Path, tiny_config_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "artifacts"
    before = train_copy(tiny_data, tiny_config_file, out)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wren.cli.main",
            "train",
            "--data",
            str(tiny_data),
            "--out",
            str(out),
            "--config",
            str(tiny_config_file),
            "--quiet",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not any((p / "index").exists() for p in out.glob(f"{STAGING_PREFIX}*")):
        assert process.poll() is None and time.monotonic() < deadline, "training never started writing"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert Bundle(out).version == before.version
    assert list(out.glob(f"{STAGING_PREFIX}*")), "the killed run's staging directory should still be there"
    with BundleWriter(out, "next"):
        pass
    assert not list(out.glob(f"{STAGING_PREFIX}*"))


def test_cli_reports_bad_data_with_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "bad"
    data.mkdir()
    (data / "movies.csv").write_text("movieId,title,genres\n1,A (1999),Drama\n")
    (data / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,10\n1,1,9.0,11\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wren.cli.main",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "ratings.csv line 3" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_recomputes_the_manifest_metrics(tiny_artifacts: Path, tiny_data: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "wren.cli.main",
            "evaluate",
            "--artifacts",
            str(tiny_artifacts),
            "--data",
            str(tiny_data),
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    recomputed = json.loads(result.stdout)
    recorded = Bundle(tiny_artifacts).manifest.metrics
    assert recomputed["ranking"]["auc"] == pytest.approx(recorded["ranking"]["auc"], abs=1e-9)
    assert recomputed["recall"]["merged"] == pytest.approx(recorded["recall"]["merged"])
