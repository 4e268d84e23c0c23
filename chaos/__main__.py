"""`python -m chaos <suite> [--smoke] [--log-dir DIR]`: run one suite, print and record its figures.

Exit status 0 when every target is met, 1 when one is missed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from chaos.figures import ROOT, Result, report

SUITES = ("duplicates", "crashes", "redis", "redis-loss", "sentinel", "faults", "fuzz", "model", "secrets")
DEFAULT_LOGS = ROOT / ".rolesync" / "chaos-logs"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    parser.add_argument("suite", choices=(*SUITES, "all"))
    parser.add_argument("--smoke", action="store_true", help="small N; figures are printed, not recorded")
    parser.add_argument("--log-dir", type=Path, default=DEFAULT_LOGS, help="every process log goes under here")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sequences", type=int, help="model suite: how many sequences (default 2000; smoke 5)")
    parser.add_argument("--pipes", type=int, help="model suite: pipes side by side (default: chaos/suites.py's size)")
    parser.add_argument("--minutes", type=float, help="model suite: hand out no batch after this long (default: none)")
    return parser.parse_args(argv)


def run_suite(name: str, args: argparse.Namespace) -> Result:
    from chaos import suites

    given = {k: v for k in ("sequences", "pipes", "minutes") if name == "model" and (v := getattr(args, k)) is not None}
    command = f"python -m chaos {name}{' --smoke' if args.smoke else ''} --seed {args.seed}"
    command += "".join(f" --{k} {v}" for k, v in given.items())
    extra: dict[str, Any] = dict(given)
    return suites.run(name, args.log_dir / name, smoke=args.smoke, seed=args.seed, command=command, **extra)


def main(argv: list[str]) -> int:
    args = parse(argv)
    names = SUITES if args.suite == "all" else (args.suite,)
    failed = []
    for name in names:
        started = time.monotonic()
        result = run_suite(name, args)
        report(result, record=not args.smoke)
        print(f"({name} took {time.monotonic() - started:.0f} s)")
        if not result.passed:
            failed.append(name)
    if failed:
        print(f"targets missed in: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
