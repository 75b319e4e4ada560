"""gRPC adapter for the feature tier: protos in, FeatureCore, protos out."""

from __future__ import annotations

from grpc import aio

from services.common.convert import event_from_proto, items_to_proto, profile_to_proto
from services.feature.core import FeatureCore
from wren.v1 import common_pb2, feature_pb2, feature_pb2_grpc


class FeatureServicer(feature_pb2_grpc.FeatureServiceServicer):
    def __init__(self, core: FeatureCore) -> None:
        self.core = core

    async def GetUserFeatures(  # noqa: N802 - gRPC method name
        self, request: feature_pb2.GetUserFeaturesRequest, context: aio.ServicerContext
    ) -> common_pb2.UserFeatures:
        return profile_to_proto(await self.core.user(request.user_id))

    async def GetItemFeatures(  # noqa: N802
        self, request: feature_pb2.GetItemFeaturesRequest, context: aio.ServicerContext
    ) -> common_pb2.ItemFeatureBatch:
        return items_to_proto(await self.core.items(request.item_ids))

    async def RecordEvent(  # noqa: N802
        self, request: common_pb2.Event, context: aio.ServicerContext
    ) -> common_pb2.RecordEventResponse:
        return common_pb2.RecordEventResponse(user_version=await self.core.record(event_from_proto(request)))
