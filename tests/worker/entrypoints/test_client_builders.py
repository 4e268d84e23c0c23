"""The worker builds its Redis, httpx and Postgres clients in one place (issue 25, item 7).

worker/entrypoints/bootstrap.py is the composition root and worker/entrypoints/clients.py its plain clients;
the forked helpers (sweeps, the table drain) and the heartbeat take theirs from there. A call to a client
constructor anywhere else in worker/ is a second home for the same decision (timeouts, pool sizes, decoding).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONSTRUCTORS = {"redis_client", "postgres_pool", "Client", "TableSync"}  # Client: httpx.Client
# where each constructor may be called, and why
BUILDERS = {
    "worker/entrypoints/bootstrap.py": "the composition root",
    "worker/entrypoints/clients.py": "the plain Redis and Postgres clients",
    "worker/outputs/table_sync.py": "build_sync: the one TableSync, for the pass and the drain",
    "worker/runtime/broker.py": "the broker's own undecoded connection",
    "worker/entrypoints/launcher.py": "one ping before exec",
}


def constructor_calls(path: Path) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CONSTRUCTORS:
                calls.append(f"{name}:{node.lineno}")
    return calls


def test_only_the_builders_construct_clients() -> None:
    outside = {
        str(p.relative_to(ROOT)): calls
        for p in sorted((ROOT / "worker").rglob("*.py"))
        if str(p.relative_to(ROOT)) not in BUILDERS and (calls := constructor_calls(p))
    }
    assert outside == {}


def test_the_table_sync_is_built_once() -> None:
    built = [p for p in BUILDERS if any(c.startswith("TableSync:") for c in constructor_calls(ROOT / p))]
    assert built == ["worker/outputs/table_sync.py"]


def test_every_builder_still_builds() -> None:
    """An entry for a file that no longer constructs anything would excuse a future one silently."""
    assert all(constructor_calls(ROOT / p) for p in BUILDERS)
