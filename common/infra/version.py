"""The release this code is: the package metadata's version (pyproject.toml), read once.

`rolesync --version`, both `/healthz` routes and `rolesync status` show it; CHANGELOG.md says what each
release holds and docs/upgrading.md what stays stable within a major version.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "kinde-role-sync"
UNKNOWN = "0+unknown"  # run from a checkout that was never installed (`pip install -e .` gives the real one)


@cache
def release() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN
