"""Exactly-once effect per event on top of at-least-once delivery, and one pass per customer at a time.

* Each event id gets a generation once (`event-gen:{event_id}` → "customer|gen"; a redelivered
  duplicate reads the same one back), by INCR of the customer's `gen:{customer}` counter. Billing
  events get theirs from the ingest, in the script that queues them (ingest/enqueue.py), so a pass
  covers every event ingested before it started even when the workers run far behind; `assign`
  then only reads it back. Other events (user/org, converge requests) are counted here.
* A pass runs under the customer's lease `lock:{customer}` (SET NX PX, released only by its
  holder). It reads the counter when it starts (its *target*), converges from Kinde's state, then
  raises `converged:{customer}` to max(old, target).
* An event whose generation ≤ `converged` is already covered by a pass that started after it was
  counted: it makes no Kinde call at all. An event that finds the lease taken goes back to the
  broker for a short delayed retry (`ContendedError`), and the next pass covers every event that
  arrived during the current one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis

from common import keys
from common.connections import redis_errors
from common.errors import ContendedError

LEASE_MS = 60_000
LEASE_POLL_S = 0.3
CONTENDED_RETRY_S = 0.25

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
# KEYS: lease key. ARGV: holder token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Coalescer(Protocol):
    def assign(self, event_id: str, customer_id: str) -> int:
        """The event's generation for the customer (the same one on every redelivery)."""

    def known(self, event_id: str) -> tuple[str, int] | None:
        """(customer, generation) if this event id was counted before."""

    def covered(self, customer_id: str, generation: int) -> bool: ...

    def lease(self, customer_id: str) -> AbstractContextManager[int]:
        """Hold the customer's lease; yields the target generation; raises ContendedError if held."""

    def done(self, customer_id: str, target: int) -> None: ...


class RedisCoalescer:
    def __init__(
        self, client: redis.Redis, *, event_ttl_s: int, poll_s: float = LEASE_POLL_S, lease_ms: int = LEASE_MS
    ) -> None:
        self._redis = client
        self._lease_ms = lease_ms
        self._poll_s = poll_s
        self._ttl_ms = event_ttl_s * 1000
        self._assign = client.register_script(_ASSIGN)
        self._raise = client.register_script(_RAISE)
        self._release = client.register_script(_RELEASE)

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
    def lease(self, customer_id: str) -> Iterator[int]:
        holder = self._acquire(customer_id)
        try:
            with redis_errors("reading the customer generation"):
                target = int(str(self._redis.get(keys.customer_generation(customer_id)) or 0))
            yield target
        finally:
            with redis_errors("releasing the customer lease"):
                self._release(keys=[keys.customer_lock(customer_id)], args=[holder])

    def done(self, customer_id: str, target: int) -> None:
        with redis_errors("recording the converged generation"):
            self._raise(keys=[keys.customer_converged(customer_id)], args=[target])

    def _acquire(self, customer_id: str) -> str:
        holder = str(uuid.uuid4())
        deadline = time.monotonic() + self._poll_s
        while True:
            with redis_errors("taking the customer lease"):
                if self._redis.set(keys.customer_lock(customer_id), holder, nx=True, px=self._lease_ms):
                    return holder
            if time.monotonic() > deadline:
                raise ContendedError(f"customer {customer_id} is being converged", retry_after_s=CONTENDED_RETRY_S)
            time.sleep(0.02)
