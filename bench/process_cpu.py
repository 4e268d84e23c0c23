"""CPU seconds a process and its children (a `rolesync api --workers N` and its workers) have used, from /proc."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_process(pid: int) -> dict[int, float]:
    """User + system seconds of `pid` and of every live descendant (one that exited is not counted)."""
    found: dict[int, float] = {}
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        found[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found.update(cpu_by_process(int(child)))
    return found


def used_since(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    return {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}
