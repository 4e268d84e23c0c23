"""The doctor's Redis adapter: redis-py's failures become the service's error tree here, nowhere else in doctor/.

Connecting tells apart what the operator must fix in REDIS_URL (a refused password, a malformed
URL: ConfigError) from a server that does not answer (RetryableError). Each sentence names
redis-py's exception type, never the URL's password.
"""

from __future__ import annotations

import redis

from common.errors import ConfigError, RetryableError
from common.infra.connections import redis_client
from common.settings import Settings

AUTH_REFUSED = "redis_auth"


def connect(settings: Settings) -> redis.Redis:
    """A client whose server answered PING."""
    try:
        client = redis_client(settings, timeout_s=3.0)
        client.ping()
    except redis.AuthenticationError:
        raise ConfigError("Redis refused the password", reason=AUTH_REFUSED) from None
    except ValueError as exc:  # redis-py's own check of the URL's shape
        raise ConfigError(f"REDIS_URL is malformed ({type(exc).__name__})", reason="redis_url") from None
    except redis.RedisError as exc:
        raise RetryableError(f"Redis unreachable ({type(exc).__name__})", reason="redis") from None
    return client


def queue_config(client: redis.Redis) -> dict[str, str]:
    """The settings that decide whether Redis keeps a queue: eviction policy and persistence."""
    found: dict[str, str] = {}
    try:
        for name in ("maxmemory-policy", "appendonly", "save"):
            found.update({str(k): str(v) for k, v in client.config_get(name).items()})
    except redis.RedisError as exc:  # managed Redis often refuses CONFIG
        raise RetryableError(f"CONFIG GET refused: {type(exc).__name__}", reason="redis_config") from None
    return found
