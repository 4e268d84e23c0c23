"""Architecture rules: ingest and worker never import each other; common imports neither; api only common.

Proof code (bench/, chaos/, tests/) and the maintainers' devtools/ stay outside the service: no service
package imports them, they are not installed with the service nor copied into its image, and bench/ and
chaos/ never import each other in a circle (chaos may use bench's machine description; bench never imports
chaos).
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROOF = {"bench", "chaos", "devtools", "tests"}
SERVICE = {"common", "api", "ingest", "worker", "sandbox", "cli", "ops", "doctor", "launch", "console"}
FORBIDDEN = {
    "ingest": {"worker", "cli", "sandbox", "ops", "doctor", "api", "launch", "console"} | PROOF,
    "worker": {"ingest", "cli", "sandbox", "ops", "doctor", "api", "launch", "console"} | PROOF,
    "common": {"ingest", "worker", "cli", "sandbox", "ops", "doctor", "api", "launch", "console"} | PROOF,
    # Redis only, never Kinde; it writes just timelines, the app's usage reports and member-refresh requests.
    "api": {"ingest", "worker", "cli", "sandbox", "ops", "doctor", "launch", "console"} | PROOF,
    # The on-call console: pages over the CLI's own code (ops/), mounted beside the API by cli/main.py.
    "console": {"ingest", "cli", "sandbox", "doctor", "launch"} | PROOF,
    "ops": {"ingest", "cli", "sandbox", "launch", "console"} | PROOF,
    "doctor": {"ingest", "cli", "sandbox", "launch", "console"} | PROOF,
    "sandbox": {"ingest", "worker", "cli", "ops", "doctor", "launch", "console"} | PROOF,
    "cli": PROOF,
    # The launcher starts the service as processes: it imports none of their code, only the sandbox's client.
    "launch": {"ingest", "worker", "cli", "ops", "doctor", "api", "console"} | PROOF,
    "bench": {"chaos", "tests"},
    "chaos": {"tests"},
    # The maintainers' tools (the lock, the image test) may drive the service's launcher and sandbox, as the
    # proofs do, but never import a proof.
    "devtools": {"bench", "chaos", "tests"},
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


def test_every_package_has_rules() -> None:
    """A new top-level package must be placed: in the service or among the proof code."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == SERVICE | PROOF
    assert set(FORBIDDEN) == packages - {"tests"}


def test_only_the_service_is_installed_and_copied_into_the_image() -> None:
    """pyproject installs the service packages (bench/ and chaos/ run from the repo root); the image copies them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    installed = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))
    assert installed == SERVICE
    assert copied == SERVICE
