"""`rolesync worker`: check Redis, then become the Dramatiq CLI over our broker and actors.

    python -m dramatiq worker.runtime.broker:setup worker.runtime.actors --processes N --threads M
        --worker-shutdown-timeout <ms> --skip-logging --fork-function worker.entrypoints.recovery_sweep:run
        --fork-function worker.sweeps.scope_probe:run --fork-function worker.sweeps.mapping_change:run
        --fork-function worker.sweeps.grant_schedule:run
        --fork-function worker.sweeps.data_heal:run
        [--fork-function worker.entrypoints.metrics_server:run] [--fork-function worker.sweeps.reconcile_schedule:run]
        [--fork-function worker.outputs.table_sync:run]   (with ROLESYNC_POSTGRES_URL: the entitlements table)

The launcher execs rather than supervising a child: signals from a supervisor (to the process or
to its whole group) then reach Dramatiq's main process exactly once, and a second SIGTERM keeps
its meaning ("stop now"). Before exec it pings Redis so an unreachable broker is one clear line
and exit status 3, the code Dramatiq itself uses for it, instead of a traceback. It also gives
the worker processes an empty prometheus multiprocess directory.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from common.errors import RetryableError
from common.infra.connections import redis_client
from common.infra.insecure_settings import log_insecure_settings
from common.infra.layout import check_at_start
from common.infra.logs import configure_logging
from common.settings import Settings, mask_url

BROKER_UNREACHABLE = 3


def dramatiq_argv(settings: Settings, *, processes: int, threads: int) -> list[str]:
    argv = [sys.executable, "-m", "dramatiq", "worker.runtime.broker:setup", "worker.runtime.actors"]
    argv += ["--processes", str(processes), "--threads", str(threads), "--skip-logging"]
    argv += ["--worker-shutdown-timeout", str(settings.worker_shutdown_timeout_s * 1000)]
    argv += ["--fork-function", "worker.entrypoints.recovery_sweep:run"]
    argv += ["--fork-function", "worker.sweeps.scope_probe:run"]
    argv += ["--fork-function", "worker.sweeps.mapping_change:run"]
    argv += ["--fork-function", "worker.sweeps.grant_schedule:run", "--fork-function", "worker.sweeps.data_heal:run"]
    if settings.worker_metrics_port:
        argv += ["--fork-function", "worker.entrypoints.metrics_server:run"]
    if settings.reconcile_every_s:
        argv += ["--fork-function", "worker.sweeps.reconcile_schedule:run"]
    if settings.postgres_url:
        argv += ["--fork-function", "worker.outputs.table_sync:run"]
    return argv


def redis_reachable(settings: Settings) -> bool:
    client = redis_client(settings, timeout_s=3.0)
    try:
        return bool(client.ping())
    except Exception:  # any failure to ping means the same thing to the operator
        return False
    finally:
        client.close()


def fresh_metrics_dir() -> str:
    """Per launcher pid (kept across exec), emptied first: stale samples would be summed in."""
    path = Path(tempfile.gettempdir()) / f"rolesync-worker-metrics-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def run(settings: Settings, *, processes: int, threads: int) -> int:
    configure_logging(settings.log_level)
    log_insecure_settings(settings)  # once per start, here rather than in each of the worker processes
    if not redis_reachable(settings):
        sys.stderr.write(f"rolesync worker: cannot reach Redis at {mask_url(settings.redis_url.reveal())}\n")
        return BROKER_UNREACHABLE
    check_at_start(settings)  # before the forks: they inherit a checked (or migrated) layout
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": fresh_metrics_dir()}
    argv = dramatiq_argv(settings, processes=processes, threads=threads)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)  # noqa: S606 - argv is ours; exec is the point (see module doc)
    raise RetryableError("exec of the Dramatiq CLI returned")  # unreachable: execve replaces the process
