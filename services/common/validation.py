"""Input checks shared by the tiers; each failure is an InvalidArgument naming the field."""

from __future__ import annotations

import numpy as np

from services.common.errors import InvalidArgument

MAX_ID = 2**62


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
