"""Redis clients built one way for every component: explicit timeouts, TLS from `rediss://`, Sentinel.

redis-py's defaults differ by constructor (docs/stack-notes.md, redis-py defaults); building every
client here keeps the timeouts explicit and the behaviour the same across ingest, worker and CLI.
A Sentinel URL (common/infra/redis_url.py) gives a client of the current primary: its connections ask the
sentinels where the primary is whenever they (re)connect, and drop a primary that was demoted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from common.errors import RetryableError
from common.infra.redis_url import SentinelTarget, is_sentinel, parse_sentinel
from common.settings import Settings


def redis_client(
    settings: Settings, *, timeout_s: float = 5.0, connect_timeout_s: float | None = None, decode: bool = True
) -> redis.Redis:
    url = settings.redis_url.reveal()
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": connect_timeout_s or timeout_s,
        "decode_responses": decode,
        "health_check_interval": 30,
    }
    if is_sentinel(url):
        target = parse_sentinel(url)
        sentinels = list(target.sentinels)
        sync = redis.sentinel.Sentinel(sentinels, sentinel_kwargs=_sentinel_options(target, options))
        primary = sync.master_for(target.master, **_primary_options(target, options))
        return cast(redis.Redis, primary)
    return redis.Redis.from_url(url, **options)


def async_redis_client(settings: Settings, *, timeout_s: float = 2.0) -> redis.asyncio.Redis:
    url = settings.redis_url.reveal()
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "decode_responses": True,
    }
    if is_sentinel(url):
        target = parse_sentinel(url)
        sentinels = list(target.sentinels)
        found = redis.asyncio.sentinel.Sentinel(sentinels, sentinel_kwargs=_sentinel_options(target, options))
        return cast(redis.asyncio.Redis, found.master_for(target.master, **_primary_options(target, options)))
    return redis.asyncio.Redis.from_url(url, **options)


def _sentinel_options(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    # The sentinels answer only where the primary is: the same timeouts and TLS, their own auth (if any), no db.
    timeouts = {k: v for k, v in options.items() if k.startswith("socket_")}
    return {**timeouts, **target.connection_options(), **target.sentinel_auth(), "decode_responses": True}


def _primary_options(target: SentinelTarget, options: dict[str, Any]) -> dict[str, Any]:
    auth = {"username": target.username, "password": target.password}
    return {**options, **target.connection_options(), **auth, "db": target.db}


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Translate redis-py failures into the service's error tree (Redis down is worth retrying)."""
    try:
        yield
    except redis.RedisError as exc:
        raise RetryableError(f"redis unavailable while {what}: {type(exc).__name__}", reason="redis") from exc
