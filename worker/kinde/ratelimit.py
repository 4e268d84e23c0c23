"""Shared limits toward Kinde: one token bucket and one 429 cool-down for every process on every host.

The bucket is dramatiq's `BucketRateLimiter` on Redis with small (≈100 ms) windows, so `KINDE_API_RPS`
holds across processes without bursts of a whole second's budget. A thread waits for a slot
in-thread, but never longer than `MAX_SLOT_WAIT_S` (`PATIENT_SLOT_WAIT_S` inside a converge pass,
see `patient_slot_waits`); past that, or while Kinde's cool-down runs,
it raises `RateLimitedError` and the message goes back to the broker as a delayed retry.

The cool-down is `keys.KINDE_COOLDOWN_UNTIL`: the first thread that sees a 429 sets it from
`RateLimit-Reset`, and every process checks it before calling Kinde. While it runs, one call per
probe gap goes for the whole fleet (`keys.KINDE_PROBE`); the first probe Kinde answers ends it, and the
shared rate (`keys.KINDE_RPS_CAP`), lowered by the 429, climbs back from then on. The arithmetic (AIMD,
recovery by evidence) is worker/kinde/pace.py. A caller waits out a cool-down in-thread for as long
as it would wait for a slot, then raises `RateLimitedError` with the cool-down's remaining time.

Two classes share the bucket (docs/deploy.md, "Bulk without starvation"). Fresh work (a new event) may
always take a slot; bulk work (sweeps, bursts, replays: `bulk_calls`) takes every slot while no fresh
call waits, and leaves `reserve_of(limit)` slots of each window free while one does. A fresh call that
misses a slot says so in `keys.KINDE_FRESH_WAITING` for two windows; bulk callers read it in the same
MGET as the cool-down, so the reserve costs no round trip until fresh work actually waits. With no
fresh work waiting, bulk work gets the whole rate.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

import redis
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from common import keys
from common.errors import RateLimitedError
from common.infra.connections import redis_errors
from worker.kinde.pace import CoolDown, Pace, hardened, lowered, relieved

BUCKET_MS = 100
KINDE_429_KEPT_S = 3600
MAX_SLOT_WAIT_S = 0.8
PATIENT_SLOT_WAIT_S = 5.0
COOL_DOWN_POLL_S = 0.05
RESERVE_SHARE = 0.25  # of each window's slots kept for fresh work while some waits


class KindeGate(Protocol):
    def wait_turn(self) -> None:
        """Return when this process may send one request to Kinde; raise RateLimitedError otherwise."""

    def cool_down(self, seconds: float) -> None:
        """Kinde answered 429: hold every process's calls (but probes) for `seconds`."""

    def answered(self) -> None:
        """Kinde answered the call this thread's last turn let through with anything but a 429."""


_slot_wait_s: ContextVar[float] = ContextVar("slot_wait_s", default=MAX_SLOT_WAIT_S)
_bulk: ContextVar[bool] = ContextVar("bulk", default=False)
_probing: ContextVar[bool] = ContextVar("probing", default=False)


@contextmanager
def bulk_calls() -> Iterator[None]:
    """The Kinde calls made inside are bulk work: they yield a reserve of the rate to waiting fresh calls."""
    token = _bulk.set(True)
    try:
        yield
    finally:
        _bulk.reset(token)


def reserve_of(limit: int) -> int:
    """Slots of a window bulk work leaves to fresh work while fresh work waits (at least one)."""
    return max(1, round(limit * RESERVE_SHARE))


@contextmanager
def patient_slot_waits() -> Iterator[None]:
    """Inside a converge pass, wait up to a few seconds for a slot: giving up half-way would throw
    away the reads already paid for and redo them on retry (measured: 6 calls per plan change
    instead of 4 when the bucket is saturated). A cool-down still fails at once."""
    token = _slot_wait_s.set(PATIENT_SLOT_WAIT_S)
    try:
        yield
    finally:
        _slot_wait_s.reset(token)


def bucket_shape(rps: float) -> tuple[int, int]:
    """(limit, bucket_ms) for `rps`: windows of about 100 ms, never a limit below 1 per window."""
    limit = max(1, math.floor(rps * BUCKET_MS / 1000))
    return limit, max(1, math.ceil(limit * 1000 / rps))


def window_slots(rps: float, bucket_ms: int, now_ms: int) -> int:
    """Slots of the window holding `now_ms` so that windows of `bucket_ms` average `rps`: a lowered rate
    keeps the configured rate's windows (and so their shared counts: windows of another length are
    other Redis keys, counted from zero) and takes a whole slot in only some of them."""
    per_window = rps * bucket_ms / 1000
    index = now_ms // bucket_ms
    return math.floor((index + 1) * per_window) - math.floor(index * per_window)


class RedisKindeGate:
    def __init__(self, client: redis.Redis, rps: float, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._rps = rps
        self._clock = clock
        self._backend = RedisBackend(client=client)
        self._limiters: dict[int, BucketRateLimiter] = {}  # by slots per window

    def wait_turn(self) -> None:
        deadline = time.monotonic() + _slot_wait_s.get()
        bulk, probing = _bulk.get(), False
        while True:
            cooling, rps, fresh_waiting = self._current_state()
            if cooling is not None and not probing:
                probing = self._take_probe(cooling)
                if not probing:
                    _wait_out(cooling.remaining(self._clock()), deadline)
                    continue
            limiter, bucket_ms = self._limiter(rps, yielding=bulk and fresh_waiting)
            if self._try_acquire(limiter):
                _probing.set(probing)
                return
            if not bulk:
                self._mark_fresh_waiting(bucket_ms)
            if time.monotonic() > deadline:
                raise RateLimitedError("no Kinde request slot free; retry shortly", retry_after_s=0.5)
            time.sleep(_until_next_bucket_s(bucket_ms))

    def cool_down(self, seconds: float) -> None:
        now, probed = self._clock(), _probing.get()
        _probing.set(False)
        started = CoolDown(now + seconds)
        with redis_errors("setting the Kinde cool-down"):
            if self._redis.set(keys.KINDE_COOLDOWN_UNTIL, started.encode(), px=_ms(seconds), nx=True):
                self._lower_pace(now, seconds)
            else:
                self._strike(CoolDown.decode(_text(self._redis.get(keys.KINDE_COOLDOWN_UNTIL))) or started,
                             now, seconds, probed=probed)  # fmt: skip
        self._log_429(now)

    def _strike(self, running: CoolDown, now: float, seconds: float, *, probed: bool) -> None:
        """A 429 during a cool-down. A probe's is evidence the limit is still spent: the next probe waits
        twice as long, and the first such hardens the pace. A call sent before the cool-down began (in
        flight) says nothing new: the cool-down only lasts at least `seconds` more."""
        struck = running.struck(now, seconds) if probed else running.extended(now, seconds)
        self._redis.set(keys.KINDE_COOLDOWN_UNTIL, struck.encode(), px=_ms(struck.remaining(now)))
        if probed:
            self._redis.set(keys.KINDE_PROBE, "1", px=_ms(struck.probe_gap_s()))
            if running.strikes == 0:
                self._harden_pace(now)

    def answered(self) -> None:
        if not _probing.get():
            return
        _probing.set(False)
        now = self._clock()
        with redis_errors("ending the Kinde cool-down"):
            self._redis.delete(keys.KINDE_COOLDOWN_UNTIL, keys.KINDE_PROBE)
            self._put_pace(relieved(self._pace(), now), now)

    def _lower_pace(self, now: float, reset_s: float) -> None:
        self._put_pace(lowered(self._pace(), self._rps, now, reset_s), now)

    def _harden_pace(self, now: float) -> None:
        self._put_pace(hardened(self._pace(), self._rps), now)

    def _pace(self) -> Pace | None:
        return Pace.decode(_text(self._redis.get(keys.KINDE_RPS_CAP)))

    def _put_pace(self, pace: Pace | None, now: float) -> None:
        if pace is not None:
            self._redis.set(keys.KINDE_RPS_CAP, pace.encode(), px=_ms(pace.kept_s(self._rps, now)))

    def _log_429(self, now: float) -> None:
        with redis_errors("logging a 429"), self._redis.pipeline(transaction=False) as pipe:
            # each 429 answer is kept for `rolesync status` ("429s in the last 5 min")
            pipe.zadd(keys.KINDE_429_LOG, {f"{now:.6f}:{uuid.uuid4().hex[:8]}": now})
            pipe.zremrangebyscore(keys.KINDE_429_LOG, "-inf", now - KINDE_429_KEPT_S)
            pipe.execute()

    def _take_probe(self, cooling: CoolDown) -> bool:
        """True for the one caller of this probe gap, fleet-wide."""
        with redis_errors("taking a Kinde probe"):
            return bool(self._redis.set(keys.KINDE_PROBE, "1", px=_ms(cooling.probe_gap_s()), nx=True))

    def _current_state(self) -> tuple[CoolDown | None, float, bool]:
        """The running cool-down (None once over), the shared rate now, and whether a fresh call waits."""
        with redis_errors("reading the Kinde cool-down"):
            until, cap, waiting = self._redis.mget(
                [keys.KINDE_COOLDOWN_UNTIL, keys.KINDE_RPS_CAP, keys.KINDE_FRESH_WAITING]
            )
        now = self._clock()
        cooling = CoolDown.decode(_text(until))
        pace = Pace.decode(_text(cap))
        rps = pace.rate(self._rps, now) if pace else self._rps
        return (cooling if cooling and cooling.remaining(now) > 0 else None), rps, waiting is not None

    def _mark_fresh_waiting(self, bucket_ms: int) -> None:
        with redis_errors("marking a fresh Kinde call waiting"):
            self._redis.set(keys.KINDE_FRESH_WAITING, "1", px=2 * bucket_ms)

    def _limiter(self, rps: float, *, yielding: bool) -> tuple[BucketRateLimiter | None, int]:
        """The bucket at `rps`, in the configured rate's windows; while `yielding`, the same windows with
        the fresh reserve held back (one count per window for both classes, so together they never
        exceed the limit). None: no slot of this window is open to this caller."""
        limit, bucket = bucket_shape(self._rps)
        if rps < self._rps:
            limit = window_slots(rps, bucket, int(time.time() * 1000))
        allowed = limit - reserve_of(limit) if yielding else limit
        if allowed < 1:
            return None, bucket
        if allowed not in self._limiters:
            limiter = BucketRateLimiter(self._backend, keys.KINDE_RATE_LIMIT, limit=allowed, bucket=bucket)  # type: ignore[no-untyped-call]
            self._limiters[allowed] = limiter
        return self._limiters[allowed], bucket

    def _try_acquire(self, limiter: BucketRateLimiter | None) -> bool:
        if limiter is None:
            return False
        with redis_errors("taking a Kinde request slot"), limiter.acquire(raise_on_failure=False) as acquired:
            return bool(acquired)


def _wait_out(remaining_s: float, deadline: float) -> None:
    """Sleep a moment of a running cool-down, or raise once this caller may wait no longer."""
    if time.monotonic() + COOL_DOWN_POLL_S > deadline:
        raise RateLimitedError(f"Kinde cool-down for {remaining_s:.1f}s", retry_after_s=remaining_s)
    time.sleep(COOL_DOWN_POLL_S)


def _text(raw: object) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else None if raw is None else str(raw)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _until_next_bucket_s(bucket_ms: int) -> float:
    now_ms = time.time() * 1000
    return (bucket_ms - now_ms % bucket_ms) / 1000 + 0.001
