"""Entry point of the ranking service: `wren serve ranking`."""

from __future__ import annotations

from grpc import aio
from pydantic import Field

from services.common.config import ConfigError, ServiceSettings
from services.common.metrics import BUNDLE_INFO, MODEL_INFO
from services.common.tier import RunningTier, run_tier, start_tier
from services.common.tiers import SERVICE_NAMES
from services.ranking.model import SessionSettings
from services.ranking.ranker import MAX_BATCH, ModelSet, Ranker, RankerOptions
from services.ranking.servicer import RankingServicer
from wren.core.ab import AbConfigError, parse_variants
from wren.core.bundle import Bundle
from wren.v1 import ranking_pb2_grpc

SERVICE = "ranking"
SERVICE_NAME = SERVICE_NAMES[SERVICE]


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


class RankingTier:
    """The ranking tier for services.common.tier: one Ranker with its warmed models."""

    name = SERVICE

    def __init__(self, ranker: Ranker, reload_seconds: float) -> None:
        self.ranker = ranker
        self.reload_seconds = reload_seconds
        publish_info(ranker.models)

    def register(self, server: aio.Server) -> None:
        ranking_pb2_grpc.add_RankingServiceServicer_to_server(RankingServicer(self.ranker), server)

    async def warm(self, bundle: Bundle) -> None:
        """Nothing more: Ranker.load already ran every model once on sample inputs."""

    async def reload(self, new: Bundle) -> None:
        old = self.ranker.version
        await self.ranker.reload(new)
        BUNDLE_INFO.remove(SERVICE, old)
        publish_info(self.ranker.models)

    async def close(self) -> None:
        self.ranker.close()


async def build(settings: RankingSettings, bundle: Bundle) -> RankingTier:
    """Checks the A/B split, then loads and warms the models (seconds for large models)."""
    try:
        parse_variants(settings.ab_variants)
    except AbConfigError as error:
        raise ConfigError(f"configuration error: WREN_AB_VARIANTS={settings.ab_variants!r}: {error}") from None
    return RankingTier(await Ranker.load(bundle, settings.ranker_options()), settings.reload_seconds)


async def start(settings: RankingSettings) -> RunningTier[RankingTier]:
    """The ranking tier, started; `RunningTier.stop` stops the watcher, the server, then the ranker."""
    return await start_tier(build, settings)


def publish_info(models: ModelSet) -> None:
    """wren_bundle_info{service="ranking"} and one wren_model_info series per (model, variant) served."""
    BUNDLE_INFO.labels(SERVICE, models.version).set(1)
    MODEL_INFO.clear()
    for name, model in models.models.items():
        variants = [v.name for v in models.split.variants if v.model == name] or [""]
        for variant in variants:
            MODEL_INFO.labels(name, model.version, variant).set(1)


async def serve(settings: RankingSettings) -> None:
    await run_tier(SERVICE, build, settings)
