"""Exactly-once effect per event on top of at-least-once delivery, and one pass per customer at a time.

* Each event id gets a generation once (`event-gen:{event_id}` → "customer|gen"; a redelivered
  duplicate reads the same one back), by INCR of the customer's `gen:{customer}` counter. Billing
  events get theirs from the ingest, in the script that queues them (ingest/enqueue.py), so a pass
  covers every event ingested before it started even when the workers run far behind; `assign`
  then only reads it back. Other events (user/org, converge requests) are counted here.
* A pass runs under the customer's lease `lock:{customer}` (worker/convergence/lease.py: SET NX PX, released
  only by its holder, checked and extended before each write). It reads the counter when it starts
  (its *target*), converges from Kinde's state, then raises `converged:{customer}` to max(old, target).
* A user or org event can touch several customers and targets; each part is recorded done on its
  own (`event-parts:{event_id}`), so a retry after a partial failure does exactly the rest.
* An event whose generation ≤ `converged` is already covered by a pass that started after it was
  counted: it makes no Kinde call at all. An event that finds the lease taken goes back to the
  broker for a short delayed retry (`ContendedError`), and the next pass covers every event that
  arrived during the current one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis

from common import keys
from common.infra.connections import redis_errors
from worker.convergence.lease import Lease, RedisLeases

LEASE_MS = 60_000
LEASE_POLL_S = 0.3
CONTENDED_RETRY_S = 0.25
ALL_PARTS = "*"  # the part recorded once every part of an event is done

# KEYS: event-gen key, customer gen counter. ARGV: customer id, ttl ms. Returns "customer|gen".
_ASSIGN = """
local known = redis.call('GET', KEYS[1])
if known then return known end
local gen = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '|' .. gen
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""
# KEYS: converged key. ARGV: target generation.
_RAISE = """
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > old then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


class Coalescer(Protocol):
    def assign(self, event_id: str, customer_id: str) -> int:
        """The event's generation for the customer (the same one on every redelivery)."""

    def known(self, event_id: str) -> tuple[str, int] | None:
        """(customer, generation) if this event id was counted before."""

    def covered(self, customer_id: str, generation: int) -> bool: ...

    def lease(self, customer_id: str) -> AbstractContextManager[tuple[int, Lease]]:
        """Hold the customer's lease; yields (target generation, lease); raises ContendedError if held."""

    def done(self, customer_id: str, target: int) -> None: ...

    def parts_done(self, event_id: str) -> set[str]:
        """The parts of a user/org event recorded done (`ALL_PARTS` once every part is)."""

    def part_done(self, event_id: str, part: str) -> None: ...


class RedisCoalescer:
    def __init__(
        self, client: redis.Redis, *, event_ttl_s: int, poll_s: float = LEASE_POLL_S, lease_ms: int = LEASE_MS
    ) -> None:
        self._redis = client
        self._leases = RedisLeases(client, ttl_ms=lease_ms, poll_s=poll_s, retry_after_s=CONTENDED_RETRY_S)
        self._ttl_ms = event_ttl_s * 1000
        self._assign = client.register_script(_ASSIGN)
        self._raise = client.register_script(_RAISE)

    def assign(self, event_id: str, customer_id: str) -> int:
        keys_ = [keys.event_generation(event_id), keys.customer_generation(customer_id)]
        with redis_errors("assigning an event generation"):
            value = str(self._assign(keys=keys_, args=[customer_id, self._ttl_ms]))
        return int(value.rsplit("|", 1)[1])

    def known(self, event_id: str) -> tuple[str, int] | None:
        with redis_errors("reading an event generation"):
            raw = self._redis.get(keys.event_generation(event_id))
        if not raw:
            return None
        customer, _, gen = str(raw).rpartition("|")
        return customer, int(gen)

    def covered(self, customer_id: str, generation: int) -> bool:
        with redis_errors("reading the converged generation"):
            raw = self._redis.get(keys.customer_converged(customer_id))
        return int(str(raw or 0)) >= generation

    @contextmanager
    def lease(self, customer_id: str) -> Iterator[tuple[int, Lease]]:
        with self._leases.hold(keys.customer_lock(customer_id), f"customer {customer_id}") as held:
            with redis_errors("reading the customer generation"):
                target = int(str(self._redis.get(keys.customer_generation(customer_id)) or 0))
            yield target, held

    def done(self, customer_id: str, target: int) -> None:
        with redis_errors("recording the converged generation"):
            self._raise(keys=[keys.customer_converged(customer_id)], args=[target])

    def parts_done(self, event_id: str) -> set[str]:
        with redis_errors("reading an event's done parts"):
            return {str(p) for p in self._redis.smembers(keys.event_parts(event_id))}

    def part_done(self, event_id: str, part: str) -> None:
        with redis_errors("recording an event part done"), self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.event_parts(event_id), part)
            pipe.pexpire(keys.event_parts(event_id), self._ttl_ms)
            pipe.execute()
