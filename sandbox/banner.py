"""What `rolesync sandbox` prints at start: its public test credentials, the env that points rolesync at it, and
its control routes (a newcomer's first hour, issue 22)."""

from __future__ import annotations

from sandbox import control
from sandbox.config import SandboxConfig


def control_routes() -> list[tuple[str, str]]:
    """(methods, path) of every control route, in the order sandbox/control.py registers them."""
    out = []
    for route in control.routes:
        methods = sorted((route.methods or set()) - {"HEAD"})
        out.append((",".join(methods), route.path))
    return out


def banner(config: SandboxConfig) -> str:
    lines = [
        f"rolesync sandbox on {config.base_url} (a local Kinde simulator; docs/sandbox.md)",
        f"  M2M client id:     {config.client_id}",
        f"  M2M client secret: {config.client_secret}   (public test value)",
        "",
        "Point the service (ingest, worker, api, CLI) at it:",
        f"  export KINDE_DOMAIN={config.base_url}",
        f"  export KINDE_CLIENT_ID={config.client_id}",
        f"  export KINDE_CLIENT_SECRET={config.client_secret}",
        "  export ROLESYNC_INSECURE_LOCAL=1   # rolesync refuses http/loopback Kinde URLs without it",
        "",
        "Control API (no token needed):",
    ]
    lines += [f"  {methods:<11} {config.base_url}{path}" for methods, path in control_routes()]
    return "\n".join(lines) + "\n"
