"""Foreign exceptions (httpx, redis, psycopg) are caught only in the adapter modules named below.

Everything else sees the service's own tree (common/errors.py). The scan reads every module of
every package of the service (each top-level folder with an `__init__.py`, so a new package is
scanned without being added here) and finds each `except` whose type names one of those libraries,
however it was imported (`import redis`, `import redis.asyncio`, `from redis import exceptions`,
`from redis.exceptions import RedisError`, `import httpx as h`).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOREIGN = {"httpx", "httpx2", "redis", "psycopg", "psycopg2", "psycopg_pool"}
# Harnesses, not the service: they drive it from outside, and a failed call there is a figure or a
# wait, not an error of ours.
HARNESSES = {"tests", "chaos", "bench"}
ADAPTERS = {
    "common/infra/connections.py": "the Redis clients; `redis_errors` translates for every caller",
    "common/table/postgres.py": "the Postgres pool and connections; `postgres_errors` translates for every caller",
    "ingest/enqueue.py": "the ingest's Redis queue: RedisError becomes RetryableError (a 503)",
    "ingest/batching.py": "the ingest's pipelined Redis connection: reconnects once, keeps error replies in order",
    "ingest/jwks_fetch.py": "the JWKS fetch: httpx's failures become RetryableError",
    "worker/kinde/answers.py": "Kinde's HTTP transport failures become RetryableError",
    "worker/runtime/broker.py": "Dramatiq's broker: Redis failures become ConnectionClosed: consumers restart",
    "worker/runtime/durable_retries.py": "a retry copy owed across a Redis outage (Dramatiq's ConnectionClosed); "
    "a Redis error that reaches the retry policy untranslated is an outage",
    "worker/runtime/recovery/own_acks.py": "acks and nacks that timed out or hit a demoted primary, Dramatiq retries",
    "worker/runtime/heartbeat.py": "best-effort liveness beats: a failed beat is logged, the next one retries",
    "worker/runtime/backlog.py": "the backlog gauge: no series at all while Redis is down",
    "doctor/http_probe.py": "the doctor's HTTP checks: httpx's failures become RetryableError",
    "doctor/redis_probe.py": "the doctor's Redis checks: a refused password is a ConfigError, silence RetryableError",
    "launch/processes.py": "waits for a started process's HTTP endpoint: no answer yet means not up yet",
    "sandbox/delivery.py": "the sandbox's webhook deliveries: a failed POST is an attempt to retry, as Kinde does",
    "worker/outputs/notify_delivery.py": "change notifications to the app: httpx's failures become RetryableError",
    "sandbox/plan_hook.py": "the sandbox's plan-selection hook call: a failing hook allows, as Kinde does",
}


def service_modules() -> list[Path]:
    packages = [p.parent for p in ROOT.glob("*/__init__.py") if p.parent.name not in HARNESSES]
    return sorted(m for package in packages for m in package.rglob("*.py"))


def foreign_aliases(tree: ast.Module) -> set[str]:
    """Local names bound to a foreign library, one of its modules, or something imported from it."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in FOREIGN)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FOREIGN:
            names.update(a.asname or a.name for a in node.names)
    return names


def foreign_catches(path: Path) -> list[int]:
    """Line numbers of the `except` clauses in `path` whose type names a foreign library."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases = foreign_aliases(tree)
    return [
        handler.lineno
        for handler in ast.walk(tree)
        if isinstance(handler, ast.ExceptHandler) and handler.type is not None
        if {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} & aliases
    ]


def test_foreign_exceptions_are_caught_only_in_the_adapters() -> None:
    outside = {
        rel: lines
        for path in service_modules()
        if (rel := path.relative_to(ROOT).as_posix()) not in ADAPTERS and (lines := foreign_catches(path))
    }
    assert outside == {}, "translate these in an adapter module (and name it in ADAPTERS with why)"


def test_every_adapter_named_exists_and_still_catches_something() -> None:
    """A stale entry would let a new module of that name catch anything unseen."""
    idle = [rel for rel in ADAPTERS if not (ROOT / rel).exists() or not foreign_catches(ROOT / rel)]
    assert idle == []


def test_the_scan_finds_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import httpx as h\nimport redis.asyncio\nfrom redis.exceptions import RedisError\n"
        "try:\n    pass\nexcept h.HTTPError:\n    pass\n"
        "try:\n    pass\nexcept (ValueError, redis.exceptions.ConnectionError):\n    pass\n"
        "try:\n    pass\nexcept RedisError:\n    pass\n"
        "try:\n    pass\nexcept ValueError:\n    pass\n",
        encoding="utf-8",
    )
    assert foreign_catches(sample) == [6, 10, 14]
    assert "worker/runtime/broker.py" in {p.relative_to(ROOT).as_posix() for p in service_modules()}
