"""The container image and the Kubernetes manifests: rendered with kustomize, schema-validated, and held to
the deployment policy (probes, resources, security, disruption budgets, autoscaling, network policy)."""
# Long: one deployment-policy suite; the rendered-manifest, Dockerfile and network-policy helpers above serve all of it.

from __future__ import annotations

import base64
import importlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.gateway.discovery import DnsSource, parse_replicas
from services.gateway.main import GatewaySettings
from tests.support.deploy_helpers import (
    ADAPTER_CONFIG,
    KUSTOMIZATIONS,
    REPO,
    TIERS,
    adapter_rules,
    kustomize,
    prometheus_rule_object,
    rule_groups,
)
from wren.cli.main import build_parser
from wren.core.bundle import CURRENT, MANIFEST

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
APP_KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/prod")
# The oldest release the manifests support (native preStop sleep is on by default from 1.30) and the newest
# whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
HPA_METRICS = {"wren_utilization_avg", "wren_latency_p95_seconds"}


@cache
def rendered(kustomization: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(kustomization))


def objects_of(kustomization: str, kind: str) -> list[dict[str, Any]]:
    return [obj for obj in rendered(kustomization) if obj["kind"] == kind]


def named(kustomization: str, kind: str, name: str) -> dict[str, Any]:
    matches = [obj for obj in objects_of(kustomization, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kustomization}: expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"]["labels"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]["labels"]


def workloads(kustomization: str) -> list[dict[str, Any]]:
    return [obj for obj in rendered(kustomization) if obj["kind"] in ("Deployment", "StatefulSet", "Job", "Pod")]


def all_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def tier_container(deployment: dict[str, Any]) -> dict[str, Any]:
    name = deployment["metadata"]["name"]
    (container,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == name]
    return container


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def settings_class(tier: str) -> type:
    module = importlib.import_module(f"services.{tier}.main")
    return getattr(
        module,
        {
            "feature": "FeatureSettings",
            "recall": "RecallSettings",
            "ranking": "RankingSettings",
            "gateway": "GatewaySettings",
        }[tier],
    )


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics; an empty selector matches everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def cpu(quantity: str | int) -> Fraction:
    text = str(quantity)
    return Fraction(text[:-1]) / 1000 if text.endswith("m") else Fraction(text)


def memory(quantity: str | int) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    text = str(quantity)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(Fraction(text[: -len(suffix)]) * factor)
    return int(text)


def tier_deployments(kustomization: str) -> dict[str, dict[str, Any]]:
    deployments = {obj["metadata"]["name"]: obj for obj in objects_of(kustomization, "Deployment")}
    assert set(deployments) == {*TIERS, "nearline"}, f"{kustomization}: Deployments {sorted(deployments)}"
    return {name: deployments[name] for name in TIERS}  # the nearline tier: tests/deploy/test_nearline_deploy.py


# -- the image --------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str


def dockerfile_stages() -> list[list[Instruction]]:
    """The Dockerfile's stages (each from its FROM on), comments dropped and continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def exec_form(arguments: str) -> list[str]:
    assert arguments.startswith("["), f"use the exec (JSON) form, not {arguments!r}"
    return json.loads(arguments)


def copy_sources(instruction: Instruction) -> list[str]:
    """Build-context paths a COPY/ADD reads (none for COPY --from=<stage>)."""
    tokens = shlex.split(instruction.arguments)
    flags = [token for token in tokens if token.startswith("--")]
    if any(flag.startswith("--from=") for flag in flags):
        return []
    paths = [token for token in tokens if not token.startswith("--")]
    return paths[:-1]


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex, index = "", 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex, index = regex + "(?:.*/)?", index + 3
            elif pattern.startswith("**", index):
                regex, index = regex + ".*", index + 2
            elif pattern[index] == "*":
                regex, index = regex + "[^/]*", index + 1
            elif pattern[index] == "?":
                regex, index = regex + "[^/]", index + 1
            else:
                regex, index = regex + re.escape(pattern[index]), index + 1
        rules.append((negate, re.compile(regex + "$")))
    return rules


def excluded_from_context(relative: str) -> bool:
    """Docker's .dockerignore semantics: the last matching pattern decides; a pattern matching a parent
    directory covers everything below it."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[:count]) for count in range(1, len(parts) + 1)]
    excluded = False
    for negate, regex in dockerignore_rules():
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def builder_sources() -> list[str]:
    return [
        source
        for stage in dockerfile_stages()
        for ins in stage
        if ins.keyword in ("COPY", "ADD")
        for source in copy_sources(ins)
    ]


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    sources = builder_sources()
    assert sources, "the Dockerfile copies nothing from the repository"
    for source in sources:
        path = REPO / source
        assert path.exists(), f"COPY {source}: no such path in the repository"
        assert not excluded_from_context(source), f"COPY {source}: .dockerignore keeps it out of the build context"
        files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
        assert files, f"COPY {source} copies no Python file"
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if "__pycache__" not in relative:
                assert not excluded_from_context(relative), f"{relative} is excluded from the build context"


def test_bundles_data_and_local_state_stay_out_of_the_build_context() -> None:
    for path in (
        "artifacts/current/manifest.json",
        "data/ml-latest-small/ratings.csv",
        ".venv/bin/python",
        "tests/conftest.py",
        ".git/HEAD",
        "wren/__pycache__/cli.cpython-311.pyc",
        "bench-results/x.json",
    ):
        assert excluded_from_context(path), f"{path} would be sent to the Docker build"
    assert all("artifacts" not in source for source in builder_sources())


def test_the_image_runs_as_a_fixed_non_root_uid() -> None:
    runtime = dockerfile_stages()[-1]
    users = [ins.arguments for ins in runtime if ins.keyword == "USER"]
    assert users, "the final stage never sets USER (it would run as root)"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: use a numeric, non-zero UID (runAsNonRoot needs it)"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # Every pod runs as that UID too.
    for kustomization in APP_KUSTOMIZATIONS:
        for obj in workloads(kustomization):
            if pod_labels(obj).get("app.kubernetes.io/name") == "wren":
                assert pod_spec(obj)["securityContext"]["runAsUser"] == int(uid)


def test_the_entrypoint_is_the_packages_wren_serve_and_every_tier_is_a_valid_choice() -> None:
    runtime = dockerfile_stages()[-1]
    (entrypoint,) = [exec_form(ins.arguments) for ins in runtime if ins.keyword == "ENTRYPOINT"]
    (default_args,) = [exec_form(ins.arguments) for ins in runtime if ins.keyword == "CMD"]
    assert entrypoint == ["wren", "serve"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["wren"] == "wren.cli.main:main"
    parser = build_parser()
    assert parser.parse_args([*entrypoint[1:], *default_args]).tier == "gateway"
    for kustomization in APP_KUSTOMIZATIONS:
        for tier, deployment in tier_deployments(kustomization).items():
            container = tier_container(deployment)
            assert "command" not in container, "the image's entrypoint must run the tiers"
            assert parser.parse_args([*entrypoint[1:], *container["args"]]).tier == tier
        job = named(kustomization, "Job", "publish")
        (publisher,) = pod_spec(job)["containers"]
        command = [part.replace("$(WREN_REDIS_URL)", "redis://redis:6379/0") for part in publisher["command"]]
        assert command[0] == "wren"
        arguments = parser.parse_args(command[1:])
        assert arguments.command == "publish" and str(arguments.artifacts) == "/artifacts"
        assert "WREN_REDIS_URL" in env(publisher)


def test_the_runtime_stage_installs_the_serving_extras_only_without_a_toolchain() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build the wheel in a builder stage"
    for stage in stages:
        image = stage[0].arguments.split()[0]
        if image.startswith("${"):
            (default,) = re.findall(r"ARG PYTHON_IMAGE=(\S+)", DOCKERFILE.read_text())
            image = default
        assert ":" in image and not image.endswith(":latest"), f"FROM {image}: pin a tag"
    runtime = " ".join(f"{ins.keyword} {ins.arguments}" for ins in stages[-1])
    assert '"wren[serve]"' in runtime and "--no-index" in runtime
    for forbidden in ("apt-get", "build-essential", "gcc", "[train]", "[dev]", "torch", "COPY "):
        assert forbidden not in runtime, f"the serving image must not contain {forbidden!r}"


def test_the_build_context_makes_a_wheel_with_the_console_script_and_every_package(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for source in builder_sources():
        path = REPO / source
        if path.is_file():
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / source)
        else:
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("wren-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert re.search(r"^wren\s*=\s*wren\.cli\.main:main$", entry_points, re.MULTILINE)
    for module in (
        "wren/cli/main.py",
        "wren/v1/gateway_pb2.py",
        "wren/v1/feature_pb2_grpc.py",
        "services/common/server.py",
        "wren/core/bundle.py",
        *(f"services/{tier}/main.py" for tier in TIERS),
    ):
        assert module in names, f"the wheel lacks {module}"
    assert "Provides-Extra: serve" in metadata


def test_serving_and_publishing_import_nothing_from_the_training_extras() -> None:
    blocked = ("torch", "pandas", "sklearn", "gensim", "onnx", "onnxscript", "matplotlib", "tqdm", "pytest")
    program = f"""
import importlib, importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("not in the serving image: " + name)
sys.meta_path.insert(0, Blocked())
import wren.cli.main
for module in ("services.feature.main", "services.recall.main", "services.ranking.main", "services.gateway.main",
               "services.feature.publish", "services.feature.redis_store"):
    importlib.import_module(module)
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# -- schemas ----------------------------------------------------------------------------------------------

# prometheus-operator's CRDs are not in kubernetes-validate; these schemas cover the fields the manifests use
# (monitoring.coreos.com/v1 API reference) and reject anything else, so a typo cannot pass unnoticed.
_RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "separator": {"type": "string"},
        "targetLabel": {"type": "string"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "action": {"type": "string"},
    },
}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array"},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "PodMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PodMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "podMetricsEndpoints"],
                "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"},
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "any": {"type": "boolean"},
                            "matchNames": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "selector": _SELECTOR,
                    "podMetricsEndpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "scrapeTimeout": {"type": "string"},
                                "honorLabels": {"type": "boolean"},
                                "relabelings": {"type": "array", "items": _RELABELING},
                                "metricRelabelings": {"type": "array", "items": _RELABELING},
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["groups"],
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "interval": {"type": "string"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["expr"],
                                        "additionalProperties": False,
                                        "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                                        "properties": {
                                            "record": {"type": "string"},
                                            "alert": {"type": "string"},
                                            "expr": {"type": "string"},
                                            "for": {"type": "string"},
                                            "labels": {"type": "object"},
                                            "annotations": {"type": "object"},
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(kustomization: str, version: str) -> None:
    objects = rendered(kustomization)
    assert objects
    for obj in objects:
        where = f"{kustomization}: {obj['kind']} {obj['metadata'].get('name')}"
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            try:
                jsonschema.validate(obj, CRD_SCHEMAS[obj["kind"]])
            except jsonschema.ValidationError as error:
                pytest.fail(f"{where}: {error.message} at {list(error.absolute_path)}")
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where} (Kubernetes {version}): {error.message} at {list(error.path)}")


# -- policy -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_tiers_have_native_grpc_probes_with_distinct_services_and_a_startup_probe(kustomization: str) -> None:
    for tier, deployment in tier_deployments(kustomization).items():
        container = tier_container(deployment)
        port = int(env(container)["WREN_PORT"])
        service_name = importlib.import_module(f"services.{tier}.main").SERVICE_NAME
        readiness, liveness, startup = (container[key] for key in ("readinessProbe", "livenessProbe", "startupProbe"))
        for probe in (readiness, liveness, startup):
            assert set(probe) & {"grpc", "httpGet", "exec", "tcpSocket"} == {"grpc"}, f"{tier}: use gRPC probes"
            assert probe["grpc"]["port"] == port
        assert readiness["grpc"]["service"] == service_name, f"{tier}: readiness asks for {service_name}"
        assert liveness["grpc"].get("service", "") == "", f'{tier}: liveness asks for the server ("")'
        assert readiness["grpc"]["service"] != liveness["grpc"].get("service", "")
        load_budget = startup["failureThreshold"] * startup.get("periodSeconds", 10)
        assert load_budget >= 120, f"{tier}: the startup probe gives the bundle only {load_budget}s to load"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_container_has_requests_and_limits(kustomization: str) -> None:
    for obj in workloads(kustomization):
        for container in all_containers(obj):
            where = f"{kustomization}: {obj['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind} needs cpu and memory"
            assert cpu(resources["requests"]["cpu"]) <= cpu(resources["limits"]["cpu"]), where
            assert memory(resources["requests"]["memory"]) <= memory(resources["limits"]["memory"]), where


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_pod_and_container_is_restricted(kustomization: str) -> None:
    for obj in workloads(kustomization):
        spec = pod_spec(obj)
        pod = spec.get("securityContext", {})
        name = obj["metadata"]["name"]
        assert pod.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
        assert pod.get("runAsUser", 1) != 0 and pod.get("runAsGroup", 1) != 0, name
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp RuntimeDefault"
        assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC")), name
        assert not any("hostPath" in volume for volume in spec.get("volumes", [])), name
        assert spec.get("automountServiceAccountToken") is False, f"{name}: no API token (Wren never calls the API)"
        for container in all_containers(obj):
            where = f"{kustomization}: {name}/{container['name']}"
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
            assert context.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
            assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL"
            assert not context.get("capabilities", {}).get("add"), f"{where}: adds capabilities"
            assert not context.get("privileged"), where
            assert context.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert context.get("seccompProfile", pod.get("seccompProfile", {})).get("type") == "RuntimeDefault"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_images_are_pinned(kustomization: str) -> None:
    for obj in workloads(kustomization):
        for container in all_containers(obj):
            image = container["image"]
            name, _, tag = image.rpartition("/")[2].partition(":")
            assert "@sha256:" in image or (tag and tag != "latest"), f"{obj['metadata']['name']}: image {image!r}"
    if kustomization in APP_KUSTOMIZATIONS:
        version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
        for deployment in tier_deployments(kustomization).values():
            assert tier_container(deployment)["image"].endswith(f"wren:{version}")


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_each_tier_has_a_disruption_budget_that_never_blocks_every_eviction(kustomization: str) -> None:
    budgets = objects_of(kustomization, "PodDisruptionBudget")
    for tier, deployment in tier_deployments(kustomization).items():
        labels = pod_labels(deployment)
        (budget,) = [pdb for pdb in budgets if selector_matches(pdb["spec"]["selector"], labels)]
        (hpa,) = [
            h
            for h in objects_of(kustomization, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == tier
        ]
        fewest = hpa["spec"]["minReplicas"]
        spec = budget["spec"]
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), f"{tier}: set one of the two"
        if "maxUnavailable" in spec:
            allowed = spec["maxUnavailable"]
            allowed = -(-int(allowed[:-1]) * fewest // 100) if isinstance(allowed, str) else allowed
            assert allowed >= 1, f"{tier}: maxUnavailable {spec['maxUnavailable']} blocks every eviction"
        else:
            required = spec["minAvailable"]
            required = -(-int(required[:-1]) * fewest // 100) if isinstance(required, str) else required
            assert required < fewest, f"{tier}: minAvailable {required} with minReplicas {fewest} blocks evictions"


def recording_rule_target() -> Fraction:
    (rule,) = [r for g in rule_groups() for r in g["rules"] if r.get("record") == "wren:hpa_utilization:target"]
    return Fraction(re.fullmatch(r"vector\(([0-9.]+)\)", rule["expr"]).group(1))


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_each_tier_autoscales_on_utilization_and_p95_latency_with_scale_down_stabilization(kustomization: str) -> None:
    served = {rule["name"]["as"] for rule in adapter_rules()}
    assert served == HPA_METRICS, f"{ADAPTER_CONFIG.name} serves {served}"
    attempt_budget = {
        tier: Fraction(GatewaySettings.model_fields[f"{tier}_timeout_ms"].default, 1000)
        for tier in ("feature", "recall", "ranking")
    }
    attempt_budget["gateway"] = Fraction(GatewaySettings.model_fields["budget_ms"].default, 1000)
    deployments = tier_deployments(kustomization)
    autoscalers = objects_of(kustomization, "HorizontalPodAutoscaler")
    assert len(autoscalers) == len(TIERS)
    for hpa in autoscalers:
        spec = hpa["spec"]
        target = spec["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert "replicas" not in deployments[target["name"]]["spec"], "the HPA owns the replica count"
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        metrics = {m["pods"]["metric"]["name"]: m["pods"]["target"] for m in spec["metrics"] if m["type"] == "Pods"}
        assert set(metrics) == HPA_METRICS and len(spec["metrics"]) == 2, f"{target['name']}: {spec['metrics']}"
        assert all(t["type"] == "AverageValue" for t in metrics.values())
        assert cpu(metrics["wren_utilization_avg"]["averageValue"]) == recording_rule_target(), (
            "the HPA's utilization target and wren:hpa_utilization:target must agree"
        )
        latency_target = cpu(metrics["wren_latency_p95_seconds"]["averageValue"])
        assert 0 < latency_target < attempt_budget[target["name"]], (
            f"{target['name']}: p95 target {latency_target}s is not under the gateway's timeout for it"
        )
        down = spec["behavior"]["scaleDown"]
        assert down["stabilizationWindowSeconds"] >= 60, "scale down only on a sustained drop"


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_termination_grace_outlasts_the_prestop_sleep_plus_the_drain(kustomization: str) -> None:
    for tier, deployment in tier_deployments(kustomization).items():
        container = tier_container(deployment)
        grace = float(env(container)["WREN_GRACE_SECONDS"])
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop >= 1, f"{tier}: sleep before SIGTERM so endpoints and DNS drop the pod first"
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > pre_stop + grace, tier


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_ports_environment_and_scrape_annotations_agree(kustomization: str) -> None:
    for tier, deployment in tier_deployments(kustomization).items():
        container = tier_container(deployment)
        variables = env(container)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["grpc"] == int(variables["WREN_PORT"])
        assert ports["metrics"] == int(variables["WREN_METRICS_PORT"])
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == ports["metrics"]
        if tier == "gateway":
            assert ports["http"] == int(variables["WREN_HTTP_PORT"])
        fields = settings_class(tier).model_fields
        for name in variables:
            assert name.startswith("WREN_") and name[5:].lower() in fields, f"{tier}: {name} is not a setting"
        settings_class(tier)(
            **{name[5:].lower(): value for name, value in variables.items() if isinstance(value, str)}
            | {"artifacts": "/artifacts", "redis_url": "redis://x"}
        )


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_every_pod_mounts_the_bundle_read_only_and_waits_for_it(kustomization: str) -> None:
    claim = named(kustomization, "PersistentVolumeClaim", "wren-artifacts")
    for obj in [*tier_deployments(kustomization).values(), named(kustomization, "Job", "publish")]:
        spec = pod_spec(obj)
        (volume,) = [v for v in spec["volumes"] if v.get("persistentVolumeClaim")]
        assert volume["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"], "readOnly": True}
        for container in all_containers(obj):
            mounts = [m for m in container.get("volumeMounts", []) if m["name"] == volume["name"]]
            assert all(m.get("readOnly") is True for m in mounts), f"{obj['metadata']['name']}: mount read-only"
            if container["name"] != "wait-for-bundle":  # the others write temporary files
                assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), container["name"]
        (waiter,) = spec["initContainers"]
        (mount,) = [m for m in waiter["volumeMounts"] if m["name"] == volume["name"]]
        assert f"{mount['mountPath']}/{CURRENT}/{MANIFEST}" in waiter["command"][-1], (
            "the init container must wait for the file a service loads"
        )
        if obj["kind"] == "Deployment":
            container = tier_container(obj)
            (main_mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
            assert env(container)["WREN_ARTIFACTS"] == main_mount["mountPath"] == mount["mountPath"]
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), "writable /tmp"


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_services_and_service_accounts(kustomization: str) -> None:
    accounts = {sa["metadata"]["name"]: sa for sa in objects_of(kustomization, "ServiceAccount")}
    for obj in workloads(kustomization):
        account = pod_spec(obj)["serviceAccountName"]
        assert account in accounts and accounts[account]["automountServiceAccountToken"] is False
    for tier, deployment in tier_deployments(kustomization).items():
        assert pod_spec(deployment)["serviceAccountName"] == tier, "one ServiceAccount per tier"
        labels = pod_labels(deployment)
        selecting = [
            s
            for s in objects_of(kustomization, "Service")
            if s["spec"].get("selector") and selector_matches({"matchLabels": s["spec"]["selector"]}, labels)
        ]
        assert len(selecting) == 1, f"{tier}: {len(selecting)} Services select it"
        (service,) = selecting
        ports = {port["name"]: port for port in service["spec"]["ports"]}
        if tier == "gateway":
            assert service["spec"].get("clusterIP") != "None" and service["metadata"]["name"] == "gateway"
            assert (ports["http"]["port"], ports["grpc"]["port"]) == (8080, 50051)
        else:
            assert service["spec"]["clusterIP"] == "None", f"{tier}: the gateway needs one DNS record per pod"
            assert service["metadata"]["name"] == f"{tier}-headless"
            assert ports["grpc"]["port"] == int(env(tier_container(deployment))["WREN_PORT"])
        assert all(port["targetPort"] in ports for port in service["spec"]["ports"])


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_the_gateway_discovers_each_tier_through_its_headless_service_dns_name(kustomization: str) -> None:
    gateway = tier_container(tier_deployments(kustomization)["gateway"])
    services = {s["metadata"]["name"]: s for s in objects_of(kustomization, "Service")}
    namespaces = {obj["metadata"].get("namespace") for obj in rendered(kustomization) if obj["kind"] != "Namespace"}
    assert len(namespaces) == 1
    (namespace,) = namespaces
    for tier in ("feature", "recall", "ranking"):
        spec = env(gateway)[f"WREN_{tier.upper()}_REPLICAS"]
        source = parse_replicas(spec)
        assert isinstance(source, DnsSource), f"{tier}: {spec}"
        match = re.fullmatch(r"(?P<service>[a-z0-9-]+)\.(?P<namespace>[A-Za-z0-9-]+)\.svc\.cluster\.local", source.host)
        assert match, f"{spec}: use the Service's fully qualified name"
        service = services[match["service"]]
        assert service["spec"]["clusterIP"] == "None" and service["metadata"]["name"] == f"{tier}-headless"
        assert source.port == next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
        # The namespace-agnostic base carries a placeholder that every overlay replaces.
        assert match["namespace"] == (namespace or "NAMESPACE"), f"{spec} vs namespace {namespace}"


# -- network policy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A pod that may send or receive traffic: one of the namespace's workloads, or an outside party."""

    name: str
    pod_labels: tuple[tuple[str, str], ...]
    namespace_labels: tuple[tuple[str, str], ...] = ()
    inside: bool = True
    ip_only: bool = False  # an address outside the cluster (reachable through ipBlock or open rules only)


OUTSIDE_SOURCES = (
    Peer("client", (("app", "ingress-nginx"),), (("kubernetes.io/metadata.name", "ingress"),), inside=False),
    Peer(
        "prometheus",
        (("app.kubernetes.io/name", "prometheus"),),
        (("kubernetes.io/metadata.name", "monitoring"),),
        inside=False,
    ),
)
OUTSIDE_DESTINATIONS = (
    Peer("kube-dns", (("k8s-app", "kube-dns"),), (("kubernetes.io/metadata.name", "kube-system"),), inside=False),
    Peer("internet", (), inside=False, ip_only=True),
)
PROBED_PORTS = ((8080, "TCP"), (50051, "TCP"), (9090, "TCP"), (6379, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP"))


def peer_matches(rule_peer: dict[str, Any], peer: Peer, namespace: str) -> bool:
    if "ipBlock" in rule_peer:
        return peer.ip_only
    if peer.ip_only:
        return False
    namespace_labels = dict(peer.namespace_labels) if not peer.inside else {"kubernetes.io/metadata.name": namespace}
    if "namespaceSelector" in rule_peer:
        if not selector_matches(rule_peer["namespaceSelector"], namespace_labels):
            return False
    elif not peer.inside:
        return False
    return selector_matches(rule_peer.get("podSelector"), dict(peer.pod_labels))


def port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    if "ports" not in rule:
        return True
    return any(p.get("port", port) == port and p.get("protocol", "TCP") == protocol for p in rule["ports"])


def allows(
    policies: list[dict[str, Any]], direction: str, subject: Peer, other: Peer, port: int, protocol: str, namespace: str
) -> bool:
    """Whether the policies selecting `subject` let traffic in (Ingress, from `other`) or out (Egress, to it)."""
    selecting = [
        p
        for p in policies
        if direction in p["spec"]["policyTypes"]
        and selector_matches(p["spec"]["podSelector"], dict(subject.pod_labels))
    ]
    if not selecting:
        return True
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            if (peers is None or any(peer_matches(p, other, namespace) for p in peers)) and port_matches(
                rule, port, protocol
            ):
                return True
    return False


def peer_name(labels: dict[str, str]) -> str:
    """A Wren pod by its tier (feature, ..., publish), anything else (redis) by its name."""
    name = labels["app.kubernetes.io/name"]
    return labels["app.kubernetes.io/component"] if name == "wren" else name


def allowed_connections(kustomization: str) -> set[tuple[str, str, int, str]]:
    policies = objects_of(kustomization, "NetworkPolicy")
    namespace = policies[0]["metadata"].get("namespace", "wren")
    inside = [
        Peer(peer_name(pod_labels(obj)), tuple(sorted(pod_labels(obj).items()))) for obj in workloads(kustomization)
    ]
    connections = set()
    for source in (*inside, *OUTSIDE_SOURCES):
        for destination in (*inside, *OUTSIDE_DESTINATIONS):
            if source.name == destination.name or not (source.inside or destination.inside):
                continue
            for port, protocol in PROBED_PORTS:
                out_ok = not source.inside or allows(policies, "Egress", source, destination, port, protocol, namespace)
                in_ok = not destination.inside or allows(
                    policies, "Ingress", destination, source, port, protocol, namespace
                )
                if out_ok and in_ok:
                    connections.add((source.name, destination.name, port, protocol))
    return connections


@pytest.mark.parametrize("kustomization", APP_KUSTOMIZATIONS)
def test_network_policy_denies_by_default_and_allows_exactly_the_call_graph(kustomization: str) -> None:
    policies = objects_of(kustomization, "NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert default_deny, "no default-deny NetworkPolicy"
    expected = set()
    for source in ("client", "prometheus"):
        expected |= {(source, "gateway", 8080, "TCP"), (source, "gateway", 50051, "TCP")}
    expected |= {("prometheus", tier, 9090, "TCP") for tier in (*TIERS, "nearline")}
    expected |= {("gateway", tier, 50051, "TCP") for tier in ("feature", "recall", "ranking")}
    redis_clients = ("feature", "publish", "nearline", "gateway", "recall")
    expected |= {(caller, "kube-dns", 53, protocol) for caller in redis_clients for protocol in ("UDP", "TCP")}
    has_redis = any(obj["metadata"]["name"] == "redis" for obj in objects_of(kustomization, "StatefulSet"))
    redis_destinations = ("redis",) if has_redis else tuple(peer.name for peer in OUTSIDE_DESTINATIONS)
    expected |= {(caller, redis, 6379, "TCP") for caller in redis_clients for redis in redis_destinations}
    allowed = allowed_connections(kustomization)
    assert not allowed - expected, f"allowed beyond the call graph: {sorted(allowed - expected)}"
    assert not expected - allowed, f"the call graph needs: {sorted(expected - allowed)}"


# -- overlays ---------------------------------------------------------------------------------------------


def test_dev_runs_one_replica_per_tier_against_an_in_cluster_redis_with_aof() -> None:
    for hpa in objects_of("overlays/dev", "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] == 1
    redis = named("overlays/dev", "StatefulSet", "redis")
    (container,) = pod_spec(redis)["containers"]
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes" and "--appendfsync" in args
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    data_dir = args[args.index("--dir") + 1]
    assert any(m["name"] == claim["metadata"]["name"] and m["mountPath"] == data_dir for m in container["volumeMounts"])
    service = named("overlays/dev", "Service", redis["spec"]["serviceName"])
    assert selector_matches({"matchLabels": service["spec"]["selector"]}, pod_labels(redis))
    (secret,) = objects_of("overlays/dev", "Secret")
    url = base64.b64decode(secret["data"]["url"]).decode() if "data" in secret else secret["stringData"]["url"]
    assert re.fullmatch(rf"redis://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/0", url)
    feature = tier_container(tier_deployments("overlays/dev")["feature"])
    assert env(feature)["WREN_BACKEND"] == "redis"
    assert env(feature)["WREN_REDIS_URL"]["secretKeyRef"]["name"] == secret["metadata"]["name"]


def test_prod_scales_wider_with_larger_requests_and_an_external_redis_from_a_secret() -> None:
    assert not objects_of("overlays/prod", "StatefulSet") and not objects_of("overlays/prod", "Secret")
    dev_hpas = {h["metadata"]["name"]: h["spec"] for h in objects_of("overlays/dev", "HorizontalPodAutoscaler")}
    for hpa in objects_of("overlays/prod", "HorizontalPodAutoscaler"):
        spec, name = hpa["spec"], hpa["metadata"]["name"]
        assert spec["minReplicas"] >= 3 > dev_hpas[name]["minReplicas"]
        assert spec["maxReplicas"] > dev_hpas[name]["maxReplicas"]
    base, prod = tier_deployments("base"), tier_deployments("overlays/prod")
    for tier in TIERS:
        base_requests = tier_container(base[tier])["resources"]["requests"]
        prod_requests = tier_container(prod[tier])["resources"]["requests"]
        assert cpu(prod_requests["cpu"]) > cpu(base_requests["cpu"])
        assert memory(prod_requests["memory"]) > memory(base_requests["memory"])
    feature = env(tier_container(prod["feature"]))
    assert feature["WREN_BACKEND"] == "redis"
    assert feature["WREN_REDIS_URL"] == {"secretKeyRef": {"name": "wren-redis", "key": "url"}}
    claim = named("overlays/prod", "PersistentVolumeClaim", "wren-artifacts")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "pods on every node share the bundle"


@pytest.mark.parametrize("kustomization", ("overlays/dev", "overlays/prod"))
def test_overlays_deploy_into_a_restricted_namespace(kustomization: str) -> None:
    (namespace,) = objects_of(kustomization, "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in rendered(kustomization):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace["metadata"]["name"]


# -- monitoring -------------------------------------------------------------------------------------------


def test_the_pod_monitor_scrapes_every_tiers_metrics_port() -> None:
    (monitor,) = objects_of("monitoring", "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    for kustomization in APP_KUSTOMIZATIONS:
        for tier, deployment in tier_deployments(kustomization).items():
            assert selector_matches(monitor["spec"]["selector"], pod_labels(deployment)), tier
            ports = {port["name"]: port["containerPort"] for port in tier_container(deployment)["ports"]}
            assert endpoint["port"] in ports
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/path"] == endpoint["path"]


def test_the_prometheus_rule_resource_carries_exactly_the_rule_files() -> None:
    (rule,) = objects_of("monitoring", "PrometheusRule")
    expected = prometheus_rule_object()
    assert rule["spec"] == expected["spec"], "out of date: run `python -m tests.support.deploy_helpers`"


def test_the_adapter_config_map_holds_its_rules_under_config_yaml() -> None:
    (config_map,) = objects_of("monitoring", "ConfigMap")
    rules = yaml.safe_load(config_map["data"]["config.yaml"])["rules"]
    for rule in rules:
        assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        assert re.fullmatch(r"\w+\{namespace!=\"\",pod!=\"\"\}", rule["seriesQuery"]), rule["seriesQuery"]
        assert "<<.LabelMatchers>>" in rule["metricsQuery"] and "<<.GroupBy>>" in rule["metricsQuery"]


def test_the_bundle_loader_writes_to_the_volume_the_tiers_read() -> None:
    (loader,) = objects_of("tools/bundle-loader", "Pod")
    (volume,) = pod_spec(loader)["volumes"]
    claim = named("base", "PersistentVolumeClaim", "wren-artifacts")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert not volume["persistentVolumeClaim"].get("readOnly")
    (container,) = pod_spec(loader)["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == env(tier_container(tier_deployments("base")["recall"]))["WREN_ARTIFACTS"]
    assert not mount.get("readOnly")
    assert pod_spec(loader)["activeDeadlineSeconds"] <= 3600


# -- the deployment guide ---------------------------------------------------------------------------------

DEPLOY_DOC = REPO / "docs" / "deploy.md"


def test_the_guide_names_only_paths_and_kustomizations_that_exist() -> None:
    text = DEPLOY_DOC.read_text()
    for path in re.findall(r"`((?:deploy|docs|tests)/[^`\s]*|Dockerfile|\.dockerignore)`", text):
        assert (REPO / path.rstrip("/")).exists(), f"docs/deploy.md names {path}, which does not exist"
    for path in re.findall(r"apply -k (deploy/k8s/\S+)", text):
        assert path.removeprefix("deploy/k8s/") in KUSTOMIZATIONS, path
    namespaces = {objects_of(o, "Namespace")[0]["metadata"]["name"] for o in ("overlays/dev", "overlays/prod")}
    assert set(re.findall(r"NS=([\w-]+)", text)) <= namespaces
    (config_map,) = [d for d in yaml.safe_load_all(ADAPTER_CONFIG.read_text()) if d]
    assert f"rules.existing={config_map['metadata']['name']}" in text


def test_the_guide_explains_every_alert_and_states_the_hpa_targets_in_force() -> None:
    text = DEPLOY_DOC.read_text()
    documented = set(re.findall(r"^\| `(Wren\w+)`", text, re.MULTILINE))
    defined = {rule["alert"] for group in rule_groups() for rule in group["rules"] if "alert" in rule}
    assert documented == defined, f"alerts table vs rules: {sorted(documented ^ defined)}"
    targets = {
        h["metadata"]["name"]: {
            m["pods"]["metric"]["name"]: cpu(m["pods"]["target"]["averageValue"]) for m in h["spec"]["metrics"]
        }
        for h in objects_of("base", "HorizontalPodAutoscaler")
    }
    assert f"| utilization | {float(recording_rule_target())} |" in text
    for tiers, milliseconds in re.findall(r"^\| p95 ([\w, ]+) \| (\d+) ms \|", text, re.MULTILINE):
        for tier in tiers.split(", "):
            assert targets[tier]["wren_latency_p95_seconds"] == Fraction(int(milliseconds), 1000), tier
    assert len(re.findall(r"^\| p95 ", text, re.MULTILINE)) == 3
