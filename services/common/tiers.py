"""The tier names in one place: the tiers the gateway calls, every `wren serve` process, their gRPC services."""

from __future__ import annotations

BACKEND_TIERS = ("feature", "recall", "ranking")  # what the gateway calls over gRPC, in request order
DEPLOYED_TIERS = (*BACKEND_TIERS, "gateway")  # one Deployment and Service each in deploy/k8s
PROCESSES = (*DEPLOYED_TIERS, "nearline")  # every `wren serve <name>`
SERVICE_NAMES = {
    "feature": "wren.v1.FeatureService",
    "recall": "wren.v1.RecallService",
    "ranking": "wren.v1.RankingService",
    "gateway": "wren.v1.GatewayService",
    "nearline": "wren.v1.Nearline",
}
