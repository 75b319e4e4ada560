"""The retrain gate: a candidate bundle replaces the live one only if its served-list quality is not worse."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from wren.core.bundle_writer import point_current
from wren.core.manifest import Manifest


def served_ndcg(manifest: Manifest) -> tuple[float, int]:
    """(NDCG@k of the served list on the bundle's held-out part, k) as `wren train` measured it."""
    served = manifest.metrics["served"]
    k = int(served["k"])
    return float(served["systems"]["wren"][f"ndcg_at_{k}"]), k


@dataclass(frozen=True)
class Decision:
    """What the gate decided and why. live_* are None when nothing was live (the candidate then publishes)."""

    publish: bool
    reason: str
    candidate_version: str
    candidate_ndcg: float
    live_version: str | None
    live_ndcg: float | None
    tolerance: float
    k: int
    protocol: str

    def to_dict(self) -> dict:
        return asdict(self)


def decide(candidate: Manifest, live: Manifest | None, tolerance: float) -> Decision:
    """Publish when there is no live bundle, or when the candidate's served NDCG@k is at least the live one's
    minus `tolerance` (absolute) under the same evaluation protocol; refuse otherwise."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be at least 0, got {tolerance}")
    ndcg, k = served_ndcg(candidate)
    protocol = candidate.evaluation.protocol
    if live is None:
        return Decision(True, "no live bundle", candidate.version, ndcg, None, None, tolerance, k, protocol)
    live_ndcg, live_k = served_ndcg(live)
    live_protocol = live.evaluation.protocol
    if (live_k, live_protocol) != (k, protocol):
        return Decision(
            False,
            f"not comparable: live measured NDCG@{live_k} ({live_protocol}), candidate NDCG@{k} ({protocol})",
            candidate.version,
            ndcg,
            live.version,
            live_ndcg,
            tolerance,
            k,
            protocol,
        )
    publish = ndcg >= live_ndcg - tolerance
    verdict = "not worse than" if publish else "worse than"
    reason = (
        f"candidate NDCG@{k} {ndcg:.4f} is {verdict} live {live_ndcg:.4f} "
        f"{'within' if publish else 'beyond'} tolerance {tolerance:g}"
    )
    return Decision(publish, reason, candidate.version, ndcg, live.version, live_ndcg, tolerance, k, protocol)


def promote(candidate_dir: Path, artifacts: Path) -> Path:
    """Moves a finished bundle directory into the artifacts root and points `current` at it (atomic switch:
    every tier watching the root hot-reloads it). Returns the bundle's new path."""
    final = Path(artifacts) / candidate_dir.name
    if final.exists():
        raise FileExistsError(f"a bundle {final} already exists")
    os.replace(candidate_dir, final)
    point_current(Path(artifacts), final.name)
    return final


def discard(candidate_dir: Path) -> None:
    shutil.rmtree(candidate_dir, ignore_errors=True)
