"""The lock files as data: each pinned package with its version, marker, hashes and what asked for it.

`requirements.lock` pins every runtime, test and build dependency for every supported Python and platform
(uv's universal resolution, with hashes); `requirements-runtime.lock` is the image's subset of the same pins.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FULL = ROOT / "requirements.lock"
RUNTIME = ROOT / "requirements-runtime.lock"
PROJECT = "kinde-role-sync"
# Extras the lock covers: `test` for make test, `build` for the build backend pip uses without isolation.
FULL_EXTRAS = ("test", "build", "otel")
RUNTIME_EXTRAS = ("build", "otel")  # the image can trace: OTEL_* variables turn it on

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][\w.-]*)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


@dataclass
class Pin:
    name: str
    version: str
    marker: str = ""
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)


def read_pins(text: str) -> dict[str, Pin]:
    """Every `name==version` entry of a hashed requirements file, keyed by canonical name."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in text.splitlines():
        if match := _PIN.match(line):
            current = Pin(canonicalize_name(match["name"]), match["version"], (match["marker"] or "").strip())
            pins[current.name] = current
        elif current is not None:
            _annotate(current, line.strip())
    return pins


def _annotate(pin: Pin, line: str) -> None:
    if found := _HASH.search(line):
        pin.hashes.append(found[1])
    elif line.startswith("#") and line not in ("# via", "#"):
        pin.via.append(line.lstrip("# ").removeprefix("via ").strip())


def declared(extras: tuple[str, ...], pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """The project's own requirements: its dependencies plus the named extras."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    texts = list(project["dependencies"]) + [text for extra in extras for text in optional.get(extra, [])]
    return [Requirement(text) for text in texts]


def direct(pins: dict[str, Pin]) -> set[str]:
    """The pins the resolver says the project itself asked for."""
    return {name for name, pin in pins.items() if f"{PROJECT} (pyproject.toml)" in pin.via}


def moved(old: dict[str, Pin], new: dict[str, Pin]) -> list[str]:
    """One line per package added, removed or moved between two locks."""
    lines = [f"+ {name} {new[name].version}" for name in sorted(new.keys() - old.keys())]
    lines += [f"- {name} {old[name].version}" for name in sorted(old.keys() - new.keys())]
    both = sorted(name for name in old.keys() & new.keys() if old[name].version != new[name].version)
    return lines + [f"~ {name} {old[name].version} -> {new[name].version}" for name in both]
