"""gRPC adapter of the public gateway API (wren.v1.GatewayService)."""

from __future__ import annotations

from grpc import aio

from services.common.convert import event_from_proto
from services.common.validation import DEFAULT_GENRE_K, DEFAULT_PAGE, DEFAULT_SEARCH_K, DEFAULT_SORT
from services.gateway.catalogue import CatalogueApi
from services.gateway.recommender import DEFAULT_K, Recommender
from services.gateway.results import Recommendations
from wren.v1 import catalogue_pb2, common_pb2, gateway_pb2, gateway_pb2_grpc


def recommendations_proto(result: Recommendations) -> gateway_pb2.RecommendResponse:
    response = gateway_pb2.RecommendResponse(
        user_id=result.user_id,
        item_id=result.item_id,
        model_version=result.model_version,
        variant=result.variant,
        degraded=result.degraded,
        degraded_reason=result.degraded_reason,
    )
    response.served_by.update(result.served_by)
    for item in result.items:
        entry = response.items.add(
            item_id=item.item_id, title=item.title, score=item.score, recall_score=item.recall_score, cached=item.cached
        )
        entry.genres.extend(item.genres)
        entry.sources.extend(item.sources)
        if item.rank_score is not None:
            entry.rank_score = item.rank_score
    return response


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    """Zero in an optional request field (k, limit, sort) means its default, as the protos say."""

    def __init__(self, recommender: Recommender, catalogue: CatalogueApi) -> None:
        self.recommender = recommender
        self.catalogue = catalogue

    async def Recommend(
        self, request: gateway_pb2.RecommendRequest, context: aio.ServicerContext
    ) -> gateway_pb2.RecommendResponse:
        result = await self.recommender.recommend(request.user_id, request.k or DEFAULT_K, context.time_remaining())
        return recommendations_proto(result)

    async def SimilarItems(
        self, request: gateway_pb2.GatewaySimilarItemsRequest, context: aio.ServicerContext
    ) -> gateway_pb2.RecommendResponse:
        return recommendations_proto(
            await self.recommender.similar(request.item_id, request.k or DEFAULT_K, context.time_remaining())
        )

    async def RecordEvent(
        self, request: common_pb2.Event, context: aio.ServicerContext
    ) -> common_pb2.RecordEventResponse:
        version = await self.recommender.record_event(event_from_proto(request), context.time_remaining())
        return common_pb2.RecordEventResponse(user_version=version)

    async def GetItem(
        self, request: catalogue_pb2.GetItemRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.ItemDetails:
        return await self.catalogue.item(request.item_id, context.time_remaining())

    async def SearchItems(
        self, request: catalogue_pb2.SearchItemsRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.ItemList:
        return await self.catalogue.search(request.query, request.k or DEFAULT_SEARCH_K, context.time_remaining())

    async def ListGenres(
        self, request: catalogue_pb2.ListGenresRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.GenreList:
        return await self.catalogue.genres(context.time_remaining())

    async def GenreItems(
        self, request: catalogue_pb2.GenreItemsRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.ItemList:
        return await self.catalogue.genre_items(
            request.genre, request.sort or DEFAULT_SORT, request.k or DEFAULT_GENRE_K, context.time_remaining()
        )

    async def GetUser(
        self, request: catalogue_pb2.GetUserRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.UserRatings:
        return await self.catalogue.user(
            request.user_id, request.offset, request.limit or DEFAULT_PAGE, context.time_remaining()
        )
