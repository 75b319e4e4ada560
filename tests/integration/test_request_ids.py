"""Every tier's JSON log lines carry the x-request-id of the call being handled, over real loopback gRPC."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from services.common.logs import REQUEST_ID_HEADER, configure_logging
from services.common.tier import start_tier
from services.feature.main import FeatureSettings
from services.feature.main import build as build_feature
from services.ranking.main import RankingSettings
from services.ranking.main import build as build_ranking
from services.recall.main import RecallSettings
from services.recall.main import build as build_recall
from wren.v1 import feature_pb2, ranking_pb2, recall_pb2

# tier -> (build, settings class, method path, a request; the reply's status does not matter here)
CALLS = {
    "feature": (
        build_feature,
        FeatureSettings,
        "/wren.v1.FeatureService/GetUserFeatures",
        feature_pb2.GetUserFeaturesRequest(user_id=3),
    ),
    "recall": (
        build_recall,
        RecallSettings,
        "/wren.v1.RecallService/SimilarItems",
        recall_pb2.SimilarItemsRequest(item_id=123_456, k=5),
    ),
    "ranking": (build_ranking, RankingSettings, "/wren.v1.RankingService/Rank", ranking_pb2.RankRequest()),
}


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The services' own JSON log handler, writing to a buffer instead of stderr, the interceptor's per-call DEBUG
    line included (pytest holds the root logger at WARNING during a test); the loggers are restored afterwards."""
    root, interceptors = logging.getLogger(), logging.getLogger("services.common.interceptors")
    handlers, level = root.handlers[:], root.level
    configure_logging("test", "DEBUG")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    interceptors.setLevel(logging.DEBUG)
    yield buffer
    interceptors.setLevel(logging.NOTSET)
    root.handlers[:] = handlers
    root.setLevel(level)


def handled_lines(stderr: str, method: str) -> list[dict]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "services.common.interceptors" and method in line["message"]]


@pytest.mark.parametrize("tier", sorted(CALLS))
async def test_a_tier_logs_the_request_id_it_was_sent(tier: str, tiny_artifacts: Path, json_logs: io.StringIO) -> None:
    build, settings_class, path, request = CALLS[tier]
    running = await start_tier(build, settings_class(artifacts=str(tiny_artifacts), port=0, reload_seconds=0))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.service.port}") as channel:
            call = channel.unary_unary(
                path, request_serializer=type(request).SerializeToString, response_deserializer=lambda raw: raw
            )
            for metadata in ([(REQUEST_ID_HEADER, f"req-{tier}-1")], None, [(REQUEST_ID_HEADER, f"req-{tier}-2")]):
                try:
                    await call(request, metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError as error:
                    assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), error
    finally:
        await running.stop()
    lines = handled_lines(json_logs.getvalue(), path.rsplit("/", 1)[-1])
    assert [line["request_id"] for line in lines] == [f"req-{tier}-1", "", f"req-{tier}-2"]
    assert {line["service"] for line in lines} == {"test"}
