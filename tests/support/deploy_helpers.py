"""Shared by the deployment tests: rendering kustomizations, reading rules/dashboard/adapter PromQL, promtool.

`python -m tests.support.deploy_helpers` rewrites deploy/k8s/monitoring/prometheus-rules.yaml from the rule files.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.tiers import DEPLOYED_TIERS

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULE_FILES = (PROMETHEUS_DIR / "rules" / "wren-recording.yml", PROMETHEUS_DIR / "rules" / "wren-alerts.yml")
PROMETHEUS_RULE_MANIFEST = K8S / "monitoring" / "prometheus-rules.yaml"
ADAPTER_CONFIG = K8S / "monitoring" / "adapter-config.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "wren-dashboard.json"

TIERS = DEPLOYED_TIERS
# Kustomizations that render a deployable set of objects (base alone is namespace-agnostic).
KUSTOMIZATIONS = ("base", "overlays/dev", "overlays/prod", "monitoring", "tools/bundle-loader", "tools/retrain")


def require_tool(name: str) -> str:
    """The executable's path; fails (never skips) the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        hint = {
            "kubectl": "install kubectl (v1.27+, with its built-in kustomize)",
            "promtool": "run `make install` (it installs Debian's prometheus package)",
            "prometheus": "run `make install` (it installs Debian's prometheus package)",
        }.get(name, "install it")
        pytest.fail(f"`{name}` is not on PATH: {hint}")
    return path


def kustomize(relative: str) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize deploy/k8s/<relative>` renders."""
    kubectl = require_tool("kubectl")
    result = subprocess.run([kubectl, "kustomize", str(K8S / relative)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {relative} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# -- PromQL sources ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it comes from (for error messages)."""

    source: str
    expr: str


def rule_groups() -> list[dict[str, Any]]:
    return [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]


def recording_rule_names() -> set[str]:
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


def rule_expressions() -> list[Expression]:
    return [
        Expression(f"{group['name']}/{rule.get('record') or rule.get('alert')}", rule["expr"])
        for group in rule_groups()
        for rule in group["rules"]
    ]


GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "${namespace}": ".*",
    "$namespace": ".*",
}


def substitute_grafana_variables(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_expressions() -> list[Expression]:
    """Every panel query, with Grafana's variables replaced by values a query can run with."""
    return [
        Expression(f"panel {panel['title']!r} {target['refId']}", substitute_grafana_variables(target["expr"]))
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def adapter_rules() -> list[dict[str, Any]]:
    (config_map,) = [doc for doc in yaml.safe_load_all(ADAPTER_CONFIG.read_text()) if doc]
    return yaml.safe_load(config_map["data"]["config.yaml"])["rules"]


def adapter_expressions(
    group_by: str = "namespace, pod",
    matchers: str = 'namespace="wren", pod=~"a|b"',
) -> list[Expression]:
    """The adapter's metricsQuery templates with <<.GroupBy>> and <<.LabelMatchers>> filled in the way
    prometheus-adapter fills them (a label list, and matchers without braces)."""
    expressions = []
    for rule in adapter_rules():
        query = rule["metricsQuery"].replace("<<.GroupBy>>", group_by).replace("<<.LabelMatchers>>", matchers)
        if "<<" in query:
            raise AssertionError(f"unsupported placeholder left in {rule['name']['as']}: {query}")
        expressions.append(Expression(f"adapter {rule['name']['as']}", query))
    return expressions


# -- metric names -----------------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABELS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|\d[\w.]*")
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, aggregations,
    keywords, label names (in braces or groupings), strings, numbers or durations."""
    text = _STRING.sub('""', expr)
    text = _LABELS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(r"\1()", text)
    names = set()
    for match in _TOKEN.finditer(text):
        word = match.group(0)
        if word[0].isdigit() or word.lower() in _KEYWORDS:
            continue
        following = text[match.end() :].lstrip()
        if following.startswith("(") or re.match(r"(by|without)\b", following):
            continue  # a function or an aggregation
        names.add(word)
    return names


def exported_metric_names(exposition: str) -> set[str]:
    """Every series name a /metrics page exposes or declares (a labelled counter that has not counted
    yet is declared by its # TYPE line only)."""
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type in ("histogram", "summary"):
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


# -- promtool ---------------------------------------------------------------------------------------------


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def promtool_parse_errors(expressions: list[Expression]) -> str:
    """promtool's complaints about the expressions ("" when every one parses): each becomes a recording
    rule of a throwaway rule file, which `promtool check rules` parses."""
    rules = [{"record": f"parse_check_{index}", "expr": item.expr} for index, item in enumerate(expressions)]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "expressions.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "parse-check", "rules": rules}]}))
        result = promtool("check", "rules", path)
    if result.returncode == 0:
        return ""
    output = result.stdout + result.stderr
    for index, item in enumerate(expressions):
        output = output.replace(f'"parse_check_{index}"', f"{item.source!r}")
    return output


# -- the PrometheusRule CR, generated from the rule files ---------------------------------------------------

PROMETHEUS_RULE_HEADER = """\
# Generated from deploy/prometheus/rules/*.yml by `python -m tests.support.deploy_helpers`; edit those files, not
# this one (tests/deploy/test_prometheus_rules.py fails when the two disagree). For prometheus-operator.
"""


def prometheus_rule_object() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "wren", "labels": {"app.kubernetes.io/part-of": "wren"}},
        "spec": {"groups": rule_groups()},
    }


class _LiteralDumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def render_prometheus_rule() -> str:
    return PROMETHEUS_RULE_HEADER + yaml.dump(
        prometheus_rule_object(), Dumper=_LiteralDumper, sort_keys=False, width=200
    )


if __name__ == "__main__":
    PROMETHEUS_RULE_MANIFEST.write_text(render_prometheus_rule())
    print(f"wrote {PROMETHEUS_RULE_MANIFEST.relative_to(REPO)}")
