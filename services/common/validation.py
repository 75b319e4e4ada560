"""Input checks shared by the tiers; each failure is an InvalidArgument naming the field."""

from __future__ import annotations

import math
import re

import numpy as np

from wren.core.errors import InvalidArgument
from wren.core.schema import EVENT_TYPES, RATING_RANGE
from wren.core.types import Event

MAX_ID = 2**62
EVENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def check_id(value: int, field: str) -> int:
    if not 0 < value < MAX_ID:
        raise InvalidArgument(f"{field} must be a positive integer id, got {value}")
    return value


def check_ids(values: np.ndarray, field: str, max_count: int) -> np.ndarray:
    values = np.asarray(values, np.int64)
    if len(values) == 0:
        raise InvalidArgument(f"{field} must not be empty")
    if len(values) > max_count:
        raise InvalidArgument(f"{field} has {len(values)} ids; at most {max_count} per call")
    bad = values[(values <= 0) | (values >= MAX_ID)]
    if len(bad):
        raise InvalidArgument(f"{field} must hold positive integer ids, got {int(bad[0])}")
    return values


def check_k(k: int, max_k: int, field: str = "k") -> int:
    if not 1 <= k <= max_k:
        raise InvalidArgument(f"{field} must be between 1 and {max_k}, got {k}")
    return k


def check_finite(values: np.ndarray, field: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise InvalidArgument(f"{field} contains NaN or infinite values")
    return values


# The catalogue API's limits, checked alike by the gateway and the feature tier.
MAX_LIST = 100  # items per search, genre row or page of a user's ratings
DEFAULT_SEARCH_K = 20
DEFAULT_GENRE_K = 10
DEFAULT_PAGE = 20
MAX_OFFSET = 1_000_000
MAX_QUERY_CHARS = 200
SORTS = ("popularity", "rating")
DEFAULT_SORT = "popularity"


def check_query(query: str, field: str = "q") -> str:
    """The query without surrounding whitespace; it must hold a letter or digit and be at most MAX_QUERY_CHARS."""
    query = query.strip()
    if not query:
        raise InvalidArgument(f"{field} must not be empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"{field} must be at most {MAX_QUERY_CHARS} characters, got {len(query)}")
    if not any(c.isalnum() for c in query):
        raise InvalidArgument(f"{field} must contain a letter or a digit, got {query!r}")
    return query


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise InvalidArgument(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    return sort


def check_offset(offset: int) -> int:
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidArgument(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
    return offset


def check_genre(genre: str) -> str:
    genre = genre.strip()
    if not genre:
        raise InvalidArgument("genre must not be empty")
    if len(genre) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"genre must be at most {MAX_QUERY_CHARS} characters, got {len(genre)}")
    return genre


def validate_event(event: Event) -> None:
    check_id(event.user_id, "user_id")
    check_id(event.item_id, "item_id")
    if event.type not in EVENT_TYPES:
        raise InvalidArgument(f"type must be one of {', '.join(EVENT_TYPES)}, got {event.type!r}")
    if event.type == "rating":
        if event.rating is None:
            raise InvalidArgument("a rating event needs a rating")
        if not math.isfinite(event.rating) or not RATING_RANGE[0] <= event.rating <= RATING_RANGE[1]:
            raise InvalidArgument(f"rating must be between {RATING_RANGE[0]} and {RATING_RANGE[1]}, got {event.rating}")
    elif event.rating is not None:
        raise InvalidArgument(f"a {event.type} event carries no rating")
    if event.timestamp < 0:
        raise InvalidArgument(f"timestamp must be seconds since the epoch, got {event.timestamp}")
    if event.event_id and not EVENT_ID.fullmatch(event.event_id):
        raise InvalidArgument("event_id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':' or '-'")
