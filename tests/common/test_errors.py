"""The error tree drawn in common/errors.py's docstring is the real one: every class, its parent, its module.

Every module of every package is imported, then `ServiceError.__subclasses__()` walked: a new error
class anywhere that the docstring does not draw (or draws under another parent or module) fails here.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import common.errors
from common.errors import ServiceError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "ingest", "worker", "api", "console", "ops", "doctor", "cli", "sandbox", "bench", "chaos")
# Modules that refuse a plain import; they are read instead, and must define no class at all.
NOT_IMPORTABLE = {"worker.runtime.actors": "binds its actors to the broker `worker.runtime.broker.setup` made"}
_NODE = re.compile(r"^    (?P<indent>(?:[│ ]   )*)(?:[├└]── )?(?P<name>\w+)\s+(?P<module>[\w.]+)\b")

Row = tuple[str, str | None, str]  # class name, parent name, module


def drawn() -> set[Row]:
    """(name, parent, module) for each line of the tree in the docstring; the parent comes from the indent."""
    rows: set[Row] = set()
    parents: list[str] = []
    for line in (common.errors.__doc__ or "").splitlines():
        if not (match := _NODE.match(line)) or ("──" not in line and rows):
            continue
        depth = len(match["indent"]) // 4 + (1 if "──" in line else 0)
        parents[depth:] = [match["name"]]
        rows.add((match["name"], parents[depth - 1] if depth else None, match["module"]))
    return rows


def module_names() -> Iterator[str]:
    for package in PACKAGES:
        yield package
        modules = pkgutil.walk_packages(importlib.import_module(package).__path__, prefix=f"{package}.")
        yield from (m.name for m in modules if not m.name.endswith(".__main__"))


def subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def real() -> set[Row]:
    for name in module_names():
        if name not in NOT_IMPORTABLE:
            importlib.import_module(name)
    found: set[Row] = {(ServiceError.__name__, None, ServiceError.__module__)}
    for cls in subclasses(ServiceError):
        (parent,) = [base for base in cls.__bases__ if issubclass(base, ServiceError)]
        found.add((cls.__name__, parent.__name__, cls.__module__))
    return found


def test_the_docstring_draws_every_error_class_under_its_parent() -> None:
    assert drawn() == real()


def test_the_tree_reader_sees_nesting() -> None:
    """The reader itself: without it the equality above could pass on two empty sets."""
    rows = drawn()
    assert ("LeaseLostError", "ContendedError", "worker.convergence.lease") in rows
    assert ("ServiceError", None, "common.errors") in rows
    assert len(rows) >= 15


def test_modules_that_cannot_be_imported_define_no_class() -> None:
    for name in NOT_IMPORTABLE:
        tree = ast.parse((ROOT / (name.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
        assert not [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)], name
