"""One line per check: its outcome, what it found, and the fix when it failed; text or JSON.

A warning never fails the run; a failure does (exit 1). A skipped check waited on an earlier one
that failed, and says which.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Result:
    name: str
    status: Status
    summary: str
    fix: str = ""


def ok(name: str, summary: str) -> Result:
    return Result(name, Status.OK, summary)


def warn(name: str, summary: str, fix: str = "") -> Result:
    return Result(name, Status.WARN, summary, fix)


def fail(name: str, summary: str, fix: str) -> Result:
    return Result(name, Status.FAIL, summary, fix)


def skip(name: str, waits_on: str) -> Result:
    return Result(name, Status.SKIP, f"skipped: needs {waits_on}")


def passed(results: Sequence[Result]) -> bool:
    return all(r.status is not Status.FAIL for r in results)


_TAGS = {Status.OK: "ok  ", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: "skip"}


def as_line(result: Result) -> str:
    line = f"[{_TAGS[result.status]}] {result.name}: {result.summary}"
    return f"{line}\n       fix: {result.fix}" if result.fix else line


def as_text(results: Sequence[Result]) -> str:
    failures = sum(r.status is Status.FAIL for r in results)
    warnings = sum(r.status is Status.WARN for r in results)
    verdict = "all checks passed" if not failures else f"{failures} check(s) failed"
    return "\n".join([*map(as_line, results), f"{verdict}, {warnings} warning(s)"])


def as_json(results: Sequence[Result]) -> str:
    return json.dumps({"ok": passed(results), "checks": [asdict(r) for r in results]}, indent=2)
