"""The Grafana dashboard (deploy/grafana/rolesync.json) charts only what the service exports: every expression's
series is declared in the code (a Counter, Gauge, Histogram or collector family), named as Prometheus sees it."""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "rolesync.json"
SERVICE = ("common", "api", "ingest", "worker", "ops")
KINDS = {"Counter", "Gauge", "Histogram", "Summary", "GaugeMetricFamily", "CounterMetricFamily"}
PROMETHEUS_OWN = {"up"}  # Prometheus's scrape series, not ours
SERIES = re.compile(r"\b(rolesync_[a-z0-9_]+|up)\b(?!\s*\()")


def declared_names(source: str) -> dict[str, str]:
    """Metric name → kind for every metric constructor in `source` whose name is a literal or a module constant."""
    tree = ast.parse(source)
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                 for t in n.targets if isinstance(t, ast.Name)}  # fmt: skip
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in KINDS and node.args:
            first = node.args[0]
            name = first.value if isinstance(first, ast.Constant) else constants.get(getattr(first, "id", ""))
            if isinstance(name, str):
                found[name] = node.func.id  # type: ignore[attr-defined]
    return found


@cache
def declarations() -> dict[str, str]:
    """Every metric the service declares, name → kind."""
    found: dict[str, str] = {}
    for package in SERVICE:
        for path in (ROOT / package).rglob("*.py"):
            found.update(declared_names(path.read_text(encoding="utf-8")))
    return found


def exported_series() -> set[str]:
    """The series names a scrape shows: prometheus-client's suffixes for each kind."""
    return {series for name, kind in declarations().items() for series in _suffixed(name, kind)}


def _suffixed(name: str, kind: str) -> set[str]:
    if kind.startswith("Counter"):
        base = name.removesuffix("_total")
        return {f"{base}_total", f"{base}_created"}
    if kind in ("Histogram", "Summary"):
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
    return {name}


def expressions(dashboard: dict[str, Any]) -> list[str]:
    panels = [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def unexported(expr: str, exported: set[str]) -> set[str]:
    named = {m.group(1) for m in SERIES.finditer(re.sub(r"\{[^}]*\}", "", expr))}
    return named - exported - PROMETHEUS_OWN if named else {f"no series in {expr!r}"}


def test_the_collector_finds_each_kind_of_declaration() -> None:
    exported = exported_series()
    assert {"rolesync_ingest_webhooks_total", "rolesync_kinde_calls_total"} <= exported  # counters, either spelling
    assert "rolesync_queue_lag_seconds_bucket" in exported  # a histogram
    assert "rolesync_reconcile_drift_customers" in exported  # a gauge
    assert "rolesync_queue_backlog_messages" in exported  # a collector family named by a constant


def test_a_misspelt_or_missing_series_is_caught() -> None:
    exported = exported_series()
    assert unexported("sum(rate(rolesync_ingest_webhook_total[5m]))", exported) == {"rolesync_ingest_webhook_total"}
    assert unexported("rate(rolesync_queue_lag_seconds[5m])", exported) == {"rolesync_queue_lag_seconds"}
    assert unexported("vector(1)", exported) == {"no series in 'vector(1)'"}


def test_every_dashboard_expression_names_an_exported_series() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = expressions(dashboard)
    assert len(exprs) >= 20
    missing = {expr: unexported(expr, exported_series()) for expr in exprs}
    assert {expr: names for expr, names in missing.items() if names} == {}


def test_every_exported_rolesync_metric_is_on_the_dashboard() -> None:
    exprs = " ".join(expressions(json.loads(DASHBOARD.read_text(encoding="utf-8"))))
    charted = {m.group(1) for m in SERIES.finditer(exprs)}
    bases = {re.sub(r"_(total|bucket|sum|count|created)$", "", s) for s in charted}
    declared = {re.sub(r"_total$", "", name) for name in declarations()}
    assert declared - bases == set()
