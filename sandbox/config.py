"""The options a sandbox runs with: what `rolesync sandbox` passes to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's documented, public test credential
# The plans file that fits the sandbox's seeded tenant (its plans and its roles). The limit is the demo's
# plan-selection step: an org of two cannot move to the one-seat plan (README, "The plan-selection guard").
PLANS_TOML = (
    '[plans]\nplan_subscriber = ["role_subscriber"]\nplan_client = ["role_client"]\n'
    "\n[limits.plan_subscriber]\norg_members = 1\n"
    '\n[guard]\nplan_names = { plan_subscriber = "Subscriber" }\n'
)


def rolesync_env(redis_url: str, sandbox_url: str, state_dir: Path, plans_toml: str = PLANS_TOML) -> dict[str, str]:
    """The environment that points rolesync's ingest, worker and CLI at a sandbox; writes its plans file."""
    plans = state_dir / "plans.toml"
    plans.parent.mkdir(parents=True, exist_ok=True)
    plans.write_text(plans_toml)
    return {
        "REDIS_URL": redis_url,
        "KINDE_DOMAIN": sandbox_url,
        "KINDE_CLIENT_ID": DEFAULT_CLIENT_ID,
        "KINDE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "ROLESYNC_PLANS": str(plans.resolve()),
        # The sandbox serves http on loopback: allowed only when said so (common/infra/url_policy.py).
        "ROLESYNC_INSECURE_LOCAL": "1",
    }


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
