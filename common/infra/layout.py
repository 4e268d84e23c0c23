"""The Redis layout version: which shape of keys and values the data in Redis was written with (`keys.LAYOUT_VERSION`).

Every process checks it at start (`ensure`), before it reads or writes anything else:

- absent on an empty Redis: written as `LAYOUT` (this release's);
- absent on a Redis that holds our data (written before the layout was versioned): that data is layout 1;
- older than `LAYOUT`: migrated in place, one step at a time (`MIGRATIONS[n]` takes layout n to n+1), by the one
  process that holds `keys.LAYOUT_LOCK`; the version is raised after each step, so a migration cut short resumes at
  the step it was in (each step must be idempotent: it may run again); the other processes wait for it;
- newer than `LAYOUT`: `LayoutTooNewError`, one line naming both versions (a process of an older release must not
  read or write a newer layout).

A lost Redis (a FLUSHALL) loses this key with the epoch (common/infra/data_epoch.py): the process whose epoch check
makes the new epoch writes its own `LAYOUT` back if none is there (the data now in Redis is written by the running
fleet), so a process started later never takes that data for unversioned layout-1 data.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis
import structlog

from common import keys
from common.errors import ConfigError, RetryableError
from common.infra.connections import redis_client, redis_errors
from common.settings import Settings

log = structlog.get_logger(__name__)

LAYOUT = 1  # the layout this release writes; raise it only with a migration in MIGRATIONS (docs/upgrading.md)
UNVERSIONED = 1  # data written before the layout was versioned
LOCK_TTL_S = 300  # a holder that crashed frees the lock after this; renewed before every step
WAIT_POLL_S = 0.2
WAIT_LIMIT_S = 600.0

# A step takes layout n to n+1: (client, dry_run) -> the lines saying what it changes (dry run) or changed.
Migration = Callable[[redis.Redis, bool], list[str]]
MIGRATIONS: dict[int, Migration] = {}  # n -> the step from n to n+1; none yet: layout 1 is the first

_OURS = (f"{keys.PREFIX}:*", f"{keys.DRAMATIQ_NAMESPACE}:*")
_EPOCH_ONLY = {keys.DATA_EPOCH, keys.DATA_LOSS, keys.DATA_HEAL_LOCK, keys.LAYOUT_LOCK}
# KEYS[1] version, KEYS[2] lock; ARGV: holder, the version the step started from, the version it reached
_STEP_DONE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"""


class LayoutTooNewError(ConfigError):
    """Redis holds a layout newer than this release writes: the process must not start."""


@dataclass(frozen=True)
class Step:
    start: int  # the step takes `start` to `start + 1`
    changes: list[str]


def too_new_message(found: int, ours: int = LAYOUT) -> str:
    return (f"Redis holds layout version {found}, but this release writes layout version {ours}: run a release "
            f"that writes layout {found} (or newer) instead; never start an older release on newer data "
            "(docs/upgrading.md, 'The Redis layout')")  # fmt: skip


def stored(client: redis.Redis) -> int | None:
    """The version `keys.LAYOUT_VERSION` holds; None when absent."""
    with redis_errors("reading the Redis layout version"):
        found = client.get(keys.LAYOUT_VERSION)
    if found is None:
        return None
    try:
        return int(found)
    except ValueError as exc:
        raise ConfigError(f"{keys.LAYOUT_VERSION} holds {found!r}, not a layout version") from exc


def found_version(client: redis.Redis, *, current: int = LAYOUT) -> int:
    """The layout of the data in Redis, stamping an empty Redis with `current` (and an unversioned one with 1)."""
    version = stored(client)
    if version is not None:
        return version
    first = UNVERSIONED if holds_our_data(client) else current
    with redis_errors("writing the Redis layout version"):
        client.set(keys.LAYOUT_VERSION, first, nx=True)  # another process may have stamped it meanwhile
    return stored(client) or first


def holds_our_data(client: redis.Redis) -> bool:
    """Any key of ours (or of our queues) besides the epoch's own bookkeeping."""
    with redis_errors("looking for data written before the layout was versioned"):
        for pattern in _OURS:
            for key in client.scan_iter(match=pattern, count=1000):
                if (key.decode() if isinstance(key, bytes) else str(key)) not in _EPOCH_ONLY:
                    return True
    return False


def pending(version: int, *, current: int = LAYOUT, registry: Mapping[int, Migration] = MIGRATIONS) -> list[int]:
    """The steps (by the version each starts from) that take `version` to `current`."""
    if version > current:
        raise LayoutTooNewError(too_new_message(version, current))
    missing = [n for n in range(version, current) if n not in registry]
    if missing:
        raise ConfigError(f"no migration from Redis layout {missing[0]} to {missing[0] + 1} in this release")
    return list(range(version, current))


def ensure(client: redis.Redis, *, current: int = LAYOUT, registry: Mapping[int, Migration] = MIGRATIONS,
           lock_ttl_s: float = LOCK_TTL_S, wait_limit_s: float = WAIT_LIMIT_S) -> int:  # fmt: skip
    """At a process's start: the layout is `current` when this returns (migrated if it was older), else it raises."""
    deadline = time.monotonic() + wait_limit_s
    while pending(found_version(client, current=current), current=current, registry=registry):
        holder = uuid.uuid4().hex
        if _take(client, holder, lock_ttl_s):
            migrate(client, holder, current=current, registry=registry, lock_ttl_s=lock_ttl_s)
        elif time.monotonic() > deadline:
            raise RetryableError("another process has been migrating the Redis layout too long; see rolesync status")
        else:
            time.sleep(WAIT_POLL_S)  # another process migrates: wait until it is done (or its lock lapses)
    return current


def migrate(client: redis.Redis, holder: str, *, current: int = LAYOUT,
            registry: Mapping[int, Migration] = MIGRATIONS, lock_ttl_s: float = LOCK_TTL_S) -> list[Step]:  # fmt: skip
    """Run the pending steps under the lock `holder` took; the version is raised after each one."""
    done: list[Step] = []
    try:
        for start in pending(found_version(client, current=current), current=current, registry=registry):
            _renew(client, holder, lock_ttl_s)
            log.info("layout_migration_started", start=start, end=start + 1)
            changes = registry[start](client, False)
            _raise(client, holder, start)
            log.info("layout_migration_finished", start=start, end=start + 1, changes=len(changes))
            done.append(Step(start, changes))
    finally:
        _release(client, holder)
    return done


def run_pending(client: redis.Redis, *, current: int = LAYOUT,
                registry: Mapping[int, Migration] = MIGRATIONS) -> list[Step]:  # fmt: skip
    """`rolesync migrate`: the pending steps, now, under the lock; RetryableError while another process holds it."""
    if not pending(found_version(client, current=current), current=current, registry=registry):
        return []
    holder = uuid.uuid4().hex
    if not _take(client, holder, LOCK_TTL_S):
        raise RetryableError("another process is migrating the Redis layout; run this again once it is done")
    return migrate(client, holder, current=current, registry=registry)


def dry_run(client: redis.Redis, *, current: int = LAYOUT,
            registry: Mapping[int, Migration] = MIGRATIONS) -> list[Step]:  # fmt: skip
    """What the pending steps would change, changing nothing (the version is not stamped either)."""
    version = stored(client)
    if version is None:
        version = UNVERSIONED if holds_our_data(client) else current
    return [
        Step(start, registry[start](client, True)) for start in pending(version, current=current, registry=registry)
    ]


def _take(client: redis.Redis, holder: str, ttl_s: float) -> bool:
    with redis_errors("taking the layout migration lock"):
        return bool(client.set(keys.LAYOUT_LOCK, holder, nx=True, px=int(ttl_s * 1000)))


def _renew(client: redis.Redis, holder: str, ttl_s: float) -> None:
    with redis_errors("renewing the layout migration lock"):
        if client.get(keys.LAYOUT_LOCK) not in (holder, holder.encode()):
            raise RetryableError("lost the layout migration lock (it lapsed); the next start resumes the migration")
        client.pexpire(keys.LAYOUT_LOCK, int(ttl_s * 1000))


def _raise(client: redis.Redis, holder: str, start: int) -> None:
    with redis_errors("recording a layout migration step"):
        if not client.eval(_STEP_DONE, 2, keys.LAYOUT_VERSION, keys.LAYOUT_LOCK, holder, str(start), str(start + 1)):
            raise RetryableError("lost the layout migration lock mid-step; the next start resumes the migration")


def _release(client: redis.Redis, holder: str) -> None:
    with redis_errors("releasing the layout migration lock"):
        if client.get(keys.LAYOUT_LOCK) in (holder, holder.encode()):
            client.delete(keys.LAYOUT_LOCK)


def check_at_start(settings: Settings) -> int | None:
    """`ensure` over a client of its own, for an entrypoint. Redis unreachable: logged and None (the ingest still
    starts and answers 503s; the worker's launcher has refused already); a newer layout raises LayoutTooNewError."""
    client = redis_client(settings, timeout_s=5.0)
    try:
        return ensure(client)
    except RetryableError as exc:
        log.warning("layout_check_skipped", error=str(exc))
        return None
    finally:
        client.close()
