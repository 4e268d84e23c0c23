"""The options a sandbox runs with: what `rolesync sandbox` passes to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's documented, public test credential


@dataclass(frozen=True)
class SandboxConfig:
    base_url: str = "http://127.0.0.1:8700"
    webhook_url: str = ""
    seed_file: Path | None = None
    time_scale: float = 1.0
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    token_lifetime_s: int = 86400
    variant: str = "mix"
    random_seed: int = 0
    delivery_timeout_s: float = 10.0
    snapshot_file: Path | None = None
    rate_limit: float = 0.0  # requests/s over /api/v1; 0 = the seed file's, else unlimited
    rate_burst: int = 0

    @property
    def audience(self) -> str:
        return f"{self.base_url}/api"
