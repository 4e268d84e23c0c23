"""The Express + `@kinde/webhooks` peer (bench/peers/express-kinde) as a child process.

`npm ci` installs its locked dependencies on first use, so a fresh clone needs only node and npm
on PATH. Without them the peer is skipped and the caller says so next to the figures.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from launch.processes import Child, free_port, wait_until

PEER_DIR = Path(__file__).resolve().parent / "peers" / "express-kinde"


def node_version() -> str | None:
    """`v20.x` when node and npm are both on PATH, else None (the peer cannot run)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def ensure_installed() -> None:
    if (PEER_DIR / "node_modules" / "@kinde" / "webhooks").is_dir():
        return
    argv = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(argv, cwd=PEER_DIR, check=True, stdout=subprocess.DEVNULL, timeout=300)


@contextmanager
def express_peer(kinde_domain: str, log_dir: Path) -> Iterator[int]:
    """Serve the peer on a free port, verifying against `kinde_domain`'s JWKS; yields the port."""
    ensure_installed()
    port = free_port()
    env = {"KINDE_DOMAIN": kinde_domain, "PORT": str(port), "NODE_ENV": "production"}
    child = Child("express-kinde", ["node", "server.js"], env, log_dir, cwd=PEER_DIR)
    try:
        wait_until(lambda: _answers(port) or not child.alive(), timeout=20, what="express peer to start")
        if not child.alive():
            raise RuntimeError(f"express peer exited: {child.output()[-500:]}")
        yield port
    finally:
        child.stop(timeout=5)


def _answers(port: int) -> bool:
    try:
        httpx.post(f"http://127.0.0.1:{port}/webhooks/kinde", content=b"warmup", timeout=1)
    except httpx.HTTPError:
        return False
    return True
