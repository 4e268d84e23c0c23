"""`make test-latest`'s first line: which installed versions differ from the lock (the drift under test)."""

from __future__ import annotations

import sys
from importlib.metadata import distributions

from packaging.utils import canonicalize_name

from devtools.lockfile import FULL, Pin, moved, read_pins


def installed() -> dict[str, Pin]:
    found = {canonicalize_name(dist.metadata["Name"]): dist.version for dist in distributions()}
    return {name: Pin(name, version) for name, version in found.items()}


def main() -> int:
    locked = read_pins(FULL.read_text(encoding="utf-8"))
    here = installed()
    changes = [line for line in moved(locked, here) if line.startswith("~")]
    print("newer than the lock:\n" + "\n".join(changes) if changes else "test-latest: the lock is today's newest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
