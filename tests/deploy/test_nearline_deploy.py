"""The nearline Deployment, the retrain CronJob and the import boundaries of the learning loop."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.nearline.main import SERVICE_NAME, NearlineSettings
from tests.deploy.test_deploy_manifests import (
    APP_KUSTOMIZATIONS,
    env,
    named,
    objects_of,
    pod_labels,
    pod_spec,
    selector_matches,
    tier_container,
    tier_deployments,
)
from tests.support.deploy_helpers import REPO, dashboard_expressions, metric_names
from wren.cli.main import build_parser


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_the_nearline_deployment_runs_the_tier_with_its_settings_probes_and_event_log(kustomization: str) -> None:
    deployment = named(kustomization, "Deployment", "nearline")
    container = tier_container(deployment)
    assert build_parser().parse_args(["serve", *container["args"]]).tier == "nearline"
    variables = env(container)
    fields = NearlineSettings.model_fields
    assert all(name.startswith("WREN_") and name[5:].lower() in fields for name in variables)
    NearlineSettings(
        **{name[5:].lower(): value for name, value in variables.items() if isinstance(value, str)},
        redis_url="redis://x",
    )
    secret = variables["WREN_REDIS_URL"]["secretKeyRef"]  # the dev overlay's generator suffixes the name
    assert secret["key"] == "url" and secret["name"].startswith("wren-redis")
    assert variables["WREN_CONSUMER"] == {"fieldRef": {"fieldPath": "metadata.name"}}, "one consumer name per pod"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["grpc"] == int(variables["WREN_PORT"]) and ports["metrics"] == int(variables["WREN_METRICS_PORT"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": ports["grpc"], "service": SERVICE_NAME}
    assert container["livenessProbe"]["grpc"]["service"] == ""
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == variables["WREN_EVENT_LOG_DIR"]]
    assert not mount.get("readOnly")
    (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    assert named(kustomization, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    (budget,) = [
        p
        for p in objects_of(kustomization, "PodDisruptionBudget")
        if selector_matches(p["spec"]["selector"], pod_labels(deployment))
    ]
    assert budget["spec"]["maxUnavailable"] == 1 and deployment["spec"]["replicas"] >= 2
    (monitor,) = objects_of("monitoring", "PodMonitor")
    assert selector_matches(monitor["spec"]["selector"], pod_labels(deployment))


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_recall_and_the_gateway_read_the_same_redis_as_the_nearline_tier(kustomization: str) -> None:
    nearline = env(tier_container(named(kustomization, "Deployment", "nearline")))["WREN_REDIS_URL"]
    for tier in ("recall", "gateway", "feature"):
        assert env(tier_container(tier_deployments(kustomization)[tier]))["WREN_REDIS_URL"] == nearline, tier


def test_the_retrain_cronjob_reads_the_event_log_and_publishes_to_the_served_volume() -> None:
    (cronjob,) = objects_of("tools/retrain", "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["schedule"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = [part.replace("$(WREN_REDIS_URL)", "redis://redis:6379/0") for part in container["command"]]
    args = build_parser().parse_args(command[1:])
    assert command[0] == "wren" and args.command == "retrain" and args.redis_url and args.tolerance >= 0
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v
    }
    served = env(tier_container(tier_deployments("base")["recall"]))["WREN_ARTIFACTS"]
    assert str(args.artifacts) == served and not mounts[served].get("readOnly")
    artifacts_claim = named("base", "PersistentVolumeClaim", "wren-artifacts")["metadata"]["name"]
    assert claims[mounts[served]["name"]] == artifacts_claim
    assert mounts[str(args.events)].get("readOnly")
    assert claims[mounts[str(args.events)]["name"]] == "wren-events"
    assert str(args.metrics_file).startswith(served)
    assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
    restricted = container["securityContext"]
    assert restricted["readOnlyRootFilesystem"] and restricted["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert "/tmp" in mounts


def test_the_dashboard_shows_freshness_dead_letters_and_the_retrain_gate() -> None:
    used = set().union(*(metric_names(item.expr) for item in dashboard_expressions()))
    assert {
        "namespace:wren_nearline_event_to_feature_seconds:p50_5m",
        "namespace:wren_nearline_event_to_feature_seconds:p99_5m",
        "namespace:wren_nearline_consumer_lag:max",
        "wren_nearline_dead_letters_total",
        "wren_retrain_served_ndcg",
        "wren_retrain_published",
    } <= used


def test_serving_tiers_never_import_training_and_training_never_imports_the_nearline_tier() -> None:
    program = """
import importlib, sys
for module in ("services.nearline.main", "services.recall.main", "services.gateway.main"):
    importlib.import_module(module)
assert "torch" not in sys.modules and "pipeline" not in sys.modules, sorted(sys.modules)
for module in [m for m in list(sys.modules) if m.startswith("services.nearline")]:
    del sys.modules[module]
for module in ("pipeline.train", "pipeline.events", "pipeline.retrain"):
    importlib.import_module(module)
assert not [m for m in sys.modules if m.startswith("services.nearline")], "pipeline imports services.nearline"
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
