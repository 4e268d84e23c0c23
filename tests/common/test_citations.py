"""The project stands on its own: no code, doc or config cites a file that lives outside the repo."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"(kinde-api|kinde-workflows|dramatiq-stack|scaling|style-anchors)\.md|shared/reference")
CHECKED = ("*.py", "*.md", "*.toml", "*.yml", "*.yaml", "Makefile", "Dockerfile")
SKIPPED = {".venv", ".git", ".rolesync", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def checked_files() -> list[Path]:
    found = {p for pattern in CHECKED for p in ROOT.rglob(pattern)}
    return sorted(p for p in found if not SKIPPED & set(p.relative_to(ROOT).parts))


def test_the_scan_sees_the_code_and_the_docs() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in checked_files()}
    assert {"worker/convergence/converge.py", "docs/architecture.md", "README.md", "pyproject.toml"} <= names


def test_no_file_cites_a_reference_outside_the_repo() -> None:
    citing = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in checked_files()
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line) and p.name != "test_citations.py"
    ]
    assert citing == [], "cite docs/ instead (docs/kinde-facts.md, docs/stack-notes.md): " + ", ".join(citing)
