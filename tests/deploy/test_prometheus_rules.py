"""Prometheus rules, their promtool unit tests, the local scrape config, the Grafana dashboard and the
prometheus-adapter queries: everything parses, and every rule is exercised by a unit test."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.utils import floatToGoString

from services.common.metrics import LATENCY_BUCKETS
from tests.support.deploy_helpers import (
    PROMETHEUS_DIR,
    PROMETHEUS_RULE_MANIFEST,
    RULE_FILES,
    TIERS,
    Expression,
    adapter_expressions,
    dashboard,
    dashboard_expressions,
    metric_names,
    promtool,
    promtool_parse_errors,
    recording_rule_names,
    render_prometheus_rule,
    rule_expressions,
    rule_groups,
)

UNIT_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def alert_names() -> set[str]:
    return {rule["alert"] for group in rule_groups() for rule in group["rules"] if "alert" in rule}


def unit_test_groups() -> list[dict]:
    return [group for path in UNIT_TESTS for group in yaml.safe_load(path.read_text())["tests"]]


def test_promtool_checks_the_rule_files() -> None:
    result = promtool("check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS, "no promtool unit tests under deploy/prometheus/tests"
    result = promtool("test", "rules", *UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_cover_every_recording_rule() -> None:
    queried = set()
    for group in unit_test_groups():
        for case in group.get("promql_expr_test", []):
            queried |= metric_names(case["expr"])
    missing = recording_rule_names() - queried
    assert not missing, f"recording rules no promtool unit test queries: {sorted(missing)}"


def test_the_unit_tests_see_every_alert_fire_and_most_stay_quiet() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for group in unit_test_groups():
        for case in group.get("alert_rule_test", []):
            (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alert_names() <= fired, f"alerts never seen firing: {sorted(alert_names() - fired)}"
    assert alert_names() <= quiet, f"alerts never seen staying quiet: {sorted(alert_names() - quiet)}"


def test_every_promql_expression_parses() -> None:
    expressions = rule_expressions() + dashboard_expressions() + adapter_expressions()
    assert len(expressions) > 40
    errors = promtool_parse_errors(expressions)
    assert not errors, errors


def test_every_recording_rule_an_expression_uses_is_defined() -> None:
    defined = recording_rule_names()
    for item in rule_expressions() + dashboard_expressions() + adapter_expressions():
        for name in metric_names(item.expr):
            if ":" in name:
                assert name in defined, f"{item.source} uses {name}, which no rule records"


def test_metric_names_are_read_from_selectors_only() -> None:
    expr = (
        'sum by (namespace, service) (rate(wren_busy_seconds_total{service="gateway", le="0.5"}[1m] offset 5m))'
        " / on (service) group_left (version) max without (instance) (wren_capacity) > bool 1e3"
        ' or label_replace(absent(up{job="x"}), "dst", "wren_fake_total", "", "") and histogram_quantile(0.9,'
        " x:y:rate5m)"
    )
    assert metric_names(expr) == {"wren_busy_seconds_total", "wren_capacity", "up", "x:y:rate5m"}


def test_slo_thresholds_are_latency_bucket_boundaries() -> None:
    boundaries = {floatToGoString(b) for b in LATENCY_BUCKETS} | {"+Inf"}  # as the exposition writes `le`
    for item in rule_expressions():
        for value in re.findall(r'le="([^"]+)"', item.expr):
            assert value in boundaries, f'{item.source}: le="{value}" is not a bucket boundary of the histograms'


def test_the_local_scrape_config_is_valid_and_uses_the_stacks_file_sd_targets() -> None:
    config_path = PROMETHEUS_DIR / "prometheus.yml"
    result = promtool("check", "config", config_path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(config_path.read_text())
    (job,) = config["scrape_configs"]
    (sd,) = job["file_sd_configs"]
    (targets,) = sd["files"]
    assert (config_path.parent / targets).resolve() == (
        PROMETHEUS_DIR.parents[1] / "artifacts" / ".wren-up" / "prometheus_targets.json"
    )
    assert {"action": "labeldrop", "regex": "tier"} in job["relabel_configs"]
    rule_globs = [path for pattern in config["rule_files"] for path in config_path.parent.glob(pattern)]
    assert sorted(rule_globs) == sorted(RULE_FILES)


def test_the_prometheus_rule_manifest_is_generated_from_the_rule_files() -> None:
    assert yaml.safe_load(PROMETHEUS_RULE_MANIFEST.read_text()) == yaml.safe_load(render_prometheus_rule()), (
        "deploy/k8s/monitoring/prometheus-rules.yaml is stale: run `python -m tests.support.deploy_helpers`"
    )


# -- the dashboard ----------------------------------------------------------------------------------------


def test_dashboard_panels_are_well_formed_and_do_not_overlap() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert panel["targets"] and len(set(ref_ids)) == len(ref_ids), panel["title"]
        for target in panel["targets"]:
            if "$namespace" not in target["expr"] and "wren:hpa_utilization:target" not in target["expr"]:
                raise AssertionError(f'{panel["title"]!r}: filter by namespace=~"$namespace"')


def test_dashboard_shows_what_operators_need() -> None:
    used: set[str] = set()
    for item in dashboard_expressions():
        used |= metric_names(item.expr)
    wanted = {
        "request rate": "service:wren_requests:rate1m",
        "latency percentiles": {
            "service:wren_latency_seconds:p50_1m",
            "service:wren_latency_seconds:p95_1m",
            "service:wren_latency_seconds:p99_1m",
        },
        "errors": "service:wren_errors:ratio_rate5m",
        "degraded responses": {
            "namespace:wren_degraded_responses:ratio_rate1m",
            "reason:wren_degraded_responses:rate1m",
        },
        "cache hit ratios": "cache:wren_cache_hits:ratio_rate1m",
        "ring membership": {"wren_ring_members", "wren_ring_routable"},
        "ejections": "wren_upstream_ejections_total",
        "utilization vs HPA target": {"service:wren_utilization:avg1m", "wren:hpa_utilization:target"},
        "desired replicas": "service:wren_replicas:desired",
        "model versions": {"wren_model_info", "wren_bundle_info"},
    }
    for topic, names in wanted.items():
        names = {names} if isinstance(names, str) else names
        assert names <= used, f"the dashboard lacks {topic}: {sorted(names - used)}"
    tables = [p for p in dashboard()["panels"] if p["type"] == "table"]
    assert {"wren_model_info", "wren_bundle_info"} <= {
        n for p in tables for t in p["targets"] for n in metric_names(t["expr"])
    }


def test_per_tier_panels_group_by_the_tier_label() -> None:
    for item in dashboard_expressions():
        if item.expr.startswith("service:"):
            assert "{{service}}" in _legend(item), f"{item.source}: show the tier in the legend"


def _legend(item: Expression) -> str:
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            if f"panel {panel['title']!r} {target['refId']}" == item.source:
                return target.get("legendFormat", "")
    raise KeyError(item.source)


def test_tier_list_matches_the_alerts_absent_checks() -> None:
    (rule,) = [r for g in rule_groups() for r in g["rules"] if r.get("alert") == "WrenTierNoReadyReplicas"]
    assert set(re.findall(r'absent\(wren_ready\{service="(\w+)"\}\)', rule["expr"])) == set(TIERS)


def test_rule_files_live_where_the_configs_expect_them() -> None:
    for path in RULE_FILES:
        assert path.is_file() and path.parent == PROMETHEUS_DIR / "rules"
    for unit_test in UNIT_TESTS:
        listed = yaml.safe_load(unit_test.read_text())["rule_files"]
        assert {(unit_test.parent / Path(p)).resolve() for p in listed} <= set(RULE_FILES)
