"""What every `wren serve` process sets up before it loads its bundle."""

from __future__ import annotations

import logging

from services.common.config import ServiceSettings, describe
from services.common.logs import configure_logging
from services.common.metrics import serve_metrics
from services.common.threads import limit_blas_threads

log = logging.getLogger(__name__)


def prepare_process(service: str, settings: ServiceSettings) -> None:
    """JSON logs, the resolved settings in one log line, the BLAS thread cap and the /metrics listener."""
    configure_logging(service, settings.log_level)
    log.info("starting", extra={"settings": describe(settings)})
    limit_blas_threads(settings.blas_threads)
    serve_metrics(settings.metrics_port, settings.host)
