"""Each worker process says it is alive, so `rolesync status` can count workers without guessing.

Dramatiq's own `__heartbeats__` mixes producers, the janitor and workers under random broker ids,
so every worker process (after Dramatiq has booted it) also beats `keys.WORKER_HEARTBEATS` with
`<host>:<pid>` every `heartbeat_timeout_s / 4` seconds from a daemon thread, and leaves it on a
graceful shutdown. A SIGKILLed worker's entry simply stops moving; entries older than a day are
trimmed so crashed workers do not pile up. Each beat also records the fingerprint of the plans.toml
the process runs (`keys.WORKER_MAPPINGS`, common/plans/fleet_mapping.py), so a mapping sweep can wait until no
worker runs another one.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
import structlog

from common import keys
from common.errors import ConfigError
from common.plans.fleet_mapping import UNREADABLE
from common.plans.mapping import load_plans
from common.settings import Settings

log = structlog.get_logger(__name__)
FORGET_AFTER_S = 86400


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_fresh_s(settings: Settings) -> float:
    """A beat every heartbeat_timeout/4 s: a worker that missed about three in a row counts as gone."""
    return max(2.0, settings.heartbeat_timeout_s * 0.75)


def running_fingerprint(settings: Settings) -> str:
    """The fingerprint of the mapping this process converges with (the actors load the same file)."""
    try:
        return load_plans(settings.plans_path).fingerprint
    except ConfigError:  # the actors fail on it too, and say why; this worker runs no mapping
        return UNREADABLE


def beat(client: redis.Redis, who: str, now: float, fingerprint: str, mode: str = "live") -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.zadd(keys.WORKER_HEARTBEATS, {who: now})
        pipe.hset(keys.WORKER_MAPPINGS, who, fingerprint)
        pipe.hset(keys.WORKER_MODES, who, mode)
        pipe.zremrangebyscore(keys.WORKER_HEARTBEATS, "-inf", now - FORGET_AFTER_S)
        pipe.execute()


class Heartbeats(dramatiq.Middleware):
    def __init__(self, settings: Settings, connect: Callable[[], redis.Redis]) -> None:
        self._settings, self._connect = settings, connect  # connect: worker/entrypoints/clients.py
        self._interval_s = max(0.5, settings.heartbeat_timeout_s / 4)
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        client, fingerprint = self._connect(), running_fingerprint(self._settings)
        args = (client, worker_id(), fingerprint)
        threading.Thread(target=self._run, args=args, name="rolesync-heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        try:
            client = self._connect()
            client.zrem(keys.WORKER_HEARTBEATS, worker_id())
            client.hdel(keys.WORKER_MAPPINGS, worker_id())
            client.hdel(keys.WORKER_MODES, worker_id())
        except redis.RedisError as exc:  # best effort: the entry ages out of `status` anyway
            log.warning("worker_heartbeat_not_removed", error=type(exc).__name__)

    def _run(self, client: redis.Redis, who: str, fingerprint: str) -> None:
        while not self._stop.is_set():
            try:
                beat(client, who, time.time(), fingerprint, self._settings.mode)
            except redis.RedisError as exc:  # Redis down: the consumers report it; keep trying
                log.warning("worker_heartbeat_failed", error=type(exc).__name__)
            self._stop.wait(self._interval_s)
