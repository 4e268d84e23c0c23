"""Postgres connections, built one way: a small psycopg pool with explicit timeouts, errors translated.

Only used when `ROLESYNC_POSTGRES_URL` is set. The pool connects in the background: building it
never blocks or fails while Postgres is down; a caller that finds no connection within
`POOL_WAIT_S` gets a RetryableError (the change waits in Redis, common/table/table_outbox.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool

from common.errors import RetryableError
from common.settings import Settings

CONNECT_TIMEOUT_S = 3
RECONNECT_GIVE_UP_S = 5.0
POOL_WAIT_S = 2.0  # an in-pass write waits at most this long for a connection (it runs under a target lease)
# ...and this long for another writer's per-target lock, or for a statement: a writer whose host froze with
# its transaction open (its connection alive) would otherwise block every writer of that target, in a pass,
# past the target's lease and Dramatiq's time limit (which cannot interrupt a blocking socket call).
LOCK_WAIT_MS = 5_000
STATEMENT_MS = 10_000
UNAVAILABLE = "postgres_unavailable"  # no connection: every write would fail alike
REFUSED = "postgres_refused"  # this statement was refused (or timed out): others may still go through


def postgres_pool(settings: Settings, *, max_size: int = 8) -> psycopg_pool.ConnectionPool:
    """`max_size`: a worker process's threads (8 by default) each write at most one row at a time."""
    return psycopg_pool.ConnectionPool(
        settings.postgres_url.reveal(),
        min_size=1,
        max_size=max_size,
        timeout=POOL_WAIT_S,
        kwargs={
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "kinde-role-sync",
            "options": f"-c lock_timeout={LOCK_WAIT_MS} -c statement_timeout={STATEMENT_MS}",
        },
        check=psycopg_pool.ConnectionPool.check_connection,  # a restarted server leaves dead connections behind
        # Give a failed background connect up soon: the next request grows the pool afresh, so a Postgres
        # back after a long outage is used at once rather than after psycopg's doubling back-off.
        reconnect_timeout=RECONNECT_GIVE_UP_S,
        open=True,
        name="rolesync",
    )


def connect(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    """One connection in autocommit mode (each `transaction()` block commits), for on-call commands."""
    with postgres_errors("connecting to Postgres"):
        return psycopg.connect(settings.postgres_url.reveal(), connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)


@contextmanager
def postgres_errors(what: str) -> Iterator[None]:
    """Translate psycopg failures into the service's error tree: the table catches up when Postgres is back.

    Only the exception's class is kept: psycopg's messages can quote the connection string.
    """
    try:
        yield
    except psycopg_pool.PoolTimeout as exc:
        raise RetryableError(f"postgres unavailable while {what}: no connection", reason=UNAVAILABLE) from exc
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:  # our timeouts: this row only
        raise RetryableError(f"postgres timed out {what}: {type(exc).__name__}", reason=REFUSED) from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise RetryableError(f"postgres unavailable while {what}: {type(exc).__name__}", reason=UNAVAILABLE) from exc
    except psycopg.Error as exc:  # the server answered and refused this statement (data, schema)
        state = f" ({exc.sqlstate})" if exc.sqlstate else ""
        raise RetryableError(f"postgres refused {what}: {type(exc).__name__}{state}", reason=REFUSED) from exc
