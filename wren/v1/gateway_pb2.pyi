from wren.v1 import catalogue_pb2 as _catalogue_pb2
from wren.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecommendRequest(_message.Message):
    __slots__ = ("user_id", "k")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    k: int
    def __init__(self, user_id: _Optional[int] = ..., k: _Optional[int] = ...) -> None: ...

class GatewaySimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "k")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    item_id: int
    k: int
    def __init__(self, item_id: _Optional[int] = ..., k: _Optional[int] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("item_id", "title", "genres", "score", "sources", "rank_score", "cached", "recall_score")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    GENRES_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    RANK_SCORE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    RECALL_SCORE_FIELD_NUMBER: _ClassVar[int]
    item_id: int
    title: str
    genres: _containers.RepeatedScalarFieldContainer[str]
    score: float
    sources: _containers.RepeatedScalarFieldContainer[str]
    rank_score: float
    cached: bool
    recall_score: float
    def __init__(self, item_id: _Optional[int] = ..., title: _Optional[str] = ..., genres: _Optional[_Iterable[str]] = ..., score: _Optional[float] = ..., sources: _Optional[_Iterable[str]] = ..., rank_score: _Optional[float] = ..., cached: _Optional[bool] = ..., recall_score: _Optional[float] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("user_id", "items", "model_version", "degraded", "degraded_reason", "served_by", "variant", "item_id")
    class ServedByEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    model_version: str
    degraded: bool
    degraded_reason: str
    served_by: _containers.ScalarMap[str, str]
    variant: str
    item_id: int
    def __init__(self, user_id: _Optional[int] = ..., items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., model_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ..., served_by: _Optional[_Mapping[str, str]] = ..., variant: _Optional[str] = ..., item_id: _Optional[int] = ...) -> None: ...
