from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Matrix(_message.Message):
    __slots__ = ("rows", "cols", "data")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    data: bytes
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class UserFeatures(_message.Message):
    __slots__ = ("user_id", "known", "segment", "version", "dense", "genre_affinity", "recent_items", "rated_items", "embedding", "bundle_version", "genre_ratings")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DENSE_FIELD_NUMBER: _ClassVar[int]
    GENRE_AFFINITY_FIELD_NUMBER: _ClassVar[int]
    RECENT_ITEMS_FIELD_NUMBER: _ClassVar[int]
    RATED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    GENRE_RATINGS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    known: bool
    segment: str
    version: int
    dense: _containers.RepeatedScalarFieldContainer[float]
    genre_affinity: _containers.RepeatedScalarFieldContainer[float]
    recent_items: _containers.RepeatedScalarFieldContainer[int]
    rated_items: _containers.RepeatedScalarFieldContainer[int]
    embedding: _containers.RepeatedScalarFieldContainer[float]
    bundle_version: str
    genre_ratings: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, user_id: _Optional[int] = ..., known: _Optional[bool] = ..., segment: _Optional[str] = ..., version: _Optional[int] = ..., dense: _Optional[_Iterable[float]] = ..., genre_affinity: _Optional[_Iterable[float]] = ..., recent_items: _Optional[_Iterable[int]] = ..., rated_items: _Optional[_Iterable[int]] = ..., embedding: _Optional[_Iterable[float]] = ..., bundle_version: _Optional[str] = ..., genre_ratings: _Optional[_Iterable[float]] = ...) -> None: ...

class ItemFeatureBatch(_message.Message):
    __slots__ = ("item_ids", "known", "dense", "genres", "embedding", "titles", "genre_names", "years", "bundle_version")
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    DENSE_FIELD_NUMBER: _ClassVar[int]
    GENRES_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    TITLES_FIELD_NUMBER: _ClassVar[int]
    GENRE_NAMES_FIELD_NUMBER: _ClassVar[int]
    YEARS_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[int]
    known: _containers.RepeatedScalarFieldContainer[bool]
    dense: Matrix
    genres: Matrix
    embedding: Matrix
    titles: _containers.RepeatedScalarFieldContainer[str]
    genre_names: _containers.RepeatedScalarFieldContainer[str]
    years: _containers.RepeatedScalarFieldContainer[int]
    bundle_version: str
    def __init__(self, item_ids: _Optional[_Iterable[int]] = ..., known: _Optional[_Iterable[bool]] = ..., dense: _Optional[_Union[Matrix, _Mapping]] = ..., genres: _Optional[_Union[Matrix, _Mapping]] = ..., embedding: _Optional[_Union[Matrix, _Mapping]] = ..., titles: _Optional[_Iterable[str]] = ..., genre_names: _Optional[_Iterable[str]] = ..., years: _Optional[_Iterable[int]] = ..., bundle_version: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("user_id", "item_id", "type", "rating", "timestamp", "event_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    item_id: int
    type: str
    rating: float
    timestamp: int
    event_id: str
    def __init__(self, user_id: _Optional[int] = ..., item_id: _Optional[int] = ..., type: _Optional[str] = ..., rating: _Optional[float] = ..., timestamp: _Optional[int] = ..., event_id: _Optional[str] = ...) -> None: ...

class RecordEventResponse(_message.Message):
    __slots__ = ("user_version",)
    USER_VERSION_FIELD_NUMBER: _ClassVar[int]
    user_version: int
    def __init__(self, user_version: _Optional[int] = ...) -> None: ...
