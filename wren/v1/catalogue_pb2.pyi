from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ItemSummary(_message.Message):
    __slots__ = ("item_id", "title", "year", "genres", "rating_count", "rating_mean")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    GENRES_FIELD_NUMBER: _ClassVar[int]
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    RATING_MEAN_FIELD_NUMBER: _ClassVar[int]
    item_id: int
    title: str
    year: int
    genres: _containers.RepeatedScalarFieldContainer[str]
    rating_count: int
    rating_mean: float
    def __init__(self, item_id: _Optional[int] = ..., title: _Optional[str] = ..., year: _Optional[int] = ..., genres: _Optional[_Iterable[str]] = ..., rating_count: _Optional[int] = ..., rating_mean: _Optional[float] = ...) -> None: ...

class ItemLinks(_message.Message):
    __slots__ = ("movielens", "imdb", "tmdb")
    MOVIELENS_FIELD_NUMBER: _ClassVar[int]
    IMDB_FIELD_NUMBER: _ClassVar[int]
    TMDB_FIELD_NUMBER: _ClassVar[int]
    movielens: str
    imdb: str
    tmdb: str
    def __init__(self, movielens: _Optional[str] = ..., imdb: _Optional[str] = ..., tmdb: _Optional[str] = ...) -> None: ...

class ItemDetails(_message.Message):
    __slots__ = ("summary", "tags", "links")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    summary: ItemSummary
    tags: _containers.RepeatedScalarFieldContainer[str]
    links: ItemLinks
    def __init__(self, summary: _Optional[_Union[ItemSummary, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ..., links: _Optional[_Union[ItemLinks, _Mapping]] = ...) -> None: ...

class GetItemRequest(_message.Message):
    __slots__ = ("item_id",)
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: int
    def __init__(self, item_id: _Optional[int] = ...) -> None: ...

class SearchItemsRequest(_message.Message):
    __slots__ = ("query", "k")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    query: str
    k: int
    def __init__(self, query: _Optional[str] = ..., k: _Optional[int] = ...) -> None: ...

class ItemList(_message.Message):
    __slots__ = ("items", "query", "genre", "sort")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    GENRE_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ItemSummary]
    query: str
    genre: str
    sort: str
    def __init__(self, items: _Optional[_Iterable[_Union[ItemSummary, _Mapping]]] = ..., query: _Optional[str] = ..., genre: _Optional[str] = ..., sort: _Optional[str] = ...) -> None: ...

class ListGenresRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GenreCount(_message.Message):
    __slots__ = ("genre", "item_count")
    GENRE_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    genre: str
    item_count: int
    def __init__(self, genre: _Optional[str] = ..., item_count: _Optional[int] = ...) -> None: ...

class GenreList(_message.Message):
    __slots__ = ("genres",)
    GENRES_FIELD_NUMBER: _ClassVar[int]
    genres: _containers.RepeatedCompositeFieldContainer[GenreCount]
    def __init__(self, genres: _Optional[_Iterable[_Union[GenreCount, _Mapping]]] = ...) -> None: ...

class GenreItemsRequest(_message.Message):
    __slots__ = ("genre", "sort", "k")
    GENRE_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    genre: str
    sort: str
    k: int
    def __init__(self, genre: _Optional[str] = ..., sort: _Optional[str] = ..., k: _Optional[int] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id", "offset", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    offset: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class UserCounters(_message.Message):
    __slots__ = ("rating_count", "rating_mean", "positive_count", "event_count")
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    RATING_MEAN_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    rating_count: int
    rating_mean: float
    positive_count: int
    event_count: int
    def __init__(self, rating_count: _Optional[int] = ..., rating_mean: _Optional[float] = ..., positive_count: _Optional[int] = ..., event_count: _Optional[int] = ...) -> None: ...

class RatedItem(_message.Message):
    __slots__ = ("item", "rating", "timestamp")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    item: ItemSummary
    rating: float
    timestamp: int
    def __init__(self, item: _Optional[_Union[ItemSummary, _Mapping]] = ..., rating: _Optional[float] = ..., timestamp: _Optional[int] = ...) -> None: ...

class UserRatings(_message.Message):
    __slots__ = ("user_id", "segment", "counters", "ratings", "total", "offset", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    RATINGS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    segment: str
    counters: UserCounters
    ratings: _containers.RepeatedCompositeFieldContainer[RatedItem]
    total: int
    offset: int
    limit: int
    def __init__(self, user_id: _Optional[int] = ..., segment: _Optional[str] = ..., counters: _Optional[_Union[UserCounters, _Mapping]] = ..., ratings: _Optional[_Iterable[_Union[RatedItem, _Mapping]]] = ..., total: _Optional[int] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...
