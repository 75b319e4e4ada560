"""Kubernetes manifests, alert rules and dashboards: schema, policy and promtool checks."""
