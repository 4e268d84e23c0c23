"""Architecture rule: ingest and worker never import each other; common imports neither; api only common."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "ingest": {"worker", "cli", "sandbox", "ops", "doctor", "api"},
    "worker": {"ingest", "cli", "sandbox", "ops", "doctor", "api"},
    "common": {"ingest", "worker", "cli", "sandbox", "ops", "doctor", "api"},
    # Redis only, never Kinde; it writes just timelines, the app's usage reports and member-refresh requests.
    "api": {"ingest", "worker", "cli", "sandbox", "ops", "doctor"},
    "ops": {"ingest", "cli", "sandbox"},
    "doctor": {"ingest", "cli", "sandbox"},
    "sandbox": {"ingest", "worker", "cli", "ops", "doctor"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_packages(package: str) -> None:
    """Each module of the package imports none of the packages it must stay independent of."""
    modules = sorted((ROOT / package).rglob("*.py"))
    # A renamed or moved package would leave nothing to check, and the rule would pass vacuously.
    assert (ROOT / package / "__init__.py").exists(), f"package {package}/ is gone: update the rules"
    assert len(modules) >= 2, f"package {package}/ holds no modules to check"
    offenders = {
        str(path.relative_to(ROOT)): bad for path in modules if (bad := imported_top_levels(path) & FORBIDDEN[package])
    }
    assert offenders == {}
