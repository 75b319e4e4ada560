"""The ranking service over real loopback gRPC: parity with offline ONNX, A/B, bad input, hot reload."""
# Long: parity, A/B, bad-input and reload cases share one trained bundle and served ranking tier.

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper
from prometheus_client import REGISTRY

from pipeline.config import load_config
from pipeline.data.loaders import load_dataset
from pipeline.evaluate import onnx_scores
from pipeline.evaluate import test_rows as offline_rows  # aliased: pytest would collect test_*
from pipeline.split import time_split
from services.common.config import ConfigError
from services.common.convert import matrix_to_proto, profile_to_proto
from services.feature.memory import MemoryFeatureStore
from services.ranking.main import SERVICE_NAME, RankingSettings, start
from services.ranking.model import OnnxModel, schema_dims
from services.ranking.ranker import Ranker
from tests.support.netutil import health_status, reflected_services
from wren.core.ab import BUCKETS, AbConfigError, AbSplit, parse_variants
from wren.core.bundle import CURRENT, MANIFEST, Bundle
from wren.core.errors import BundleError
from wren.core.model_inputs import MODEL_INPUTS
from wren.core.onnx import cpu_session
from wren.v1 import common_pb2, ranking_pb2, ranking_pb2_grpc

UNKNOWN_ITEM = 999_999


@dataclass
class Running:
    stub: ranking_pb2_grpc.RankingServiceStub
    target: str
    ranker: Ranker
    store: MemoryFeatureStore
    bundle: Bundle


@asynccontextmanager
async def running(root: Path, **settings: object) -> AsyncIterator[Running]:
    values = {"host": "127.0.0.1", "port": 0, "reload_seconds": 0, "ab_variants": "", **settings}
    tier = await start(RankingSettings(artifacts=str(root), **values))
    port = tier.service.port
    bundle = Bundle(root)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Running(
                ranking_pb2_grpc.RankingServiceStub(channel),
                f"127.0.0.1:{port}",
                tier.tier.ranker,
                MemoryFeatureStore(bundle),
                bundle,
            )
    finally:
        await tier.stop()


@pytest.fixture
async def ranking(tiny_artifacts: Path) -> AsyncIterator[Running]:
    async with running(tiny_artifacts) as service:
        yield service


async def rank_request(
    store: MemoryFeatureStore, user_id: int, item_ids: object, model: str = "", recall_features: object = None
) -> ranking_pb2.RankRequest:
    """The user's features from the embedded feature store, the candidates by id (ranking reads their features
    from its own bundle), and recall features when given."""
    profile = await store.get_user(int(user_id))
    request = ranking_pb2.RankRequest(
        user=profile_to_proto(profile), item_ids=np.asarray(item_ids, np.int64).tolist(), model=model
    )
    if recall_features is not None:
        request.recall_features.CopyFrom(matrix_to_proto(np.asarray(recall_features, np.float32)))
    return request


async def expect_code(call: object, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == code, error.value.details()
    return error.value.details()


@pytest.fixture(scope="module")
def test_ratings(tiny_data: Path, tiny_config_file: Path, tiny_artifacts: Path) -> pd.DataFrame:
    """Test-split ratings of the tiny dataset whose user and item the bundle knows (what offline_rows keeps)."""
    bundle = Bundle(tiny_artifacts)
    test = time_split(load_dataset(tiny_data).ratings, load_config(tiny_config_file).evaluation.test_fraction).test
    return test[test["user_id"].isin(bundle.users.ids) & test["item_id"].isin(bundle.items.ids)]


# --- health, reflection, parity ------------------------------------------------------------------------


async def test_health_and_reflection(ranking: Running) -> None:
    assert await health_status(ranking.target, "") == "SERVING"
    assert await health_status(ranking.target, SERVICE_NAME) == "SERVING"
    assert SERVICE_NAME in await reflected_services(ranking.target)


async def test_scores_equal_offline_onnx_outputs(ranking: Running, test_ratings: pd.DataFrame) -> None:
    bundle = ranking.bundle
    users = sorted(test_ratings["user_id"].unique())[:6]
    compared = 0
    for name in bundle.model_names:
        session = cpu_session(bundle.model_path(name))
        for user in users:
            rows = test_ratings[test_ratings["user_id"] == user]
            offline = onnx_scores(session, offline_rows(bundle, rows).inputs)
            reply = await ranking.stub.Rank(await rank_request(ranking.store, user, rows["item_id"], model=name))
            assert reply.model_name == name and reply.model_version == f"{name}@{bundle.version}"
            np.testing.assert_allclose(np.array(reply.scores, np.float32), offline, rtol=0, atol=1e-6)
            compared += len(rows)
    assert compared >= 20


async def test_unknown_candidates_score_as_the_padding_index(ranking: Running, test_ratings: pd.DataFrame) -> None:
    bundle = ranking.bundle
    rows = test_ratings[test_ratings["user_id"] == test_ratings["user_id"].iloc[0]].head(3)
    inputs = offline_rows(bundle, rows).inputs
    unknown = {name: value[:1].copy() for name, value in inputs.items()}
    unknown["item_index"][:] = 0
    for name in ("item_dense", "item_genres", "item_embedding"):
        unknown[name][:] = 0.0  # what the feature store sends for an id it does not know
    session = cpu_session(bundle.model_path(bundle.default_model))
    expected = np.concatenate([onnx_scores(session, inputs), onnx_scores(session, unknown)])
    ids = [*rows["item_id"], UNKNOWN_ITEM]
    reply = await ranking.stub.Rank(await rank_request(ranking.store, rows["user_id"].iloc[0], ids))
    assert (reply.model_name, reply.variant) == (bundle.default_model, "control")
    np.testing.assert_allclose(np.array(reply.scores, np.float32), expected, rtol=0, atol=1e-6)
    assert list(reply.known) == [True] * len(rows) + [False]


# --- A/B ----------------------------------------------------------------------------------------------


def test_ab_split_is_stable_proportional_and_validated() -> None:
    split = AbSplit.for_models("A=deepfm:90,B=widedeep:10", ["deepfm", "widedeep"], "deepfm", salt="exp1")
    assert [split.assign(4242).name for _ in range(5)] == [split.assign(4242).name] * 5
    assert 0 <= split.bucket(4242) < BUCKETS
    names = [split.assign(user).name for user in range(1, 20_001)]
    assert abs(names.count("B") / len(names) - 0.10) < 0.01
    reshuffled = AbSplit.for_models("A=deepfm:90,B=widedeep:10", ["deepfm", "widedeep"], "deepfm", salt="exp2")
    assert any(split.bucket(u) != reshuffled.bucket(u) for u in range(1, 50))
    assert AbSplit.for_models("", ["deepfm", "widedeep"], "widedeep").describe() == "control=widedeep:100"
    for spec, message in [
        ("A=deepfm:60,B=widedeep:30", "sum to 100"),
        ("A=deepfm", "NAME=MODEL:WEIGHT"),
        ("A=deepfm:x", "not an integer"),
        ("A=deepfm:50,A=widedeep:50", "unique"),
        ("A=deepfm:-10,B=widedeep:110", "negative"),
    ]:
        with pytest.raises(AbConfigError, match=message):
            parse_variants(spec)
    with pytest.raises(AbConfigError, match=r"\['ncf'\].*does not have"):
        AbSplit.for_models("A=deepfm:50,B=ncf:50", ["deepfm", "widedeep"], "deepfm")


async def test_ab_variants_over_grpc(tiny_artifacts: Path) -> None:
    async with running(tiny_artifacts, ab_variants="A=deepfm:50,B=widedeep:50") as service:
        version = service.bundle.version
        items = service.bundle.items.ids[:5]
        models = {"A": "deepfm", "B": "widedeep"}
        seen: dict[int, str] = {}
        for user in range(1, 201):
            reply = await service.stub.Rank(await rank_request(service.store, user, items))
            assert reply.model_name == models[reply.variant]
            assert reply.model_version == f"{reply.model_name}@{version}"
            seen[user] = reply.variant
        share = sum(v == "A" for v in seen.values()) / len(seen)
        assert 0.35 < share < 0.65, share
        for user in (1, 2, 3):
            for _ in range(3):
                reply = await service.stub.Rank(await rank_request(service.store, user, items))
                assert reply.variant == seen[user]

        forced = await service.stub.Rank(await rank_request(service.store, 1, items, model="widedeep"))
        assert (forced.model_name, forced.model_version, forced.variant) == (
            "widedeep",
            f"widedeep@{version}",
            "forced",
        )
        details = await expect_code(
            service.stub.Rank(await rank_request(service.store, 1, items, model="nope")),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert "unknown model 'nope'" in details and "deepfm" in details
        assert REGISTRY.get_sample_value("wren_ranking_requests_total", {"model": "widedeep", "variant": "forced"})
        assert (
            REGISTRY.get_sample_value(
                "wren_model_info", {"model": "widedeep", "version": f"widedeep@{version}", "variant": "B"}
            )
            == 1
        )


async def test_bad_ab_configuration_fails_at_start(tiny_artifacts: Path) -> None:
    with pytest.raises(ConfigError, match="WREN_AB_VARIANTS"):
        await start(RankingSettings(artifacts=str(tiny_artifacts), port=0, ab_variants="A=deepfm:50"))
    with pytest.raises(AbConfigError, match="ncf"):
        await start(RankingSettings(artifacts=str(tiny_artifacts), port=0, ab_variants="A=ncf:100"))


# --- bad input ----------------------------------------------------------------------------------------


def set_matrix(matrix: common_pb2.Matrix, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array, "<f4")
    matrix.rows, matrix.cols, matrix.data = array.shape[0], array.shape[1], array.tobytes()


def get_matrix(matrix: common_pb2.Matrix) -> np.ndarray:
    return np.frombuffer(matrix.data, "<f4").reshape(matrix.rows, matrix.cols).copy()


def with_value(value: float) -> Callable[[ranking_pb2.RankRequest], None]:
    def mutate(request: ranking_pb2.RankRequest) -> None:
        array = get_matrix(request.recall_features)
        array[1, 0] = value
        set_matrix(request.recall_features, array)

    return mutate


def narrower(request: ranking_pb2.RankRequest) -> None:
    set_matrix(request.recall_features, get_matrix(request.recall_features)[:, :-1])


def short_bytes(request: ranking_pb2.RankRequest) -> None:
    request.recall_features.data = request.recall_features.data[:-4]


def fewer_rows(request: ranking_pb2.RankRequest) -> None:
    set_matrix(request.recall_features, get_matrix(request.recall_features)[:-1])


def nan_user(request: ranking_pb2.RankRequest) -> None:
    request.user.genre_ratings[0] = float("nan")


def wide_user(request: ranking_pb2.RankRequest) -> None:
    request.user.dense.append(1.0)


def short_user_embedding(request: ranking_pb2.RankRequest) -> None:
    del request.user.embedding[-1]


# Item features are no longer on the wire (ranking reads them from its bundle): the matrix checks are exercised
# on the request's one remaining matrix, recall_features (4 candidates x RECALL_WIDTH columns).
BAD_REQUESTS: dict[str, tuple[Callable[[ranking_pb2.RankRequest], None], str]] = {
    "empty item_ids": (lambda r: r.ClearField("item_ids"), "item_ids must not be empty"),
    "nan in recall_features": (with_value(float("nan")), "recall_features contains NaN or infinite values"),
    "inf in recall_features": (with_value(float("inf")), "recall_features contains NaN or infinite values"),
    "nan in user features": (nan_user, "user.genre_ratings contains NaN"),
    "narrow recall_features": (narrower, "recall_features has {recall_channels_less_one} columns; bundle"),
    "wide user.dense": (wide_user, "user.dense has 5 values"),
    "short user.embedding": (short_user_embedding, "user.embedding has 15 values"),
    "byte count": (short_bytes, "recall_features: 4x{recall_channels} float32 needs {bytes} bytes, got {short}"),
    "rows mismatch": (fewer_rows, "recall_features has 3 rows for 4 item ids"),
    "missing user": (lambda r: r.ClearField("user"), "user is required"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
async def test_bad_input_is_invalid_argument_and_the_server_stays_healthy(ranking: Running, case: str) -> None:
    mutate, message = BAD_REQUESTS[case]
    width = schema_dims(ranking.bundle)["recall_channels"]
    message = message.format(
        recall_channels=width, recall_channels_less_one=width - 1, bytes=16 * width, short=16 * width - 4
    )
    recall = np.random.default_rng(0).random((4, width), np.float32)
    request = await rank_request(ranking.store, 3, ranking.bundle.items.ids[:4], recall_features=recall)
    assert len(request.user.embedding) == ranking.bundle.embedding_dim  # user 3 has history
    mutate(request)
    details = await expect_code(ranking.stub.Rank(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert message in details
    ok = await ranking.stub.Rank(await rank_request(ranking.store, 3, ranking.bundle.items.ids[:4]))
    assert len(ok.scores) == 4
    assert await health_status(ranking.target, SERVICE_NAME) == "SERVING"


async def test_batch_over_the_limit_is_rejected(ranking: Running) -> None:
    ids = np.resize(ranking.bundle.items.ids, 2001)
    details = await expect_code(
        ranking.stub.Rank(await rank_request(ranking.store, 3, ids)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "item_ids has 2001 candidates; at most 2000 per call" in details
    assert len((await ranking.stub.Rank(await rank_request(ranking.store, 3, ids[:2000]))).scores) == 2000


async def test_internal_error_hides_its_text(ranking: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: OnnxModel, inputs: dict) -> np.ndarray:
        raise RuntimeError("secret detail")

    request = await rank_request(ranking.store, 3, ranking.bundle.items.ids[:4])
    with monkeypatch.context() as patch:
        patch.setattr(OnnxModel, "score", broken)
        details = await expect_code(ranking.stub.Rank(request), grpc.StatusCode.INTERNAL)
    assert "secret" not in details and "RuntimeError" not in details
    assert len((await ranking.stub.Rank(request)).scores) == 4


# --- model loading and hot reload ---------------------------------------------------------------------


def fake_model(path: Path, dims: dict[str, int], rename: dict[str, str], dtypes: dict[str, int]) -> Path:
    """An ONNX graph with the serving inputs (some renamed or retyped) whose score is float(item_index)."""
    inputs = []
    for name, (dtype, key) in MODEL_INPUTS.items():
        elem = dtypes.get(name, TensorProto.FLOAT if dtype is np.float32 else TensorProto.INT64)
        shape = ["batch", dims[key]] if key else ["batch"]
        inputs.append(helper.make_tensor_value_info(rename.get(name, name), elem, shape))
    cast = helper.make_node("Cast", ["item_index"], ["score"], to=TensorProto.FLOAT)
    output = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])
    graph = helper.make_graph([cast], "fake", inputs, [output])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_model_with_the_wrong_signature_fails_at_load(tiny_artifacts: Path, tmp_path: Path) -> None:
    bundle = Bundle(tiny_artifacts)
    dims = schema_dims(bundle)
    renamed = fake_model(tmp_path / "renamed.onnx", dims, {"item_dense": "item_features"}, {})
    with pytest.raises(BundleError, match=r"missing \['item_dense'\], unexpected \['item_features'\]"):
        OnnxModel("renamed", renamed, bundle.version, dims)
    retyped = fake_model(tmp_path / "retyped.onnx", dims, {}, {"user_dense": TensorProto.DOUBLE})
    with pytest.raises(BundleError, match=r"user_dense is tensor\(double\), expected tensor\(float\)"):
        OnnxModel("retyped", retyped, bundle.version, dims)
    wider = fake_model(tmp_path / "wider.onnx", {**dims, "genres": dims["genres"] + 1}, {}, {})
    with pytest.raises(BundleError, match="user_genres has width 7, the bundle schema says 6"):
        OnnxModel("wider", wider, bundle.version, dims)
    good = OnnxModel("fake", fake_model(tmp_path / "good.onnx", dims, {}, {}), bundle.version, dims)
    good.warm()
    assert good.version == f"fake@{bundle.version}"


def copy_root(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


async def test_a_broken_new_bundle_is_refused_and_the_old_one_keeps_serving(
    tiny_artifacts: Path, tmp_path: Path
) -> None:
    root = copy_root(tiny_artifacts, tmp_path / "artifacts")
    old = Bundle(root)
    async with running(root, reload_seconds=0.1) as service:
        broken = root / f"{old.version}-broken"
        shutil.copytree(old.path, broken)
        manifest = json.loads((broken / MANIFEST).read_text())
        manifest["version"] = broken.name
        (broken / MANIFEST).write_text(json.dumps(manifest))
        (broken / "models" / "widedeep.onnx").write_bytes(b"not an onnx model")
        failed_before = (
            REGISTRY.get_sample_value("wren_bundle_reloads_total", {"service": "ranking", "result": "failed"}) or 0
        )
        (root / "tmp-link").symlink_to(broken.name)
        (root / "tmp-link").replace(root / CURRENT)
        for _ in range(50):
            await asyncio.sleep(0.1)
            if (
                REGISTRY.get_sample_value("wren_bundle_reloads_total", {"service": "ranking", "result": "failed"})
                == failed_before + 1
            ):
                break
        else:
            pytest.fail("the watcher never tried the broken bundle")
        reply = await service.stub.Rank(await rank_request(service.store, 3, old.items.ids[:4]))
        assert reply.model_version == f"{old.default_model}@{old.version}"
        assert service.ranker.version == old.version


async def test_hot_reload_during_continuous_scoring_fails_no_call(
    tiny_artifacts: Path, tiny_data: Path, tiny_config_file: Path, tmp_path: Path
) -> None:
    from pipeline.train import train
    from services.inprocess import served_lists

    root = copy_root(tiny_artifacts, tmp_path / "artifacts")
    old = Bundle(root).version
    async with running(root, reload_seconds=0.2) as service:
        request = await rank_request(service.store, 3, service.bundle.items.ids[:300])
        stop = asyncio.Event()
        failures: list[str] = []

        async def score_forever() -> list[str]:
            versions = []
            while not stop.is_set():
                try:
                    reply = await service.stub.Rank(request, timeout=5)
                    versions.append(reply.model_version)
                except grpc.aio.AioRpcError as error:
                    failures.append(f"{error.code()}: {error.details()}")
                await asyncio.sleep(0.002)  # continuous, but leaves the GIL to the training thread
            return versions

        loops = [asyncio.create_task(score_forever()) for _ in range(3)]
        config = load_config(tiny_config_file, seed=11)
        result = await asyncio.to_thread(train, tiny_data, root, config, served_lists, progress=False)
        new = result.bundle_dir.name
        assert new != old
        for _ in range(100):
            if service.ranker.version == new:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # keep scoring on the new models for a moment
        stop.set()
        histories = await asyncio.gather(*loops)

    assert failures == []
    for versions in histories:
        bundles = [v.split("@", 1)[1] for v in versions]
        assert bundles[0] == old and bundles[-1] == new
        switch = bundles.index(new)
        assert set(bundles[:switch]) == {old} and set(bundles[switch:]) == {new}, "a call went back to the old bundle"
    default = Bundle(root).default_model
    assert (
        REGISTRY.get_sample_value(
            "wren_model_info", {"model": default, "version": f"{default}@{new}", "variant": "control"}
        )
        == 1
    )
    assert (
        REGISTRY.get_sample_value(
            "wren_model_info", {"model": default, "version": f"{default}@{old}", "variant": "control"}
        )
        is None
    )
    assert REGISTRY.get_sample_value("wren_bundle_info", {"service": "ranking", "version": new}) == 1
    assert REGISTRY.get_sample_value("wren_bundle_info", {"service": "ranking", "version": old}) is None
