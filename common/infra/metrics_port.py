"""`/metrics` on a port of its own, so the public port (webhooks, the read API) does not serve it.

Prometheus' plain WSGI exposition in a daemon thread: it answers while the process runs and needs no
part of the app's event loop or signal handling. A NetworkPolicy then lets only the monitoring
namespace reach that port (deploy/k8s/base/network-policies.yaml).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server


def serve_metrics(registry: CollectorRegistry, *, host: str, port: int) -> None:
    start_http_server(port, addr=host, registry=registry)
