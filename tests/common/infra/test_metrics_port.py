"""`/metrics` can leave the public port: the apps drop the route, and its own port serves the same registry."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from api.app import create_app as create_api
from common.infra.metrics_port import serve_metrics
from common.settings import Settings
from ingest.app import create_app as create_ingest
from launch.processes import free_port


def paths(app: object) -> set[str]:
    return {str(getattr(route, "path", "")) for route in getattr(app, "routes", [])}


@pytest.mark.parametrize("create", [create_ingest, create_api], ids=["ingest", "api"])
def test_the_public_app_serves_metrics_only_when_asked(create: object) -> None:
    assert callable(create)
    assert "/metrics" in paths(create(Settings()))
    assert "/metrics" not in paths(create(Settings(), metrics_route=False))


def test_the_metrics_port_serves_the_registry() -> None:
    registry = CollectorRegistry()
    Counter("rolesync_test_things", "things", registry=registry).inc(3)
    port = free_port()
    serve_metrics(registry, host="127.0.0.1", port=port)
    assert "rolesync_test_things_total 3.0" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
