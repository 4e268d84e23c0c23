"""`rolesync api --workers N`: N processes answer the read API on one port, under uvicorn's supervisor.

One process is one core: at 2,000 reads/s the API's Python work (HTTP, routing, the Redis client, the
view) fills most of one (docs/deploy.md, "Sizing the read API"). Here the parent binds the port once and
uvicorn's own supervisor (`uvicorn.supervisors.Multiprocess`) starts N spawned children on that socket;
the kernel hands each connection to one of them. The supervisor pings each child every half second:
a child that died or hangs (5 s) is killed and replaced; one that fails before it serves (a bad setting,
its metrics port taken) stops the whole server, which exits 2 naming it, since every restart would fail
the same way. SIGTERM or SIGINT stops every child gracefully (in-flight requests finish, 5 s at most),
then the parent; SIGHUP replaces the children one by one (a rolling restart); SIGTTIN/SIGTTOU add or
remove one.

The guard (`--guard-port`) is served by the parent, on its own event loop (api/guard_port.py), so a read
flood in the children does not touch it; without `--guard-port` every child serves it beside the reads.
Metrics are per process: with `--metrics-port P`, the children's are on P+1 .. P+N (each child takes the
first free one, so a replacement takes its predecessor's) and, with `--guard-port`, the parent's (the
guard's) on P; the public port serves no `/metrics` with more than one worker, since each answer would
count one child only.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from api.app import GUARD, READS, create_app
from api.guard_port import start_guard_listener
from api.metrics import Metrics
from common.errors import ConfigError
from common.infra.logs import configure_logging
from common.infra.metrics_port import serve_metrics
from common.settings import Settings

log = structlog.get_logger(__name__)

RoutesOf = Callable[[Settings], Sequence[BaseRoute]]


def serve_workers(settings: Settings, *, host: str, port: int, workers: int, metrics_port: int = 0,
                  metrics_host: str = "", guard_port: int = 0, more: RoutesOf) -> None:  # fmt: skip
    """Run until SIGTERM/SIGINT; raises ConfigError if a child could not start (every restart would fail too)."""
    guard = None
    if guard_port:
        metrics = Metrics()
        if metrics_port:
            serve_metrics(metrics.registry, host=metrics_host or host, port=metrics_port)
        guard_app = create_app(settings, metrics=metrics, metrics_route=False, serves=(GUARD,))
        guard = start_guard_listener(guard_app, host=host, port=guard_port)
    serves = (READS,) if guard_port else (READS, GUARD)
    factory = functools.partial(worker_app, serves=serves, more=more, metrics_port=metrics_port,
                                metrics_host=metrics_host or host, workers=workers)  # fmt: skip
    config = uvicorn.Config(factory, factory=True, host=host, port=port, workers=workers, log_config=None,
                            access_log=False, timeout_graceful_shutdown=5, lifespan="on")  # fmt: skip
    sock = config.bind_socket()
    supervisor = Multiprocess(config, sockets=[sock])
    log.info("api_workers_started", workers=workers, port=port, guard_port=guard_port or None)
    try:
        supervisor.run()
    finally:
        sock.close()
        if guard is not None:
            guard.stop()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise ConfigError("a read API worker failed to start, so every restart would: see its log above")
    log.info("api_workers_stopped", workers=workers)


def worker_app(*, serves: tuple[str, ...], more: RoutesOf, metrics_port: int, metrics_host: str,
               workers: int) -> Starlette:  # fmt: skip
    """The app of one child (called by uvicorn in the child: settings are read there, once)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    metrics = Metrics()
    try:
        if metrics_port:
            _claim_metrics_port(metrics, host=metrics_host, first=metrics_port + 1, count=workers)
        return create_app(settings, metrics=metrics, metrics_route=False, serves=serves, more=more(settings))
    except ConfigError as exc:
        log.error("api_worker_failed_to_start", error=str(exc))
        sys.exit(STARTUP_FAILURE)  # uvicorn's supervisor then stops the server instead of restarting the child


def _claim_metrics_port(metrics: Metrics, *, host: str, first: int, count: int) -> None:
    for port in range(first, first + count):
        try:
            serve_metrics(metrics.registry, host=host, port=port)
        except OSError:
            continue  # another child's
        log.info("api_worker_metrics_served", port=port)
        return
    raise ConfigError(f"no free metrics port in {first}-{first + count - 1} for this worker")
