"""Ranking models: shapes, pairwise training/early stopping, determinism, ONNX export + parity, the LR baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pipeline.models.baseline import flatten_inputs, predict_baseline, train_baseline
from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.export import ParityError, check_parity, export_onnx
from pipeline.models.layers import id_table_init, masked_mean
from pipeline.models.pairwise import PairwiseConfig, RankingHistory, candidate_ndcg, train_pairwise
from pipeline.models.registry import MODEL_NAMES, build_model
from pipeline.models.trainer import predict
from pipeline.ranking_candidates import CandidateRows
from wren.core.model_inputs import MODEL_INPUTS, MODEL_OUTPUT, model_inputs

VOCAB, EMB, GENRES, RECENT = 200, 16, 8, 5
FAST = {"epochs": 6, "batch_size": 256, "lr": 5e-3, "negatives": 8, "patience": 2, "ndcg_k": 10, "progress": False}


def candidate_rows(inputs: dict[str, np.ndarray], y: np.ndarray, users: np.ndarray) -> CandidateRows:
    """The rows as one candidate list per user (every row a recall candidate, gain = label)."""
    return CandidateRows(inputs, users, inputs["item_index"], y, np.ones(len(y), bool))


def make_synthetic(
    n: int,
    *,
    vocab: int = VOCAB,
    emb: int = EMB,
    genres: int = GENRES,
    recent: int = RECENT,
    seed: int = 0,
    rows_per_user: int = 4,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Named model inputs for n (user, item) rows, 0/1 labels with a learnable signal and each row's user.

    The label logit mixes item quality (visible as item mean rating), genre match user_genres . item_genres
    and taste match user_embedding . item_embedding (user vector = mean of recent items' vectors). The two
    dot products are interactions a linear model over the same columns cannot express.
    """
    rng = np.random.default_rng(seed)
    latent = 4
    z = rng.normal(size=(vocab, latent))
    item_vec = z @ rng.normal(size=(latent, emb)) / np.sqrt(latent) + 0.3 * rng.normal(size=(vocab, emb))
    item_vec[0] = 0.0
    item_gen = (rng.random((vocab, genres)) < 1.5 / genres).astype(np.float32)
    item_gen[np.arange(vocab), rng.integers(0, genres, vocab)] = 1.0
    quality = rng.normal(size=vocab)
    popularity = 1.0 / (np.arange(vocab) + 10.0)
    popularity[0] = 0.0
    popularity /= popularity.sum()
    count = rng.poisson(popularity * 50 * vocab) + 1
    item_dense = np.stack(
        [
            np.log1p(count),
            3.5 + 0.5 * quality + 0.1 * rng.normal(size=vocab),
            np.abs(0.9 + 0.1 * rng.normal(size=vocab)),
            1 / (1 + np.exp(-quality)),
            rng.integers(1950, 2020, vocab),
            np.log(popularity + 1e-9),
        ],
        axis=1,
    )

    users = max(n // rows_per_user, 10)
    lengths = rng.integers(0, recent + 1, users)
    recent_index = rng.choice(vocab, size=(users, recent), p=popularity)
    recent_index[np.arange(recent)[None, :] >= lengths[:, None]] = 0
    valid = (recent_index != 0)[..., None]
    counts = valid.sum(axis=1)
    user_vec = np.where(counts > 0, (item_vec[recent_index] * valid).sum(1) / np.maximum(counts, 1), 0.0)
    genre_counts = (item_gen[recent_index] * valid).sum(1)
    user_gen = genre_counts / np.maximum(genre_counts.sum(1, keepdims=True), 1)
    user_dense = np.stack(
        [
            np.log1p(lengths * 3),
            3.5 + 0.3 * rng.normal(size=users),
            np.abs(rng.normal(1, 0.2, users)),
            rng.random(users),
        ],
        axis=1,
    )

    u = rng.integers(0, users, n)
    i = rng.choice(vocab, size=n, p=popularity)
    genre_match = (user_gen[u] * item_gen[i]).sum(1)
    taste = (user_vec[u] * item_vec[i]).sum(1)
    logit = (
        0.8 * quality[i]
        + 3.0 * (genre_match - genre_match.mean()) / (genre_match.std() + 1e-9)
        + 1.5 * taste / (taste.std() + 1e-9)
        + 0.5 * rng.normal(size=n)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    inputs = model_inputs(
        user_dense=user_dense[u],
        user_genres=user_gen[u],
        user_embedding=user_vec[u],
        recent_index=recent_index[u],
        item_index=i,
        item_dense=item_dense[i],
        item_genres=item_gen[i],
        item_embedding=item_vec[i],
        recall_features=np.zeros((n, 3), np.float32),
    )
    return inputs, y, u.astype(np.int64)


def take(inputs: dict[str, np.ndarray], rows: slice | np.ndarray) -> dict[str, np.ndarray]:
    return {name: array[rows] for name, array in inputs.items()}


THREADS = 1  # one thread sums in one order on every machine


@pytest.fixture(scope="module")
def data() -> dict:
    inputs, y, users = make_synthetic(4000, seed=1, rows_per_user=40)  # lists long enough to rank
    bounds = {"train": (0, 2800), "valid": (2800, 3400), "test": (3400, 4000)}
    out: dict = {}
    for name, (start, end) in bounds.items():
        rows = start + np.argsort(users[start:end], kind="stable")  # each user's rows together
        out[name] = (take(inputs, rows), y[rows])
        out[f"{name}_rows"] = candidate_rows(*out[name], users[rows])
    out["dims"] = ModelDims.from_inputs(inputs, VOCAB)
    out["scaler"] = FeatureScaler.fit(out["train"][0])
    return out


@pytest.fixture(scope="module")
def trained(data: dict) -> dict[str, tuple[torch.nn.Module, RankingHistory]]:
    """Each model trained briefly on the synthetic data (shared by the export, parity and AUC tests). Torch's
    thread count is pinned: another count sums in another order, so the trained weights (and the margins
    checked below) would depend on the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    out = {}
    for name in MODEL_NAMES:
        model = build_model(name, data["dims"], data["scaler"], seed=0)
        history = train_pairwise(model, data["train_rows"], data["valid_rows"], PairwiseConfig(**FAST, seed=0))
        out[name] = (model, history)
    torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def exported(trained: dict, data: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("onnx")
    sample = take(data["train"][0], slice(0, 16))
    return {
        name: (root / f"{name}.onnx", export_onnx(model, sample, root / f"{name}.onnx"))
        for name, (model, _) in trained.items()
    }


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shape_and_range(name: str, data: dict) -> None:
    model = build_model(name, data["dims"], data["scaler"], seed=3).eval()
    batch = take(data["valid"][0], slice(0, 7))
    batch["recent_items"][0] = 0  # an all-padding history must be safe
    with torch.no_grad():
        out = model(**{key: torch.from_numpy(array.copy()) for key, array in batch.items()})
    assert out.shape == (7,) and out.dtype == torch.float32
    assert torch.all((out > 0) & (out < 1))


def test_masked_mean_ignores_padding() -> None:
    ids = torch.tensor([[3, 0, 5], [0, 0, 0]])
    vectors = torch.arange(18, dtype=torch.float32).reshape(2, 3, 3)
    pooled = masked_mean(vectors, ids)
    assert torch.allclose(pooled[0], (vectors[0, 0] + vectors[0, 2]) / 2)
    assert torch.equal(pooled[1], torch.zeros(3))


def test_scaler_floors_std_and_travels_in_state_dict(data: dict) -> None:
    inputs = dict(data["train"][0])
    inputs["user_dense"] = inputs["user_dense"].copy()
    inputs["user_dense"][:, 0] = 2.0
    scaler = FeatureScaler.fit(inputs)
    assert scaler.user_std[0] == pytest.approx(1e-6) and scaler.user_mean[0] == pytest.approx(2.0)
    state = build_model("deepfm", data["dims"], scaler, seed=0).state_dict()
    assert np.allclose(state["encoder.standardizer.item_mean"].numpy(), scaler.item_mean)


def test_pretrained_init_projects_and_zeroes_padding() -> None:
    pretrained = np.random.default_rng(0).normal(size=(VOCAB, 32))
    table = id_table_init(VOCAB, 16, pretrained, torch.Generator().manual_seed(0))
    assert table.shape == (VOCAB, 16) and torch.equal(table[0], torch.zeros(16))
    model = build_model(
        "ncf",
        ModelDims(VOCAB, 4, 6, GENRES, EMB, RECENT, 3),
        FeatureScaler.identity(ModelDims(VOCAB, 4, 6, GENRES, EMB, RECENT, 3)),
        pretrained=pretrained,
        seed=0,
    )
    assert torch.allclose(model.encoder.item_ids.weight, table)


def test_dims_read_off_inputs(data: dict) -> None:
    x_test = data["test"][0]
    assert data["dims"] == ModelDims(VOCAB, 4, 6, GENRES, EMB, RECENT, 3)
    assert data["dims"].sample_shapes(len(x_test["item_index"])) == {k: v.shape for k, v in x_test.items()}


def test_unknown_model_name_lists_choices(data: dict) -> None:
    with pytest.raises(ValueError, match="deepfm, widedeep, ncf"):
        build_model("xgboost", data["dims"], data["scaler"], seed=0)


def test_training_raises_validation_ndcg_and_restores_best(data: dict) -> None:
    model = build_model("widedeep", data["dims"], data["scaler"], seed=0)
    valid = data["valid_rows"]
    before = candidate_ndcg(valid, predict(model, valid.inputs), 10)
    seen = []
    config = PairwiseConfig(epochs=8, batch_size=128, lr=2e-2, negatives=8, patience=8, ndcg_k=10, progress=False)
    history = train_pairwise(model, data["train_rows"], valid, config, on_epoch=lambda e, h: seen.append(e))
    assert seen == list(range(1, history.epochs + 1))
    assert history.best_epoch == int(np.argmax(history.valid_ndcg)) + 1
    assert max(history.valid_ndcg) > before + 0.05, (before, history.valid_ndcg)
    assert len(history.train_loss) == history.epochs and history.seconds > 0
    # the weights left in the model are the best epoch's, not the last epoch's
    assert candidate_ndcg(valid, predict(model, valid.inputs), 10) == pytest.approx(history.best_valid_ndcg, abs=1e-6)
    assert not model.training


def test_early_stopping_stops_after_patience(data: dict) -> None:
    model = build_model("deepfm", data["dims"], data["scaler"], seed=0)
    config = PairwiseConfig(epochs=30, batch_size=128, lr=3e-2, negatives=8, patience=1, ndcg_k=10, progress=False)
    history = train_pairwise(model, data["train_rows"], data["valid_rows"], config)
    assert history.epochs == history.best_epoch + 1 < 30


def test_same_seed_gives_identical_predictions(data: dict) -> None:
    def run() -> np.ndarray:
        model = build_model("ncf", data["dims"], data["scaler"], seed=7)
        train_pairwise(model, data["train_rows"], data["valid_rows"], PairwiseConfig(**{**FAST, "epochs": 2}, seed=7))
        return predict(model, data["test"][0])

    assert np.array_equal(run(), run())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_onnx_export_signature_batch_axis_and_parity(name: str, exported: dict, trained: dict, data: dict) -> None:
    path, sig = exported[name]
    assert [entry["name"] for entry in sig["inputs"]] == list(MODEL_INPUTS)
    assert sig["outputs"] == [{"name": MODEL_OUTPUT, "dtype": "float32", "shape": ["batch"]}]
    for entry in sig["inputs"]:
        assert entry["shape"][0] == "batch" and entry["dtype"] == np.dtype(MODEL_INPUTS[entry["name"]][0]).name
    assert [f.name for f in path.parent.iterdir() if f.name.startswith(name)] == [path.name]  # no sidecar

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x_test = data["test"][0]
    for batch in (1, 37):
        (scores,) = session.run([MODEL_OUTPUT], take(x_test, slice(0, batch)))
        assert scores.shape == (batch,) and scores.dtype == np.float32

    rows = np.concatenate([data["valid"][0]["item_index"], data["test"][0]["item_index"]])
    both = {key: np.concatenate([data["valid"][0][key], data["test"][0][key]]) for key in MODEL_INPUTS}
    assert len(rows) >= 1000
    assert check_parity(trained[name][0], path, both, tolerance=1e-4) <= 1e-4


def test_parity_check_catches_a_different_model(exported: dict, trained: dict, data: dict) -> None:
    path, _ = exported["deepfm"]
    other = build_model("deepfm", data["dims"], data["scaler"], seed=99)
    with pytest.raises(ParityError, match="max abs"):
        check_parity(other, path, data["test"][0])


def test_baseline_returns_probabilities(data: dict) -> None:
    x_train, y_train = data["train"]
    assert flatten_inputs(x_train).shape == (len(y_train), 4 + 6 + 2 * GENRES + 2 * EMB + 3)
    fitted = train_baseline(x_train, y_train, seed=0)
    p = predict_baseline(fitted, data["test"][0])
    assert p.shape == (len(data["test"][1]),) and np.all((p >= 0) & (p <= 1))


def test_deepfm_ranks_each_users_list_better_than_logistic_regression(trained: dict, data: dict) -> None:
    # within one user's list the user features are constant, so only the deep model's crosses (genre and taste
    # match) can order it
    test = data["test_rows"]
    lr_ndcg = candidate_ndcg(test, predict_baseline(train_baseline(*data["train"], seed=0), test.inputs), 10)
    deep_ndcg = candidate_ndcg(test, predict(trained["deepfm"][0], test.inputs), 10)
    assert deep_ndcg > lr_ndcg + 0.01, (deep_ndcg, lr_ndcg)


def test_training_keeps_the_initial_weights_when_no_epoch_beats_them(data: dict) -> None:
    model = build_model("ncf", data["dims"], data["scaler"], seed=3, norm=None)  # no batch statistics either
    before = predict(model, data["valid"][0])
    history = train_pairwise(model, data["train_rows"], data["valid_rows"], PairwiseConfig(**{**FAST, "lr": 0.0}))
    assert history.best_epoch == 0 and history.best_valid_ndcg == history.initial_ndcg
    assert np.allclose(predict(model, data["valid"][0]), before, atol=1e-6)
