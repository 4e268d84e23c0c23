"""`rolesync ingest` as a real process: JSON log lines, a queued webhook, graceful exit on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.ingest.servers import JwksEndpoint
from tests.ingest.tokens import Signer, claims
from tests.procs import Proc, free_port, http_ok, rolesync, wait_until

pytestmark = pytest.mark.integration  # a `rolesync ingest` process


def test_rolesync_ingest_serves_logs_json_and_stops_gracefully(
    tmp_path: Path, redis_url: str, jwks_endpoint: JwksEndpoint, signer: Signer
) -> None:
    port, metrics_port = free_port(), free_port()
    env = {"REDIS_URL": redis_url, "KINDE_DOMAIN": "https://tenant.invalid", "KINDE_JWKS_URL": jwks_endpoint.url,
           "ROLESYNC_INSECURE_LOCAL": "1"}  # fmt: skip
    argv = rolesync("ingest", "--port", str(port), "--metrics-port", str(metrics_port))
    proc = Proc("ingest", argv, env, tmp_path)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), timeout=20, what="ingest ready")
        event = claims()
        token = signer.sign(event)
        response = httpx.post(f"http://127.0.0.1:{port}/webhooks/kinde", content=token, timeout=5)
        assert response.json() == {"status": "queued"}
        # /metrics is off the public port, on its own (which only the monitoring namespace reaches)
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert re.search(r"^rolesync_ingest_webhooks_total{.*outcome=\"queued\".*} 1.0$", scraped, re.M)
    finally:
        proc.signal(signal.SIGTERM)
        exit_code = proc.popen.wait(timeout=15)
        output = proc.output()
        proc.stop()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the status is -SIGTERM or 0
    assert exit_code in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line["event"] == "Application shutdown complete." for line in lines)
    [logged] = [line for line in lines if line.get("event") == "webhook_enqueued"]
    assert logged["event_id"] == event["event_id"]
    assert logged["outcome"] == "queued"
    assert token.split(".")[2] not in output


def test_the_ingest_never_imports_the_worker() -> None:
    code = "import sys, ingest.app, ingest.server; print(sorted(m for m in sys.modules if m.split('.')[0] == 'worker'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
