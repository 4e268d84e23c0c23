"""The rule for common/ vs worker/ (docs/architecture.md, Rooms; issue 25 item 9).

common/ holds what a process or tool other than the worker uses: every module of common/ is imported, directly or
through other common/ modules, by ingest/, api/, ops/, cli/, console/, doctor/, launch/ or sandbox/. A module only
the worker uses lives in worker/. (The other way round is allowed: the on-call tools import worker/ modules, e.g.
worker/kinde/ for every Kinde call, and that does not make them common.)
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OTHERS = ("ingest", "api", "ops", "cli", "console", "doctor", "launch", "sandbox")


def dotted(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


@functools.cache
def modules() -> dict[str, Path]:
    return {dotted(p): p for top in ("common", *OTHERS) for p in (ROOT / top).rglob("*.py")}


@functools.cache
def imports_of(path: Path) -> frozenset[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return frozenset(found)


@functools.cache
def used_outside_the_worker() -> frozenset[str]:
    """Every module of common/ reached from the other packages without passing through worker/."""
    known, seen = modules(), set()
    stack = [name for name in known if name.startswith(OTHERS)]
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack += [m for m in imports_of(known[name]) if m in known]
    return frozenset(seen)


def test_no_module_of_common_serves_only_the_worker() -> None:
    reached = used_outside_the_worker()
    common = {name for name, path in modules().items() if name.startswith("common.") and path.name != "__init__.py"}
    assert sorted(common - reached) == []


def test_the_rule_sees_the_modules_it_judges() -> None:
    """Vacuity guard: common/ is large, and most of it is reached from the API or the ingest."""
    reached = used_outside_the_worker()
    assert {"common.keys", "common.entitlements.customer", "common.table.table_rows"} <= reached
