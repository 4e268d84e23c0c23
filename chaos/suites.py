"""Each suite's full and smoke sizes, in one table so `make chaos` and tests/chaos agree."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from chaos.figures import Result
from launch.pipe import PipeOptions

# Smoke runs cannot wait out the production 60 s heartbeat timeout and customer lease; full runs use the defaults.
FAST_RECOVERY = {
    "ROLESYNC_HEARTBEAT_TIMEOUT_S": "3",
    "ROLESYNC_JANITOR_INTERVAL_S": "1",
    "ROLESYNC_CUSTOMER_LEASE_S": "3",
}


def suite_pipe(**options: Any) -> PipeOptions:
    """A suite's pipe: the sandbox sends no webhook until the suite points it at the ingest (or a capturing
    hook), and the pipe leaves its credentials for the secrets scan (chaos/secrets.py)."""
    return PipeOptions(**{"deliver": False, "record_credentials": True, "fsync": "everysec", **options})


MODULES = {"redis": "redis_restart", "faults": "kinde_faults", "redis-loss": "redis_loss"}
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # suite: (full, smoke)
    "duplicates": (
        {"customers": 1000, "events": 10000, "timeout": 1800},
        {"customers": 10, "events": 60, "timeout": 60},
    ),
    "redis": (
        {"events": 1000, "flow_s": 30.0},
        {"events": 60, "flow_s": 4.0, "down_s": 1.5, "timeout": 40, "env": FAST_RECOVERY, "modes": ("always",)},
    ),
    # Kinde's rate is not what this measures: the heal of 1,000 customers at the sandbox's pace, not 10/s.
    "redis-loss": (
        {"events": 1000, "flow_s": 30.0, "heal": 1000, "env": {"KINDE_API_RPS": "100"}},
        {"events": 60, "flow_s": 6.0, "heal": 30, "timeout": 120, "env": FAST_RECOVERY},
    ),
    "faults": ({"events": 1000, "flow_s": 30.0}, {"events": 60, "flow_s": 4.0, "outage_s": 3.0, "timeout": 60}),
    "fuzz": ({"inputs": 10000}, {"inputs": 300}),
    # Full: 3 pipes side by side (a pipe spends most of a sequence waiting). Back to back on the shared 2 cores, 3 did
    # 19.6-27.1 a minute and 4 did 14.1-22.0 (docs/reliability.md, "Measured again, and the waits shortened").
    "model": ({"sequences": 2000, "pipes": 3}, {"sequences": 5, "steps": 10, "batch": 5, "shrinks": 0}),
    # A full flow, then a short one for `make test`: the failover itself takes the sentinels ~3-5 s.
    "sentinel": (
        {"events": 1000, "flow_s": 30.0},
        {"events": 60, "flow_s": 8.0, "timeout": 60, "env": FAST_RECOVERY},
    ),
    "crashes": (
        # Like duplicates: this suite measures crashes, not Kinde throttling (the sandbox is unlimited here).
        {"events": 10000, "flow_s": 90.0, "env": {"KINDE_API_RPS": "100"}},
        # Two launchers, not four: still a kill of one while the other works, at half the start-up on 2 cores.
        {"events": 60, "flow_s": 5.0, "every_s": 2.0, "threads": 2, "timeout": 45, "env": FAST_RECOVERY, "workers": 2},
    ),
}


def run(name: str, log_dir: Path, *, smoke: bool, seed: int, command: str, **override: Any) -> Result:
    module = importlib.import_module(f"chaos.{MODULES.get(name, name)}")
    size = {**SIZES.get(name, ({}, {}))[1 if smoke else 0], **override}
    result: Result = module.run(log_dir, seed=seed, command=command, **size)
    return result
