"""Entry point of the ranking service: `wren serve ranking`."""

from __future__ import annotations

from pydantic import Field

from services.common.config import ConfigError, ServiceSettings
from services.common.metrics import BUNDLE_INFO, MODEL_INFO
from services.common.process import prepare_process
from services.common.reload import BundleWatcher
from services.common.server import GrpcService, run_until_signalled, start_server
from services.ranking.model import SessionSettings
from services.ranking.ranker import MAX_BATCH, ModelSet, Ranker, RankerOptions
from services.ranking.servicer import RankingServicer
from wren.core.ab import AbConfigError, parse_variants
from wren.core.bundle import Bundle
from wren.v1 import ranking_pb2_grpc

SERVICE = "ranking"
SERVICE_NAME = "wren.v1.RankingService"


class RankingSettings(ServiceSettings):
    intra_op_threads: int = Field(1, ge=1)  # onnxruntime threads inside one model run
    inter_op_threads: int = Field(1, ge=1)  # onnxruntime inter-op pool (sequential execution mode)
    inference_workers: int = Field(2, ge=0)  # model runs in parallel, off the event loop; 0 = inline
    ab_variants: str = ""  # "A=deepfm:90,B=widedeep:10"; empty = everyone gets the bundle's default model
    ab_salt: str = ""  # changing it reshuffles users between variants
    max_batch: int = Field(MAX_BATCH, ge=1)  # candidates per Rank call

    def ranker_options(self) -> RankerOptions:
        return RankerOptions(
            session=SessionSettings(self.intra_op_threads, self.inter_op_threads),
            ab_variants=self.ab_variants,
            ab_salt=self.ab_salt,
            max_batch=self.max_batch,
            workers=self.inference_workers,
        )


async def start(settings: RankingSettings) -> tuple[GrpcService, Ranker, BundleWatcher]:
    """Loads and warms the models, starts the server, reports ready and starts watching for bundles.
    The caller stops the watcher, the server and then `ranker.close()`."""
    try:
        parse_variants(settings.ab_variants)
    except AbConfigError as error:
        raise ConfigError(f"configuration error: WREN_AB_VARIANTS={settings.ab_variants!r}: {error}") from None
    bundle = Bundle(settings.artifacts)
    ranker = await Ranker.load(bundle, settings.ranker_options())
    service = await start_server(
        SERVICE,
        [lambda server: ranking_pb2_grpc.add_RankingServiceServicer_to_server(RankingServicer(ranker), server)],
        [SERVICE_NAME],
        host=settings.host,
        port=settings.port,
        capacity=settings.capacity,
    )
    publish_info(ranker.models)

    async def switch(new: Bundle) -> None:
        old = ranker.version
        await ranker.reload(new)
        BUNDLE_INFO.remove(SERVICE, old)
        publish_info(ranker.models)

    watcher = BundleWatcher(settings.artifacts, bundle.version, switch, SERVICE, settings.reload_seconds)
    await service.mark_ready()
    watcher.start()
    return service, ranker, watcher


def publish_info(models: ModelSet) -> None:
    """wren_bundle_info{service="ranking"} and one wren_model_info series per (model, variant) served."""
    BUNDLE_INFO.labels(SERVICE, models.version).set(1)
    MODEL_INFO.clear()
    for name, model in models.models.items():
        variants = [v.name for v in models.split.variants if v.model == name] or [""]
        for variant in variants:
            MODEL_INFO.labels(name, model.version, variant).set(1)


async def serve(settings: RankingSettings) -> None:
    prepare_process(SERVICE, settings)
    service, ranker, watcher = await start(settings)
    try:
        await run_until_signalled(service, settings.grace_seconds)
    finally:
        await watcher.stop()
        ranker.close()
