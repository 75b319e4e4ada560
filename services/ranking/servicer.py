"""gRPC adapter for the ranking tier: protos in, Ranker, protos out."""

from __future__ import annotations

import numpy as np
from grpc import aio

from services.common.convert import matrix_from_proto, profile_from_proto, rank_result_to_proto
from services.ranking.ranker import Ranker
from wren.core.errors import InvalidArgument
from wren.v1 import ranking_pb2, ranking_pb2_grpc


class RankingServicer(ranking_pb2_grpc.RankingServiceServicer):
    def __init__(self, ranker: Ranker) -> None:
        self.ranker = ranker

    async def Rank(self, request: ranking_pb2.RankRequest, context: aio.ServicerContext) -> ranking_pb2.RankResponse:
        if not request.HasField("user"):
            raise InvalidArgument("user is required: the features of the user to rank for")
        features = (
            matrix_from_proto(request.recall_features, "recall_features")
            if request.HasField("recall_features")
            else None
        )
        result = await self.ranker.rank(
            profile_from_proto(request.user), np.asarray(request.item_ids, np.int64), request.model, features
        )
        return rank_result_to_proto(result)
