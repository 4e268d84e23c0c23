"""How long a killed worker's fetched-but-unacked messages take to go back on the queue.

Dramatiq keeps them in per-broker ack sets; a broker whose heartbeat in `__heartbeats__` goes stale
is dead, and its messages are back once no ack set of that broker holds anything (the janitor's
forced maintenance requeues them after `heartbeat_timeout`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from common import keys


@dataclass
class Recovery:
    broker_id: str
    unacked_at_kill: int
    seconds: float | None = None  # None: not recovered when the suite ended


def unacked(r: redis.Redis, broker_id: str) -> int:
    pattern = f"{keys.DRAMATIQ_NAMESPACE}:__acks__.{broker_id}.*"
    return sum(int(r.scard(key)) for key in r.scan_iter(pattern))


def stale_brokers(r: redis.Redis, before_ms: float) -> set[str]:
    rows: list[tuple[bytes, float]] = r.zrange(keys.DRAMATIQ_HEARTBEATS, 0, -1, withscores=True)  # type: ignore[assignment]
    return {member.decode() for member, score in rows if score < before_ms}


@dataclass
class RecoveryWatch:
    """Started at each kill: finds the brokers that went silent, then times their ack sets emptying."""

    redis_url: str
    recoveries: list[Recovery] = field(default_factory=list)
    known_dead: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def killed(self, at: float, unacked_by_broker: dict[str, int]) -> None:
        thread = threading.Thread(target=self._follow, args=(at, unacked_by_broker), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _follow(self, at: float, unacked_by_broker: dict[str, int]) -> None:
        r = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        time.sleep(3.0)  # live brokers poll about once a second; three seconds of silence means dead
        with self.lock:
            dead = stale_brokers(r, at * 1000 + 500) - self.known_dead
            self.known_dead |= dead
        for broker_id in dead:
            self._time(r, at, Recovery(broker_id, unacked_by_broker.get(broker_id, 0)))

    def _time(self, r: redis.Redis, at: float, recovery: Recovery) -> None:
        with self.lock:
            self.recoveries.append(recovery)
        while unacked(r, recovery.broker_id):
            time.sleep(0.5)
        recovery.seconds = time.time() - at

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def unacked_snapshot(r: redis.Redis) -> dict[str, int]:
    """Unacked messages per broker id right now (taken just before a kill)."""
    counts: dict[str, int] = {}
    for key in r.scan_iter(f"{keys.DRAMATIQ_NAMESPACE}:__acks__.*"):
        broker_id = key.decode().split("__acks__.", 1)[1].split(".", 1)[0]
        counts[broker_id] = counts.get(broker_id, 0) + int(r.scard(key))
    return counts
