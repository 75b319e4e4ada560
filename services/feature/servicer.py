"""gRPC adapter for the feature tier: protos in, FeatureCore, protos out."""

from __future__ import annotations

from grpc import aio

from services.common.convert import (
    details_to_proto,
    event_from_proto,
    genres_to_proto,
    item_list_to_proto,
    items_to_proto,
    profile_to_proto,
    user_ratings_to_proto,
)
from services.common.validation import DEFAULT_GENRE_K, DEFAULT_PAGE, DEFAULT_SEARCH_K, DEFAULT_SORT
from services.feature.catalogue_core import CatalogueCore
from services.feature.core import FeatureCore
from wren.v1 import catalogue_pb2, common_pb2, feature_pb2, feature_pb2_grpc


class FeatureServicer(feature_pb2_grpc.FeatureServiceServicer):
    def __init__(self, core: FeatureCore, catalogue: CatalogueCore) -> None:
        self.core = core
        self.catalogue = catalogue

    async def GetUserFeatures(
        self, request: feature_pb2.GetUserFeaturesRequest, context: aio.ServicerContext
    ) -> common_pb2.UserFeatures:
        return profile_to_proto(await self.core.user(request.user_id))

    async def GetItemFeatures(
        self, request: feature_pb2.GetItemFeaturesRequest, context: aio.ServicerContext
    ) -> common_pb2.ItemFeatureBatch:
        return items_to_proto(await self.core.items(request.item_ids))

    async def RecordEvent(
        self, request: common_pb2.Event, context: aio.ServicerContext
    ) -> common_pb2.RecordEventResponse:
        return common_pb2.RecordEventResponse(user_version=await self.core.record(event_from_proto(request)))

    async def GetItem(
        self, request: catalogue_pb2.GetItemRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.ItemDetails:
        return details_to_proto(await self.catalogue.item(request.item_id))

    async def SearchItems(
        self, request: catalogue_pb2.SearchItemsRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.ItemList:
        return item_list_to_proto(await self.catalogue.search(request.query, request.k or DEFAULT_SEARCH_K))

    async def ListGenres(
        self, request: catalogue_pb2.ListGenresRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.GenreList:
        return genres_to_proto(await self.catalogue.genres())

    async def GenreItems(
        self, request: catalogue_pb2.GenreItemsRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.ItemList:
        return item_list_to_proto(
            await self.catalogue.genre_items(request.genre, request.sort or DEFAULT_SORT, request.k or DEFAULT_GENRE_K)
        )

    async def GetUserRatings(
        self, request: catalogue_pb2.GetUserRequest, context: aio.ServicerContext
    ) -> catalogue_pb2.UserRatings:
        return user_ratings_to_proto(
            await self.catalogue.user_ratings(request.user_id, request.offset, request.limit or DEFAULT_PAGE)
        )
