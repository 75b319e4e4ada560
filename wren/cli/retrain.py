"""`wren retrain`: base data + the nearline event log -> a trained bundle -> the quality gate -> publish -> report."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import REGISTRY, Counter, Gauge, write_to_textfile

from pipeline.retrain import Decision, decide, discard, promote
from wren.core.manifest import Manifest

log = logging.getLogger(__name__)

RETRAIN_RUNS = Counter("wren_retrain_runs", "retrain runs by outcome: published, refused, failed", ["outcome"])
RETRAIN_NDCG = Gauge("wren_retrain_served_ndcg", "served NDCG@k the last gate compared, by bundle", ["bundle"])
RETRAIN_PUBLISHED = Gauge("wren_retrain_published", "1 when the last retrain published its bundle, 0 when refused")
RETRAIN_LAST_RUN = Gauge(
    "wren_retrain_last_run_timestamp_seconds", "when the last retrain finished, by outcome", ["outcome"]
)
STAGING = ".retrain"
REPORTS = "retrain-reports"


@dataclass(frozen=True)
class RetrainJob:
    """data: base MovieLens directory; artifacts: the served artifacts root (its `current` is the live bundle);
    events: nearline event log directory; config/seed: training settings as for `wren train`; tolerance: how
    much lower (absolute served NDCG@k) the candidate may score and still publish; redis_url: also publish the
    features to this Redis (feature tier with the Redis backend)."""

    data: Path
    artifacts: Path
    events: Path | None = None
    config: Path | None = None
    seed: int | None = None
    tolerance: float = 0.005
    redis_url: str = ""
    prefix: str = "wren"
    keep: int = 2
    progress: bool = False


def run_once(job: RetrainJob) -> tuple[Decision, Path]:
    """Trains a candidate aside (ARTIFACTS/.retrain), gates it against the live bundle and publishes or discards
    it; returns the decision and the path of its JSON report (ARTIFACTS/retrain-reports/)."""
    from pipeline.config import load_config
    from pipeline.train import train
    from services.inprocess import served_lists
    from wren.core.bundle import Bundle, resolve_bundle_dir
    from wren.core.errors import BundleError

    try:
        live = Bundle(resolve_bundle_dir(job.artifacts)).manifest
    except BundleError:
        live = None
    staging = Path(job.artifacts) / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = train(
            job.data,
            staging,
            load_config(job.config, seed=job.seed),
            served_lists,
            progress=job.progress,
            events=job.events,
        )
        decision = decide(result.manifest, live, job.tolerance)
        if decision.publish:
            if job.redis_url:
                from services.feature.publish import publish_bundle

                publish_bundle(
                    Bundle(result.bundle_dir), job.redis_url, prefix=job.prefix, keep=job.keep, progress=False
                )
            promote(result.bundle_dir, Path(job.artifacts))
        else:
            discard(result.bundle_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report = _write_report(job, decision, result.manifest)
    _record(decision)
    return decision, report


def _write_report(job: RetrainJob, decision: Decision, manifest: Manifest) -> Path:
    directory = Path(job.artifacts) / REPORTS
    directory.mkdir(parents=True, exist_ok=True)
    finished = datetime.now(UTC)
    path = directory / f"{finished:%Y%m%dT%H%M%SZ}-{decision.candidate_version}.json"
    report = {
        "finished": finished.isoformat(),
        "decision": decision.to_dict(),
        "data": str(job.data),
        "events": str(job.events) if job.events else None,
        "dropped": manifest.data["dropped"],
        "ratings": manifest.counts.get("ratings"),
        "candidate_served": manifest.metrics["served"],
    }
    path.write_text(json.dumps(report, indent=1) + "\n")
    return path


def _record(decision: Decision) -> None:
    outcome = "published" if decision.publish else "refused"
    RETRAIN_RUNS.labels(outcome).inc()
    RETRAIN_PUBLISHED.set(int(decision.publish))
    RETRAIN_NDCG.labels("candidate").set(decision.candidate_ndcg)
    if decision.live_ndcg is not None:
        RETRAIN_NDCG.labels("live").set(decision.live_ndcg)
    RETRAIN_LAST_RUN.labels(outcome).set(time.time())


def run(
    job: RetrainJob,
    every_seconds: float = 0.0,
    metrics_file: Path | None = None,
    metrics_port: int = 0,
    metrics_host: str = "127.0.0.1",
) -> int:
    """Once (every_seconds 0) or on a schedule until interrupted. Prints each decision; a failed run is logged
    and counted, and a schedule carries on. Metrics go to `metrics_file` (Prometheus text format, for a
    node-exporter textfile collector) after each run and/or are served on `metrics_host`:`metrics_port`."""
    from services.common.metrics import serve_metrics

    serve_metrics(metrics_port, metrics_host)
    while True:
        started = time.monotonic()
        try:
            decision, report = run_once(job)
            verb = "published" if decision.publish else "refused"
            print(f"wren retrain: {verb} {decision.candidate_version}: {decision.reason} (report {report})", flush=True)
        except Exception:
            RETRAIN_RUNS.labels("failed").inc()
            RETRAIN_LAST_RUN.labels("failed").set(time.time())
            if not every_seconds:
                raise
            log.exception("retrain failed; trying again at the next run")
        if metrics_file is not None:
            write_to_textfile(str(metrics_file), REGISTRY)
        if not every_seconds:
            return 0
        time.sleep(max(every_seconds - (time.monotonic() - started), 0.0))
