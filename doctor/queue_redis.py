"""Redis set up as a queue, not a cache: `noeviction` and persistence (docs/stack-notes.md, Redis as a queue).

Managed Redis often refuses CONFIG; then we cannot tell, and say so rather than guess.
"""

from __future__ import annotations

from common.errors import RetryableError
from doctor.redis_probe import queue_config
from doctor.report import Result, ok, skip, warn
from doctor.session import Session

REFUSED = "could not check ({why}); make sure your provider sets maxmemory-policy noeviction and persistence (AOF)"


def problems(config: dict[str, str]) -> list[str]:
    found = []
    policy = config.get("maxmemory-policy", "")
    if policy != "noeviction":
        found.append(f"maxmemory-policy is {policy or 'unknown'} (a full Redis would silently drop queued events)")
    if config.get("appendonly") != "yes" and not config.get("save", "").strip():
        found.append("persistence is off (a restart loses every queued event)")
    return found


def check_queue_redis(session: Session) -> Result:
    if session.redis is None:
        return skip("redis as a queue", "a reachable REDIS_URL")
    try:
        config = queue_config(session.redis)
    except RetryableError as exc:
        return warn("redis as a queue", REFUSED.format(why=str(exc)))
    if "maxmemory-policy" not in config:
        return warn("redis as a queue", REFUSED.format(why="CONFIG GET answered nothing"))
    found = problems(config)
    if found:
        fix = "redis-cli CONFIG SET maxmemory-policy noeviction; CONFIG SET appendonly yes (and the same in redis.conf)"
        return warn("redis as a queue", "; ".join(found), fix)
    return ok("redis as a queue", "maxmemory-policy noeviction, persistence on")
