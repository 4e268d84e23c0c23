"""Leases with a fence: a holder proves it still holds its lease before every write it makes.

A lease is a Redis key SET NX PX to a random token. Dramatiq's time limit fires only while Python
runs, not inside a blocking socket call, so a pass can outlive its lease; another worker may then
take the lease and write. `Lease.check()` closes that hole: one atomic script confirms the token is
still ours and extends the lease, or raises `LeaseLostError` so the pass stops before writing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from common.errors import ContendedError
from common.infra.connections import redis_errors
from common.infra.lua_scripts import lua_script

# KEYS: lease key. ARGV: holder token, ttl ms. 1 if still held (and extended), else 0.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: lease key. ARGV: holder token.
_RELEASE = lua_script("common.infra", "compare_and_delete.lua")


class LeaseLostError(ContendedError):
    reason = "lease_lost"


@dataclass(frozen=True)
class Lease:
    leases: RedisLeases
    key: str
    token: str

    def check(self) -> None:
        """Raise LeaseLostError unless the lease is still ours; extend it if so."""
        if not self.leases.renew(self):
            raise LeaseLostError(f"lease {self.key} expired during the pass; stopping before writing")


class RedisLeases:
    def __init__(self, client: redis.Redis, *, ttl_ms: int, poll_s: float, retry_after_s: float) -> None:
        self._redis = client
        self._ttl_ms = ttl_ms
        self._poll_s = poll_s
        self._retry_after_s = retry_after_s
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @contextmanager
    def hold(self, key: str, what: str) -> Iterator[Lease]:
        """Hold `key` (waiting up to the poll time); ContendedError naming `what` if another holder keeps it."""
        lease = self._acquire(key, what)
        try:
            yield lease
        finally:
            with redis_errors("releasing a lease"):
                self._release(keys=[key], args=[lease.token])

    def renew(self, lease: Lease) -> bool:
        with redis_errors("renewing a lease"):
            return bool(self._renew(keys=[lease.key], args=[lease.token, self._ttl_ms]))

    def _acquire(self, key: str, what: str) -> Lease:
        token, deadline = str(uuid.uuid4()), time.monotonic() + self._poll_s
        while True:
            with redis_errors("taking a lease"):
                if self._redis.set(key, token, nx=True, px=self._ttl_ms):
                    return Lease(self, key, token)
            if time.monotonic() > deadline:
                raise ContendedError(f"{what} is being converged", retry_after_s=self._retry_after_s)
            time.sleep(0.02)
