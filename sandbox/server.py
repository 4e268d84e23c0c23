"""`rolesync sandbox`: serve the sandbox app with uvicorn, logging JSON like the rest of the service."""

from __future__ import annotations

import sys
from pathlib import Path

import structlog
import uvicorn

from common.errors import ConfigError
from common.infra.logs import configure_logging
from sandbox.app import create_app
from sandbox.banner import banner as startup_banner
from sandbox.config import SandboxConfig


def serve(
    *,
    host: str,
    port: int,
    webhook_url: str,
    seed_file: Path | None,
    time_scale: float,
    client_id: str,
    client_secret: str,
    snapshot_file: Path | None = None,
    token_lifetime_s: int = 86400,
    rate_limit: float = 0.0,
    rate_burst: int = 0,
    variant: str = "mix",
    random_seed: int = 0,
    banner: bool = True,
) -> None:
    configure_logging()
    if time_scale <= 0:
        raise ConfigError(f"--time-scale must be greater than 0 (got {time_scale})")
    config = SandboxConfig(
        base_url=f"http://{host}:{port}",
        webhook_url=webhook_url,
        seed_file=seed_file,
        time_scale=time_scale,
        client_id=client_id,
        client_secret=client_secret,
        snapshot_file=snapshot_file,
        token_lifetime_s=token_lifetime_s,
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        variant=variant,
        random_seed=random_seed,
    )
    if banner:  # off where stdout is a log file: no log holds a credential, not even the sandbox's public one
        sys.stdout.write(startup_banner(config))
        sys.stdout.flush()
    structlog.get_logger("sandbox").info("sandbox_started", base_url=config.base_url, webhook_url=webhook_url)
    uvicorn.run(create_app(config), host=host, port=port, log_config=None, access_log=False)
