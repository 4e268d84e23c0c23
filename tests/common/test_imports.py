"""Architecture rules: ingest and worker never import each other; common imports neither; api only common.

Proof code (bench/, chaos/, tests/) and the maintainers' devtools/ stay outside the service: no service
package imports them, they are not installed with the service nor copied into its image, and bench/ and
chaos/ never import each other in a circle (chaos may use bench's machine description; bench never imports
chaos).
"""

from __future__ import annotations

import ast
import functools
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


# --- the rooms of worker/ and common/ (issue 25; devtools/rooms.py maps each old module to its room) ---
ROOMED = ("worker", "common")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache  # the rules below read every service file; each is parsed once
def imported_modules(path: Path) -> frozenset[str]:
    """Every module the file names in an import, anywhere (late imports and TYPE_CHECKING ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for top in ROOMED for p in sorted((ROOT / top).rglob("*.py"))}
    return {name: (imported_modules(path) & set(paths)) - {name} for name, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, edges = work[-1]
            step = next((e for e in edges if e not in index or e in stack), None)
            if step is not None and step not in index:
                index[step] = low[step] = len(index)
                stack.append(step)
                work.append((step, iter(sorted(graph[step]))))
                continue
            if step is not None:
                low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = stack[stack.index(node) :]
                del stack[stack.index(node) :]
                if len(part) > 1:
                    found.append(sorted(part))
    return found


def test_circles_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_worker_or_common() -> None:
    """No module of worker/ or common/ reaches itself through imports, late or TYPE_CHECKING ones included.

    The two there were: worker/runtime/broker.py ↔ worker/runtime/recovery/ (the sweep's process now lives in
    worker/entrypoints/recovery_sweep.py) and worker/customers/rebuild.py ↔ worker/customers/resolve.py (where a
    customer's roles land is worker/customers/placement.py, shared by both)."""
    graph = import_graph()
    assert len(graph) > 100, "worker/ and common/ hold no modules to check"
    assert circles(graph) == []


# Which files of a room may import a library: the room's own files, and the listed exceptions, each with its reason.
LIBRARY_ROOMS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "dramatiq": (
        ("worker/runtime/", "worker/entrypoints/"),
        {
            "common/messages.py": "the Message shape the ingest writes is Dramatiq's own",
            "worker/kinde/ratelimit.py": "the Kinde rate gate is Dramatiq's Redis token bucket",
            "worker/sweeps/reconcile.py": "the sweep enqueues its passes on the worker fleet's broker",
        },
    ),
    "httpx": (
        ("worker/kinde/",),
        {
            "worker/entrypoints/bootstrap.py": "the composition root builds the clients",
            "worker/outputs/notify_delivery.py": "POSTs the app's webhooks (not Kinde)",
        },
    ),
    "psycopg": (("common/table/",), {}),
    "psycopg_pool": (("common/table/",), {}),
}


def test_library_rules_hold_for_something() -> None:
    """A rule over a library nobody imports any more would pass vacuously."""
    for library, (rooms, _) in LIBRARY_ROOMS.items():
        users = [p for top in SERVICE for p in (ROOT / top).rglob("*.py") if library in top_levels_of(p)]
        assert any(str(p.relative_to(ROOT)).startswith(rooms) for p in users), library


def top_levels_of(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("library", sorted(LIBRARY_ROOMS))
def test_only_its_rooms_import_a_library(library: str) -> None:
    """dramatiq only in worker's runtime and entrypoints; httpx only in worker's kinde room; psycopg only in
    common's table room (in the whole service): a file elsewhere that imports it must be listed with a reason."""
    rooms, exceptions = LIBRARY_ROOMS[library]
    scope = SERVICE if library.startswith("psycopg") else set(ROOMED)
    users = {
        str(p.relative_to(ROOT))
        for top in sorted(scope)
        for p in (ROOT / top).rglob("*.py")
        if library in top_levels_of(p)
    }
    assert {user for user in users if not user.startswith(rooms)} == set(exceptions)


CITED = re.compile(r"(?<![\w./-])(?:worker|common)(?:/\w+)+(?:\.py\b|/)?")


def cited_paths(text: str) -> set[str]:
    """`worker/…` and `common/…` paths in a text; a pattern (`common/table/migrations/NNNN_*.sql`) by its folder."""
    found = set()
    for match in CITED.finditer(text):
        path = match.group(0)
        found.add(path.rsplit("/", 1)[0] + "/" if text[match.end() : match.end() + 1] == "*" else path)
    return found


def test_cited_paths_reads_patterns_by_their_folder() -> None:
    text = "see worker/kinde/api.py, common/table/migrations/NNNN_*.sql and tests/worker/test_x.py"
    assert cited_paths(text) == {"worker/kinde/api.py", "common/table/migrations/"}


def test_every_cited_worker_and_common_path_exists() -> None:
    """Every `worker/…` / `common/…` path the service's docstrings and comments, README and docs/ cite exists."""
    sources = [p for top in sorted(SERVICE) for p in (ROOT / top).rglob("*.py")]
    sources += [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    cited = {(str(s.relative_to(ROOT)), c) for s in sources for c in cited_paths(s.read_text(encoding="utf-8"))}
    assert len(cited) > 250, "too few citations found: is the pattern still right?"
    missing = {(source, path) for source, path in cited if not (ROOT / path).exists()}
    assert missing == set()
