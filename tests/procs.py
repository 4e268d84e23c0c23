"""Real processes for tests: the same helpers the demo uses, plus a test-flavoured `Proc`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from launch.processes import Child, free_port, http_ok, wait_until
from launch.processes import rolesync_argv as rolesync

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ROOT", "Proc", "free_port", "http_ok", "rolesync", "wait_until"]


class Proc(Child):
    """A child started from the repository root with its log under `log_dir`."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        super().__init__(name, argv, env, log_dir, cwd=ROOT)
