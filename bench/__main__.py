"""`python -m bench ingest|worker|load|rebuild|api|api_handler|table|backlog|memory [options]`: run its main(argv)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("ingest", "worker", "load", "rebuild", "api", "api_handler", "table", "backlog", "memory")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m bench {{{'|'.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{argv[0]}")
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
