"""`make lock`: re-resolve both lock files to the newest versions pyproject allows, and say what moved.

uv resolves once for every supported Python (3.11 and up) and platform (`--universal`) with the hashes of
every file of each pinned release; the runtime lock is then resolved under the full lock as a constraint,
so the image runs exactly the versions `make test` passed with.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from devtools.lockfile import FULL, FULL_EXTRAS, ROOT, RUNTIME, RUNTIME_EXTRAS, moved, read_pins

COMPILE = ("pip", "compile", "--quiet", "--universal", "--python-version", "3.11", "--generate-hashes")
HEADER = "make lock"
# Where the lock must install from wheels alone (no compiler on the target): every Python we support, both arches.
TARGETS = [
    (py, arch) for py in ("3.11", "3.12", "3.13") for arch in ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28")
]


def compile_args(output: Path, extras: tuple[str, ...], *more: str) -> list[str]:
    flags = [arg for extra in extras for arg in ("--extra", extra)]
    return [*COMPILE, "--custom-compile-command", HEADER, *flags, *more, "pyproject.toml", "-o", output.name]


def commands(upgrade: bool) -> list[list[str]]:
    """The two uv invocations that make the locks; `upgrade` moves every pin to the newest allowed."""
    full = compile_args(FULL, FULL_EXTRAS, *(["--upgrade"] if upgrade else []))
    return [full, compile_args(RUNTIME, RUNTIME_EXTRAS, "--constraints", FULL.name)]


def wheels_only(python: str, platform: str) -> list[str]:
    """Re-resolve under the lock for one target with binary wheels only: fails if a pin has none there."""
    target = ["--python-version", python, "--python-platform", platform, "--only-binary", ":all:"]
    flags = [arg for extra in FULL_EXTRAS for arg in ("--extra", extra)]
    return ["pip", "compile", "--quiet", *target, *flags, "--constraints", FULL.name, "pyproject.toml"]


def uv() -> str:
    return str(Path(sys.executable).with_name("uv"))


def main(argv: list[str]) -> int:
    before = read_pins(FULL.read_text(encoding="utf-8")) if FULL.exists() else {}
    for args in commands(upgrade="--keep" not in argv):
        subprocess.run([uv(), *args], cwd=ROOT, check=True)
    for python, platform in TARGETS:
        subprocess.run([uv(), *wheels_only(python, platform)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    changes = moved(before, read_pins(FULL.read_text(encoding="utf-8")))
    print("\n".join(changes) if changes else "lock: nothing moved")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
