"""The running service: a worker alive, the queue draining, no dead letters waiting for a human.

A worker is alive when its process beat `rolesync:workers` lately (worker/runtime/heartbeat.py), counted by
the same function as `rolesync status` (ops/status.py), so the two never disagree. Dramatiq's own
`__heartbeats__` is not a count of workers: it mixes producers, the janitor and each process's
brokers under random ids (one `--processes 1` worker shows there twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from common import keys
from common.infra.connections import redis_errors
from common.infra.deadletters import FORBIDDEN, UNRESOLVED, RedisDeadLetterStore
from common.messages import PASS_QUEUES
from doctor.report import Result, fail, ok, skip, warn
from doctor.session import Session
from ops.status import alive_workers
from worker.runtime.heartbeat import worker_fresh_s

DRAIN_SAMPLE_S = 1.0
EVERYTHING = 1_000_000_000
START_WORKER = "start one: rolesync worker (needs the same REDIS_URL and KINDE_* settings)"


def live_workers(session: Session, client: redis.Redis) -> int:
    """The one count of live worker processes, the number `rolesync status` prints."""
    return len(alive_workers(client, worker_fresh_s(session.settings), time.time()))


def check_workers(session: Session) -> Result:
    if session.redis is None:
        return skip("workers", "a reachable REDIS_URL")
    alive = live_workers(session, session.redis)
    if not alive:
        fresh_s = worker_fresh_s(session.settings)
        return fail("workers", f"no worker process has beaten in the last {fresh_s:g}s", START_WORKER)
    return ok("workers", f"{alive} worker process(es) alive")


def backlog(client: redis.Redis) -> int:
    with redis_errors("reading the queue length"):
        return sum(int(client.llen(keys.queue_list(q))) for q in PASS_QUEUES)


def check_queue(session: Session, sleep: Callable[[float], None] = time.sleep) -> Result:
    if session.redis is None:
        return skip("queue", "a reachable REDIS_URL")
    first = backlog(session.redis)
    if not first:
        return ok("queue", "no message waiting")
    sleep(DRAIN_SAMPLE_S)
    second = backlog(session.redis)
    if second < first:
        return ok("queue", f"draining: {first} → {second} waiting over {DRAIN_SAMPLE_S:g}s")
    fix = (
        START_WORKER
        if not live_workers(session, session.redis)
        else (
            "the workers are not keeping up: read `rolesync worker` logs, or run more (`rolesync worker --processes N`)"
        )
    )
    return fail("queue", f"{second} message(s) waiting and not draining", fix)


def check_dead_letters(session: Session) -> Result:
    if session.redis is None:
        return skip("dead letters", "a reachable REDIS_URL")
    counts = RedisDeadLetterStore(session.redis).count_by_reason()
    if not counts:
        return ok("dead letters", "none")
    listed = ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))
    waiting = {r.scope for r in RedisDeadLetterStore(session.redis).list(reason=FORBIDDEN, limit=EVERYTHING)}
    if waiting:
        scopes = ", ".join(sorted(s or "an unnamed scope" for s in waiting))
        fix = f"grant {scopes} to the M2M app (see the scopes line); the waiting events then replay by themselves"
        return fail("dead letters", f"{listed} (waiting for {scopes})", fix)
    if set(counts) == {UNRESOLVED}:
        fix = "they replay by themselves once Kinde sends the user's user.created/updated; see `rolesync dlq list`"
        return warn("dead letters", f"{listed} (parked until the customer's user is known)", fix)
    fix = "rolesync dlq list — fix the cause it names, then `rolesync dlq replay --all --reason WHY`"
    return fail("dead letters", listed, fix)
