"""What an evaluation needs from whoever serves the lists: each user's served top-k (in process or over HTTP)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class ServedLists:
    """Each user's served top-k (item ids, best first), how many answers said they were degraded, and where
    they came from ("in-process" or the gateway's address)."""

    lists: dict[int, np.ndarray]
    degraded: int
    source: str = "in-process"


class ServedListSource(Protocol):
    """Fetches the served top-k of `user_ids` for the bundle at `bundle_dir`. Training is handed one (the
    serving code in this process, or a running gateway) so it never imports serving."""

    def __call__(self, bundle_dir: Path, user_ids: Sequence[int], k: int, progress: bool = False) -> ServedLists: ...
