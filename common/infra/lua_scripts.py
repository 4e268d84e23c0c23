"""Lua scripts kept in `.lua` files, one per script, beside the module that owns them (issue 25).

A script that two modules run is one file both load, so the copies cannot drift apart; `lua_script` reads a
file once per process (every caller gets the same text, so Redis caches one SHA). pyproject's package-data
ships the `.lua` files in the wheel, as it does `common/table/migrations/*.sql`.
"""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def lua_script(package: str, name: str) -> str:
    """The text of `name` (e.g. "keep_newer.lua") inside the installed package `package` (e.g. "common.guard")."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")
