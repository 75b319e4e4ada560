"""gRPC adapter for the recall tier."""

from __future__ import annotations

from grpc import aio

from services.common.convert import candidates_to_proto, profile_from_proto
from services.recall.core import RecallCore
from wren.core.errors import InvalidArgument
from wren.v1 import recall_pb2, recall_pb2_grpc


class RecallServicer(recall_pb2_grpc.RecallServiceServicer):
    def __init__(self, core: RecallCore) -> None:
        self.core = core

    async def Recall(
        self, request: recall_pb2.RecallRequest, context: aio.ServicerContext
    ) -> recall_pb2.RecallResponse:
        if not request.HasField("user"):
            raise InvalidArgument("user features are required")
        candidates, cached = self.core.recall(profile_from_proto(request.user), request.k)
        return candidates_to_proto(candidates, self.core.version, cached)

    async def SimilarItems(
        self, request: recall_pb2.SimilarItemsRequest, context: aio.ServicerContext
    ) -> recall_pb2.SimilarItemsResponse:
        ids, scores = self.core.similar(request.item_id, request.k)
        response = recall_pb2.SimilarItemsResponse(index_version=self.core.version)
        response.item_ids.extend(ids.tolist())
        response.scores.extend(scores.tolist())
        return response

    async def AddItem(
        self, request: recall_pb2.AddItemRequest, context: aio.ServicerContext
    ) -> recall_pb2.AddItemResponse:
        used, size = self.core.add_item(request.item_id, list(request.genres), list(request.tags))
        return recall_pb2.AddItemResponse(neighbours_used=used, index_size=size)
