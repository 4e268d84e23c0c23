"""One run per interval across every replica: the slot a replica takes in Redis, and the loop that tries it.

A replica runs the interval's work only if it takes the slot, a key set with SET NX PX for one whole interval;
the others find it held until it expires, and restarts cause no extra runs because the slot lives in Redis.
Used by the scheduled reconcile (worker/sweeps/reconcile_schedule.py) and the scope probe
(worker/sweeps/scope_probe.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
import structlog

from common.errors import ServiceError
from common.infra.connections import redis_errors

log = structlog.get_logger(__name__)


def take_slot(client: redis.Redis, key: str, interval_s: float, holder: str, *, what: str) -> bool:
    """True if `holder` took the interval's slot `key` now; `what` names it in a Redis error."""
    with redis_errors(f"taking the {what} slot"):
        return bool(client.set(key, holder, nx=True, px=max(1, int(interval_s * 1000))))


def every_interval(tick: Callable[[], object], *, pause_s: float, failed: str) -> None:
    """Call `tick` forever, `pause_s` apart; a ServiceError (Redis or Kinde down) is logged as `failed` and the
    next tick tries again."""
    while True:
        try:
            tick()
        except ServiceError as exc:
            log.warning(failed, error=str(exc)[:300], reason=exc.reason)
        time.sleep(pause_s)
