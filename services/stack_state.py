"""What `wren up` runs where: the member records, state.json, Prometheus file_sd targets and the printed summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from services.common.tiers import BACKEND_TIERS

TIERS = BACKEND_TIERS


@dataclass
class Member:
    """One process of the stack; `port` is its gRPC port (the gateway's `http_port` is its REST API)."""

    name: str
    tier: str
    port: int
    metrics_port: int
    http_port: int = 0
    pid: int = 0
    log: str = ""


def write_state(directory: Path, artifacts: Path, host: str, members: Sequence[Member]) -> Path:
    """state.json (processes and endpoints) and prometheus_targets.json (file_sd for Prometheus)."""
    gateway = _gateway(members)
    state = {
        "artifacts": str(artifacts),
        "gateway": {"grpc": f"{host}:{gateway.port}", "http": f"http://{host}:{gateway.http_port}"},
        "processes": [asdict(m) for m in members],
    }
    (directory / "state.json").write_text(json.dumps(state, indent=1) + "\n")
    targets = [
        {
            "targets": [f"{host}:{m.metrics_port}" for m in members if m.tier == tier],
            "labels": {"tier": tier, "job": f"wren-{tier}"},
        }
        for tier in (*TIERS, "nearline", "gateway")
        if tier != "nearline" or any(m.tier == tier for m in members)
    ]
    (directory / "prometheus_targets.json").write_text(json.dumps(targets, indent=1) + "\n")
    return directory / "state.json"


def site_url(host: str, http_port: int) -> str:
    """The web app's address; a wildcard bind address is shown as loopback, which a browser can open."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    return f"http://{host}:{http_port}/"


def describe(directory: Path, artifacts: Path, host: str, members: Sequence[Member]) -> str:
    """The lines `wren up` prints once everything serves: endpoints, then one row per process."""
    gateway = _gateway(members)
    lines = [
        f"Wren is up: open {site_url(host, gateway.http_port)}",
        f"  bundle  {artifacts}",
        f"  HTTP  http://{host}:{gateway.http_port}/v1/recommendations?user_id=1&k=10",
        f"  gRPC  {host}:{gateway.port}  (wren.v1.GatewayService; reflection on)",
        f"  metrics  http://{host}:{gateway.http_port}/metrics",
        "",
        f"  {'process':<12}{'pid':>8}{'grpc':>8}{'metrics':>9}",
    ]
    lines += [f"  {m.name:<12}{m.pid:>8}{m.port:>8}{m.metrics_port:>9}" for m in members]
    lines += ["", f"  state: {directory / 'state.json'}   logs: {directory / 'logs'}", "  Ctrl-C stops everything."]
    return "\n".join(lines)


def _gateway(members: Sequence[Member]) -> Member:
    return next(m for m in members if m.tier == "gateway")
