"""Each tier as a real `wren serve` process: SERVING health, reflection, /metrics, clean SIGTERM exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.tiers import BACKEND_TIERS, SERVICE_NAMES
from tests.conftest import REPO
from tests.support.netutil import free_port, reflected_services, scrape, wait_serving

TIERS = {tier: SERVICE_NAMES[tier] for tier in BACKEND_TIERS}


@pytest.mark.parametrize("tier", sorted(TIERS))
async def test_tier_serves_health_reflection_and_metrics(tier: str, tiny_artifacts: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "WREN_GRACE_SECONDS": "2", "WREN_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wren.cli.main",
            "serve",
            tier,
            "--artifacts",
            str(tiny_artifacts),
            "--port",
            str(port),
            "--metrics-port",
            str(metrics_port),
            "--host",
            "127.0.0.1",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        target = f"127.0.0.1:{port}"
        await wait_serving(target)
        await wait_serving(target, TIERS[tier])
        assert TIERS[tier] in await reflected_services(target)
        families = {family.name: family for family in text_string_to_metric_families(scrape(metrics_port))}
        ready = [s for s in families["wren_ready"].samples if s.labels["service"] == tier]
        assert ready and ready[0].value == 1.0
        assert any(s.labels["service"] == tier for s in families["wren_bundle_info"].samples)
        assert [s.value for s in families["wren_capacity"].samples if s.labels["service"] == tier] == [64.0]
        for bound in (port, metrics_port):  # --host 127.0.0.1: nothing listens on the rest of 127/8 or beyond
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.2", bound), timeout=5).close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
