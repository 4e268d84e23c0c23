"""Redis clients built one way for every component: explicit timeouts, TLS from `rediss://`.

redis-py's defaults differ by constructor (docs/stack-notes.md, redis-py defaults); building every
client here keeps the timeouts explicit and the behaviour the same across ingest, worker and CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
import redis.asyncio

from common.errors import RetryableError
from common.settings import Settings


def redis_client(settings: Settings, *, timeout_s: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url.reveal(),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
        health_check_interval=30,
    )


def async_redis_client(settings: Settings, *, timeout_s: float = 2.0) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.redis_url.reveal(),
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        decode_responses=True,
    )


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Translate redis-py failures into the service's error tree (Redis down is worth retrying)."""
    try:
        yield
    except redis.RedisError as exc:
        raise RetryableError(f"redis unavailable while {what}: {type(exc).__name__}", reason="redis") from exc
