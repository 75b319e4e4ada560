"""Conversions between wren.v1 protobuf messages and the transport-free domain types."""

from __future__ import annotations

import numpy as np

from wren.core.errors import InvalidArgument
from wren.core.schema import recall_feature_width
from wren.core.types import (
    Candidates,
    Event,
    ItemBatch,
    ItemDetails,
    ItemList,
    ItemSummary,
    RankResult,
    UserProfile,
    UserRatings,
)
from wren.v1 import catalogue_pb2, common_pb2, ranking_pb2, recall_pb2


def matrix_to_proto(array: np.ndarray) -> common_pb2.Matrix:
    array = np.ascontiguousarray(array, dtype="<f4")
    rows, cols = array.shape
    return common_pb2.Matrix(rows=rows, cols=cols, data=array.tobytes())


def matrix_from_proto(matrix: common_pb2.Matrix, field: str) -> np.ndarray:
    """The matrix as float32 [rows, cols]; INVALID_ARGUMENT when the byte count does not match."""
    expected = matrix.rows * matrix.cols * 4
    if matrix.rows < 0 or matrix.cols < 0 or len(matrix.data) != expected:
        raise InvalidArgument(
            f"{field}: {matrix.rows}x{matrix.cols} float32 needs {expected} bytes, got {len(matrix.data)}"
        )
    return np.frombuffer(matrix.data, dtype="<f4").reshape(matrix.rows, matrix.cols)


def profile_to_proto(profile: UserProfile, *, rated: bool = True) -> common_pb2.UserFeatures:
    """rated=False leaves rated_items out (for a reader that does not use them, e.g. ranking)."""
    message = common_pb2.UserFeatures(
        user_id=profile.user_id,
        known=profile.known,
        segment=profile.segment,
        version=profile.version,
        bundle_version=profile.bundle_version,
    )
    message.dense.extend(profile.dense.tolist())
    message.genre_affinity.extend(profile.genre_affinity.tolist())
    message.genre_ratings.extend(profile.genre_ratings.tolist())
    message.recent_items.extend(profile.recent_items.tolist())
    if rated:
        message.rated_items.extend(profile.rated_items.tolist())
    if profile.embedding is not None:
        message.embedding.extend(profile.embedding.tolist())
    return message


def profile_from_proto(message: common_pb2.UserFeatures) -> UserProfile:
    return UserProfile(
        user_id=message.user_id,
        known=message.known,
        segment=message.segment,
        version=message.version,
        dense=np.asarray(message.dense, np.float32),
        genre_affinity=np.asarray(message.genre_affinity, np.float32),
        genre_ratings=np.asarray(message.genre_ratings, np.float32),
        recent_items=np.asarray(message.recent_items, np.int64),
        rated_items=np.asarray(message.rated_items, np.int64),
        embedding=np.asarray(message.embedding, np.float32) if len(message.embedding) else None,
        bundle_version=message.bundle_version,
    )


def items_to_proto(batch: ItemBatch) -> common_pb2.ItemFeatureBatch:
    message = common_pb2.ItemFeatureBatch(
        dense=matrix_to_proto(batch.dense),
        genres=matrix_to_proto(batch.genres),
        embedding=matrix_to_proto(batch.embedding),
        bundle_version=batch.bundle_version,
    )
    message.item_ids.extend(batch.item_ids.tolist())
    message.known.extend(batch.known.tolist())
    message.titles.extend(batch.titles)
    message.genre_names.extend(batch.genre_names)
    if batch.years is not None:
        message.years.extend(batch.years.tolist())
    return message


def items_from_proto(message: common_pb2.ItemFeatureBatch) -> ItemBatch:
    n = len(message.item_ids)
    batch = ItemBatch(
        item_ids=np.asarray(message.item_ids, np.int64),
        known=np.asarray(message.known, bool) if len(message.known) else np.ones(n, bool),
        dense=matrix_from_proto(message.dense, "items.dense"),
        genres=matrix_from_proto(message.genres, "items.genres"),
        embedding=matrix_from_proto(message.embedding, "items.embedding"),
        titles=list(message.titles),
        genre_names=list(message.genre_names),
        years=np.asarray(message.years, np.int32) if len(message.years) else None,
        bundle_version=message.bundle_version,
    )
    for name in ("dense", "genres", "embedding"):
        rows = getattr(batch, name).shape[0]
        if rows != n:
            raise InvalidArgument(f"items.{name} has {rows} rows for {n} item ids")
    if len(batch.known) != n:
        raise InvalidArgument(f"items.known has {len(batch.known)} values for {n} item ids")
    return batch


def event_from_proto(message: common_pb2.Event) -> Event:
    return Event(
        user_id=message.user_id,
        item_id=message.item_id,
        type=message.type,
        rating=message.rating if message.HasField("rating") else None,
        timestamp=message.timestamp,
        event_id=message.event_id,
    )


def event_to_proto(event: Event) -> common_pb2.Event:
    message = common_pb2.Event(
        user_id=event.user_id,
        item_id=event.item_id,
        type=event.type,
        timestamp=event.timestamp,
        event_id=event.event_id,
    )
    if event.rating is not None:
        message.rating = event.rating
    return message


def candidates_to_proto(candidates: Candidates, index_version: str, cached: bool) -> recall_pb2.RecallResponse:
    message = recall_pb2.RecallResponse(index_version=index_version, cached=cached)
    message.item_ids.extend(candidates.item_ids.tolist())
    message.scores.extend(candidates.scores.tolist())
    message.source_masks.extend(candidates.source_masks.tolist())
    message.channels.extend(candidates.channels)
    message.recall_features.CopyFrom(matrix_to_proto(candidates.recall_features))
    return message


def candidates_from_proto(message: recall_pb2.RecallResponse) -> Candidates:
    """A reply without recall_features (a recall tier older than them) gets zeros of the channels' width."""
    channels = tuple(message.channels)
    n = len(message.item_ids)
    candidates = Candidates(
        item_ids=np.asarray(message.item_ids, np.int64),
        scores=np.asarray(message.scores, np.float32),
        source_masks=np.asarray(message.source_masks, np.uint32),
        channels=channels,
        recall_features=(
            matrix_from_proto(message.recall_features, "recall_features")
            if message.HasField("recall_features")
            else np.zeros((n, recall_feature_width(len(channels))), np.float32)
        ),
    )
    for name in ("scores", "source_masks", "recall_features"):
        rows = len(getattr(candidates, name))
        if rows != n:
            raise InvalidArgument(f"recall reply: {name} has {rows} rows for {n} item ids")
    return candidates


def rank_request_to_proto(
    profile: UserProfile, item_ids: np.ndarray, recall_features: np.ndarray, model: str = ""
) -> ranking_pb2.RankRequest:
    """The user without rated_items (ranking does not read them: they are the bulk of a heavy user's message)."""
    message = ranking_pb2.RankRequest(
        user=profile_to_proto(profile, rated=False), model=model, recall_features=matrix_to_proto(recall_features)
    )
    message.item_ids.extend(item_ids.tolist())
    return message


def rank_result_to_proto(result: RankResult) -> ranking_pb2.RankResponse:
    message = ranking_pb2.RankResponse(
        model_name=result.model_name, model_version=result.model_version, variant=result.variant
    )
    message.scores.extend(result.scores.tolist())
    message.known.extend(result.known.tolist())
    return message


def rank_result_from_proto(message: ranking_pb2.RankResponse, n: int) -> RankResult:
    """The reply to a request for `n` candidates; INVALID_ARGUMENT when it does not score exactly n. A reply
    without `known` (a ranking tier older than it) counts every candidate as known."""
    if len(message.scores) != n:
        raise InvalidArgument(f"ranking reply has {len(message.scores)} scores for {n} candidates")
    if len(message.known) not in (0, n):
        raise InvalidArgument(f"ranking reply has {len(message.known)} known flags for {n} candidates")
    return RankResult(
        scores=np.asarray(message.scores, np.float32),
        known=np.asarray(message.known, bool) if len(message.known) else np.ones(n, bool),
        model_name=message.model_name,
        model_version=message.model_version,
        variant=message.variant,
    )


def summary_to_proto(summary: ItemSummary) -> catalogue_pb2.ItemSummary:
    message = catalogue_pb2.ItemSummary(
        item_id=summary.item_id, title=summary.title, genres=summary.genres, rating_count=summary.rating_count
    )
    if summary.year is not None:
        message.year = summary.year
    if summary.rating_mean is not None:
        message.rating_mean = summary.rating_mean
    return message


def details_to_proto(details: ItemDetails) -> catalogue_pb2.ItemDetails:
    links = catalogue_pb2.ItemLinks(movielens=details.links.movielens)
    if details.links.imdb:
        links.imdb = details.links.imdb
    if details.links.tmdb:
        links.tmdb = details.links.tmdb
    return catalogue_pb2.ItemDetails(summary=summary_to_proto(details.summary), tags=details.tags, links=links)


def item_list_to_proto(items: ItemList) -> catalogue_pb2.ItemList:
    return catalogue_pb2.ItemList(
        items=[summary_to_proto(item) for item in items.items], query=items.query, genre=items.genre, sort=items.sort
    )


def genres_to_proto(genres: list[tuple[str, int]]) -> catalogue_pb2.GenreList:
    return catalogue_pb2.GenreList(
        genres=[catalogue_pb2.GenreCount(genre=name, item_count=count) for name, count in genres]
    )


def user_ratings_to_proto(user: UserRatings) -> catalogue_pb2.UserRatings:
    counters = catalogue_pb2.UserCounters(
        rating_count=user.rating_count, positive_count=user.positive_count, event_count=user.event_count
    )
    if user.rating_mean is not None:
        counters.rating_mean = user.rating_mean
    message = catalogue_pb2.UserRatings(
        user_id=user.user_id,
        segment=user.segment,
        counters=counters,
        total=user.total,
        offset=user.offset,
        limit=user.limit,
    )
    for rated in user.ratings:
        entry = message.ratings.add(item=summary_to_proto(rated.item), timestamp=rated.timestamp)
        if rated.rating is not None:
            entry.rating = rated.rating
    return message
